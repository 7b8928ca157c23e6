// One governance rule: whom it holds for now and why, its version in
// force, the on/off switch, rename, archive, and the history as a
// timeline with diffs.
import { h, icon, replace, fmtNum, fmtTime, fmtAgo, spinner, jsonView } from "../dom.js";
import { get, isAbort } from "../api.js";
import { timeline, diffFields, historyCard } from "../history.js";
import { lifecycleHead } from "../controls.js";
import { matchTable, appliesLabel } from "./governance.js";

export function rulePage(main, params) {
  const ctl = new AbortController();
  replace(main, h("div.loading", spinner()));
  load();
  return () => ctl.abort();

  async function load() {
    let r, hist, status;
    try {
      const opts = { signal: ctl.signal };
      [r, hist, status] = await Promise.all([get("/v1/governance/rules/" + params.id, opts), get(`/v1/governance/rules/${params.id}/versions`, opts), get("/v1/governance/status", opts)]);
    } catch (e) {
      if (!isAbort(e)) replace(main, h("div.page", h("a.crumb", { href: "#/governance" }, icon("back", 14), "Governance"), h("h1", "Rule not found"), h("p.form-error", e.message)));
      return;
    }
    render(r, hist, status.rules.find((x) => x.id === r.id));
  }

  function render(r, hist, now) {
    document.title = r.name + " · meterd";
    const c = r.current;
    replace(
      main,
      h(
        "div.page.wide",
        lifecycleHead(ruleKind, r, { hist, about: ` · ${appliesLabel(r.applies_to)} · created ${fmtAgo(r.created_at)} by ${r.created_by}`, done: load }),
        h(
          "div.detail-layout",
          h("div.col", matchingCard(r, now), specCard(c)),
          historyCard(hist, ruleHistory(hist)),
        ),
      ),
    );
  }
}

// ruleKind is what a rule's page head says and does (lifecycleHead).
const ruleKind = {
  what: "rule",
  page: (id) => "#/governance/rules/" + id,
  path: (id) => "/v1/governance/rules/" + id,
  back: ["#/governance", "Governance"],
  on: { label: "Governing", states: ["Governing", "Off"], messages: ["Rule switched on: the agents enforce it", "Rule switched off"] },
  archiveBody: h("div", h("p", "An archived rule stops governing for good and can never change again. Its versions and history stay readable, so every block it made stays explainable."), h("p.dim", "To pause it instead, switch it off.")),
  archivedNote: "This rule no longer governs and cannot change; its versions and history stay here.",
};

// matchingCard shows whom the rule holds for in the last round, with the
// values that made it hold.
function matchingCard(r, now) {
  const head = h(
    "header.card-head",
    h("div", h("h2", r.current.block ? "Blocking now" : "Holding now"), h("p.sub", r.evaluated_at ? ["Last evaluated ", h("time", { datetime: r.evaluated_at, title: fmtTime(r.evaluated_at) }, fmtAgo(r.evaluated_at))] : "Not evaluated yet")),
    h("span.big-count", { "data-matching": r.matching_now }, fmtNum(r.matching_now)),
  );
  let body;
  if (r.failed) body = h("p.form-error", { "data-failed": "" }, "The last round could not evaluate this rule, so it holds for nobody: " + r.failed);
  else if (r.status !== "active") body = h("p.muted", r.status === "archived" ? "An archived rule holds for nobody." : "The rule is off: it holds for nobody. Preview a version to see whom it would hold for, then switch it on.");
  else if (!now?.matching?.length) body = h("p.muted", `Its condition holds for no ${r.applies_to} now.`);
  else body = matchTable(now.matching, r.applies_to);
  return h("section.card.matching", head, body);
}

function specCard(c) {
  return h(
    "section.card",
    h("header.card-head", h("h2", `Version in force · v${c.version}`), h("span.dim.small", `by ${c.created_by}, ${fmtAgo(c.created_at)}`)),
    h(
      "dl.def",
      h("dt", "Condition"),
      h("dd", h("pre.code", c.condition)),
      h("dt", "Answer"),
      h("dd", c.block ? ["blocks the call with ", h("b", c.response.status)] : "adds its headers to your API's answers"),
      h("dt", "Headers"),
      h("dd", Object.keys(c.response.headers || {}).length ? h("pre.code", headersText(c)) : h("span.dim", "none")),
      c.block ? [h("dt", "Body"), h("dd", c.response.body === undefined ? h("span.dim", "none") : jsonView(c.response.body, "Response body"))] : null,
      h("dt", "Routes"),
      h("dd", c.routes.length ? h("pre.code", routesText(c)) : "every call"),
    ),
  );
}

const headersText = (v) => Object.entries(v.response.headers || {}).map(([k, x]) => `${k}: ${x}`).sort().join("\n");
const routesText = (v) => v.routes.map((r) => `${r.verb || "any method"} ${r.route || "any path"}`).join("\n");

// What a version's diff compares, as text.
const ruleFields = [
  ["condition", (v) => v.condition],
  ["answer", (v) => (v.block ? `block with ${v.response.status}` : "headers only")],
  ["headers", headersText],
  ["body", (v) => (v.response.body === undefined ? "" : JSON.stringify(v.response.body, null, 2))],
  ["routes", routesText],
];

const ruleHistory = (hist) =>
  timeline(hist, {
    created: (v, d) =>
      v &&
      h(
        "dl.mini",
        h("dt", "name"),
        h("dd", d.name),
        h("dt", "applies to"),
        h("dd", d.applies_to),
        h("dt", "condition"),
        h("dd", h("code", v.condition)),
        h("dt", "answer"),
        h("dd", ruleFields[1][1](v)),
        v.routes.length ? [h("dt", "routes"), h("dd", routesText(v))] : null,
      ),
    version: (_ch, prev, cur) => diffFields(prev, cur, ruleFields, "Same definition."),
  });
