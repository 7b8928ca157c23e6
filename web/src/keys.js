// What the stored events say about the keys an expression reads
// (metadata.*, company.*, user.*), from GET /v1/events/stats: a key never
// seen (metadata.to matches nothing), and a value read from a key that
// is not always a number (a sum over metadata.tokens sent as text, or
// missing). The editors show these as warnings: the expression is valid,
// but probably not what was meant.
import { fmtNum } from "./dom.js";

// observed are the paths seen in stored events: metadata_keys (under
// "metadata.") and trait_keys (already named "company.<trait>" or
// "user.<trait>"), each {key, type, count}; total is how many events
// there are.
let observed = [];
let total = 0;
const listeners = new Set();
export function setObservedKeys(stats) {
  observed = [...(stats.metadata_keys || []).map((k) => ({ ...k, key: "metadata." + k.key })), ...(stats.trait_keys || [])];
  total = stats.count || 0;
  listeners.forEach((f) => f());
}
export const observedKeys = () => observed;

// onKeys calls f when the keys arrive (the forms warn then); it returns
// the function that stops it.
export function onKeys(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

// keyPaths finds the key paths an expression reads, outside its strings:
// [{path, from, to}], path written with dots (a?.b is a.b), from and to
// offsets in text.
export function keyPaths(text) {
  // Blank the strings, keeping offsets.
  const code = text.replace(/"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?/g, (s) => " ".repeat(s.length));
  const out = [];
  // (No lookbehind: Safari 16.0 lacks it. The first group is what
  // precedes the path, so that x.metadata.a is not read as one.)
  for (const m of code.matchAll(/(^|[^\w$.?])((?:metadata|company|user)(?:\??\.[A-Za-z_$][\w$]*)+)/g)) {
    const from = m.index + m[1].length;
    out.push({ path: m[2].replace(/\?\./g, "."), from, to: from + m[2].length, code });
  }
  return out;
}

// typesOf is what the events hold at path: [{type, count}] and in how
// many events it is present.
function typesOf(path) {
  const ts = observed.filter((k) => k.key === path);
  return { types: ts, seen: ts.reduce((n, k) => n + k.count, 0) };
}

// suggestKey is the seen path a mistyped one most likely meant.
function suggestKey(path) {
  const root = path.slice(0, path.indexOf(".") + 1);
  const keys = [...new Set(observed.map((k) => k.key))].filter((k) => k.startsWith(root));
  const longer = keys.filter((k) => k.startsWith(path)).sort((a, b) => a.length - b.length);
  if (longer.length) return longer[0];
  let best = null, bestD = Infinity;
  for (const k of keys) {
    const d = editDistance(path, k);
    if (d < bestD) (best = k), (bestD = d);
  }
  return bestD <= Math.max(2, Math.floor(path.length / 6)) ? best : null;
}

function editDistance(a, b) {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

// inCall reports whether offset at lies inside the arguments of one of
// the functions names (in code, strings blanked).
function inCall(code, at, names) {
  let depth = 0;
  for (let i = at - 1; i >= 0; i--) {
    if (code[i] === ")") depth++;
    else if (code[i] === "(") {
      if (depth > 0) depth--;
      else if (new RegExp(`(?:^|[^\\w.$])(${names.join("|")})\\s*$`).test(code.slice(0, i))) return true;
    }
  }
  return false;
}

// keyWarnings are the warnings about the keys text reads: each
// {from, to, code, message, fix?: {label, text}}. numeric says the
// expression is a value that must be a number (sum, max, min).
export function keyWarnings(text, { numeric = false } = {}) {
  if (!total) return []; // no events stored: nothing to compare with
  const out = [];
  for (const { path, from, to, code } of keyPaths(text)) {
    const { types, seen } = typesOf(path);
    if (!seen) {
      const near = suggestKey(path);
      out.push({ from, to, code: "unseen_key", message: `${path} is in none of your ${fmtNum(total)} stored events${near ? `; did you mean ${near}?` : ": it is always missing (nil) here"}` });
      continue;
    }
    if (!numeric) continue;
    const notNumber = types.filter((t) => t.type !== "number");
    const missing = Math.max(0, total - seen) + notNumber.filter((t) => t.type === "null").reduce((n, t) => n + t.count, 0);
    const strings = notNumber.filter((t) => t.type === "string").reduce((n, t) => n + t.count, 0);
    const others = notNumber.filter((t) => t.type !== "string" && t.type !== "null");
    const nilSafe = /^\s*\?\?/.test(code.slice(to));
    const converted = inCall(code, from, ["float", "int"]);
    const problems = [];
    if (strings && !converted) problems.push(`a string in ${fmtNum(strings)}`);
    if (missing && !nilSafe) problems.push(`missing in ${fmtNum(missing)}`);
    for (const t of others) problems.push(`${t.type === "object" || t.type === "array" ? "an" : "a"} ${t.type} in ${fmtNum(t.count)}`);
    if (!problems.length) continue;
    const written = text.slice(from, to);
    const fixed = (strings && !converted ? "float(" : "") + written + (missing && !nilSafe ? " ?? 0" : "") + (strings && !converted ? ")" : "");
    const why = [strings && !converted && "float() reads a decimal string as a number", missing && !nilSafe && "?? 0 counts a missing value as 0"].filter(Boolean).join(" and ");
    const w = {
      from,
      to,
      path,
      code: "not_always_a_number",
      message: `${path} is ${types.map((t) => t.type).join(" | ")} in your events (${problems.join(", ")} of ${fmtNum(total)}): those calls' values fail${why ? `; ${why}` : ""}`,
    };
    if (fixed !== written) w.fix = { label: `Use ${fixed}`, from, to, text: fixed, was: written };
    out.push(w);
  }
  return out;
}
