// Builds the UI into dist/: one JS and one CSS bundle, the fonts they use
// and index.html pointing at them with a content hash (so browsers never
// run a stale bundle). The output depends only on the sources and the
// locked packages: CI rebuilds it and fails when it differs from git.
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";

const out = "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: { app: "src/main.js" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome110", "firefox115", "safari16"],
  outdir: out + "/assets",
  assetNames: "[name]-[hash]",
  loader: { ".woff2": "file" },
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
});

const hash = (f) => createHash("sha256").update(readFileSync(`${out}/assets/${f}`)).digest("hex").slice(0, 12);
const html = readFileSync("src/index.html", "utf8")
  .replace("{{css}}", `assets/app.css?v=${hash("app.css")}`)
  .replace("{{js}}", `assets/app.js?v=${hash("app.js")}`);
writeFileSync(`${out}/index.html`, html);
