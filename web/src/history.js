// The audit trail of a versioned thing (a meter, a governance rule) as a
// timeline, newest first: who changed what and when, a new version as a
// word-by-word diff against the version before it.
import { h, fmtTime, fmtAgo } from "./dom.js";

// timeline renders hist ({versions, changes}); describe.created(v1,
// detail) and describe.version(change, previous, current) render what
// the owner's creation and versions hold.
export function timeline(hist, describe) {
  const versions = new Map(hist.versions.map((v) => [v.version, v]));
  const items = [...hist.changes].reverse().map((ch) => {
    const d = ch.detail || {};
    let title, kind = ch.kind, body = null;
    switch (ch.kind) {
      case "created":
        title = "Created";
        body = describe.created(versions.get(1), d);
        break;
      case "version":
        title = `Version ${ch.version}`;
        body = describe.version(ch, versions.get(ch.version - 1), versions.get(ch.version));
        break;
      case "renamed":
        title = "Renamed";
        body = h("p.diff-inline", h("del", d.previous), " → ", h("ins", d.name));
        break;
      case "slug":
        title = d.previous ? "Slug changed" : "Slug set";
        body = h("p.diff-inline", d.previous ? [h("del", d.previous), " → "] : null, h("ins", d.slug));
        break;
      case "status":
        title = d.status === "active" ? "Switched on" : "Switched off";
        kind = d.status === "active" ? "on" : "off";
        break;
      case "archived":
        title = "Archived";
        break;
      default:
        title = ch.kind;
    }
    return h(
      "li.tl-item." + kind,
      { "data-kind": ch.kind, "data-version": ch.version || "" },
      h("span.tl-dot"),
      h("div.tl-head", h("b", title), h("span.dim", " by ", h("span.actor", ch.actor), " · ", h("time", { datetime: ch.at, title: fmtTime(ch.at) }, fmtAgo(ch.at)))),
      body,
    );
  });
  return h("ol.timeline", items);
}

// historyCard is the card of a page that holds its timeline.
export function historyCard(hist, list) {
  const n = hist.changes.length;
  return h("section.card.history", h("header.card-head", h("h2", "History"), h("span.dim", `${n} ${n === 1 ? "change" : "changes"}`)), list);
}

// diffFields compares two versions field by field: fields are [label,
// text(version)]; the texts that differ are diffed token by token.
export function diffFields(prev, cur, fields, same) {
  if (!prev || !cur) return null;
  const rows = [];
  for (const [label, text] of fields) {
    const a = text(prev), b = text(cur);
    if (a === b) continue;
    rows.push(h("div.diff-row", { "data-field": label }, h("span.diff-label", label), h("code.diff", tokenDiff(a, b))));
  }
  return rows.length ? h("div.diff", rows) : h("p.dim.small", same);
}

// tokenDiff marks removed and added tokens (words, strings, operators,
// white space) with a longest-common-subsequence diff.
export function tokenDiff(a, b) {
  // Punctuation stops at a quote: ["a", "b"] is [ "a" , "b" ] (with the
  // space), so a removed string is marked alone.
  const tok = (s) => s.match(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[\w.]+|\s+|[^\w\s"']+|["']/g) || [];
  const x = tok(a), y = tok(b);
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  // Runs of one kind become one element: "and x" reads better than
  // "and", " ", "x" marked apart.
  const out = [];
  const push = (kind, s) => {
    const last = out[out.length - 1];
    if (last && last.kind === kind) last.text += s;
    else out.push({ kind, text: s });
  };
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) push("", x[i++]), j++;
    else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) push("ins", y[j++]);
    else push("del", x[i++]);
  }
  return out.map((p) => (p.kind ? h(p.kind, p.text) : p.text));
}
