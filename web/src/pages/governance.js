// Governance: every rule with its on/off switch and how many customers it
// holds for now (blocks, for a blocking rule), the last evaluation round,
// archived rules apart, and a look-up of one customer. The helpers at the
// end show matches (a customer and the values that made it match) for
// the rule, preview and customer pages.
import { h, icon, replace, pageHead, statusBadge, fmtAgo, fmtNum, fmtTime, empty, spinner } from "../dom.js";
import { get, isAbort } from "../api.js";
import { onOffSwitch } from "../controls.js";
import { fmtValue } from "./meterform.js";

export function governancePage(main) {
  const ctl = new AbortController();
  const round = h("p.sub");
  const body = h("div.card", h("div.loading", spinner()));
  const archived = h("div");
  replace(
    main,
    h(
      "div.page.wide",
      pageHead({
        title: "Governance",
        sub: [h("p.sub", "Rules that make your API's agents answer a customer's calls themselves while a condition holds for it: unpaid invoices, a quota reached."), round],
        actions: h("a.btn.primary", { href: "#/governance/new" }, icon("plus"), "New rule"),
      }),
      body,
      archived,
      lookupCard(),
    ),
  );
  load();
  return () => ctl.abort();

  async function load() {
    let rules, status;
    try {
      [rules, status] = await Promise.all([get("/v1/governance/rules", { signal: ctl.signal }), get("/v1/governance/status", { signal: ctl.signal })]);
    } catch (e) {
      if (!isAbort(e)) replace(body, h("p.form-error", "Could not load the rules: " + e.message));
      return;
    }
    replace(round, roundText(status));
    const live = rules.rules.filter((r) => r.status !== "archived");
    const gone = rules.rules.filter((r) => r.status === "archived");
    if (!live.length) {
      replace(body, empty(gone.length ? "No rule in use" : "No governance rules yet", "A rule holds for customers whose condition is true (e.g. invoices.unpaid > 0) and makes the agents answer their calls with its response. Preview it on today's customers, then switch it on.", h("a.btn.primary", { href: "#/governance/new" }, icon("plus"), "Create your first rule")));
    } else replace(body, h("div.table-wrap", rulesTable(live, load)));
    replace(
      archived,
      gone.length
        ? h("details.card.archived-rules", h("summary", h("h2", `Archived (${gone.length})`), h("span.dim.small", " no longer govern; their history stays")), h("div.table-wrap.flush", rulesTable(gone, load)))
        : null,
    );
  }
}

// roundText says when the last evaluation round ran and over how many
// customers.
function roundText(status) {
  if (!status.evaluated_at) return "Not evaluated yet.";
  const n = Object.entries(status.evaluated || {}).map(([k, v]) => `${fmtNum(v)} ${k === "company" ? (v === 1 ? "company" : "companies") : v === 1 ? "user" : "users"}`);
  return h("span", "Last evaluated ", h("time", { datetime: status.evaluated_at, title: fmtTime(status.evaluated_at) }, fmtAgo(status.evaluated_at)), n.length ? ` over ${n.join(" and ")}.` : ".");
}

function rulesTable(rules, reload) {
  const rows = rules.map((r) => {
    const c = r.current;
    const href = "#/governance/rules/" + r.id;
    const on = r.status === "active";
    return h(
      "tr",
      { "data-id": r.id, onclick: (e) => e.target.closest("a, button") || (location.hash = href) },
      h("td", h("a.row-link", { href }, r.name), h("div.mono.dim", r.id), h("div.phone-only.dim.small", appliesLabel(r.applies_to))),
      h("td", appliesLabel(r.applies_to)),
      h("td.cond-cell", h("code.cond", { title: c.condition }, c.condition)),
      h("td", statusBadge(r.status), r.failed ? h("div", h("span.pill.err", { title: r.failed, "data-failed": "" }, "failed: " + r.failed)) : null),
      h("td", onOffSwitch({ path: "/v1/governance/rules/" + r.id, active: on, disabled: r.status === "archived", label: `${r.name}: governing`, messages: ["Rule switched on: the agents enforce it", "Rule switched off"], done: reload })),
      h("td.num", { "data-matching": r.matching_now, title: c.block ? "customers whose calls it blocks now" : "customers whose answers get its headers now" }, h("b", fmtNum(r.matching_now)), h("div.dim.small", c.block ? "blocked" : "headers only")),
      h("td.dim", r.evaluated_at ? h("time", { datetime: r.evaluated_at, title: fmtTime(r.evaluated_at) }, fmtAgo(r.evaluated_at)) : "—"),
    );
  });
  return h(
    "table.table.rules-table",
    h("thead", h("tr", h("th", "Rule"), h("th", "Applies to"), h("th", "Condition"), h("th", "Status"), h("th", "On"), h("th.num", "Blocking now"), h("th", "Evaluated"))),
    h("tbody", rows),
  );
}

export const appliesLabel = (kind) => (kind === "user" ? "each user" : "each company");

// lookupCard asks for a customer and opens its page: which rules hold
// for it now, and why.
export function lookupCard(kind = "company", id = "") {
  const kindSel = h("select#lookup-kind", { "aria-label": "Kind of customer" }, h("option", { value: "company", selected: kind === "company" }, "Company"), h("option", { value: "user", selected: kind === "user" }, "User"));
  const idIn = h("input#lookup-id", { type: "search", value: id, placeholder: "company_id or user_id", spellcheck: "false", required: true });
  return h(
    "section.card.lookup",
    { "aria-label": "Look up a customer" },
    h("header.card-head", h("div", h("h2", "Look up a customer"), h("p.sub", "Which rules hold for a company or a user now, and the values that made them hold."))),
    h(
      "form.filters",
      { role: "search", onsubmit: (e) => (e.preventDefault(), idIn.value.trim() && (location.hash = customerHref(kindSel.value, idIn.value.trim()))) },
      h("label.field.inline.medium", { for: "lookup-kind" }, h("span.label", "Customer"), kindSel),
      h("label.field.inline.grow", { for: "lookup-id" }, h("span.label", "Id"), idIn),
      h("button.btn.primary", { type: "submit" }, "Look up"),
    ),
  );
}

export const customerHref = (kind, id) => `#/governance/customers/${kind}/${encodeURIComponent(id)}`;

// valuesView shows what a condition read for a customer: path = value.
export function valuesView(values) {
  const ks = Object.keys(values || {});
  if (!ks.length) return h("span.dim", "—");
  return h(
    "dl.values",
    ks.map((k) => h("div", { "data-key": k }, h("dt", h("code", k)), h("dd", fmtValue(values[k])))),
  );
}

// matchTable lists matches ({customer, values, calls_7d}) of kind, each
// customer linked to its page.
export function matchTable(matches, kind, { calls = false } = {}) {
  return h(
    "div.table-wrap.flush",
    h(
      "table.table.match-table",
      h("thead", h("tr", h("th", kind === "user" ? "User" : "Company"), h("th", "Values read"), calls ? h("th.num", "Calls, 7 days") : null)),
      h(
        "tbody",
        matches.map((m) =>
          h(
            "tr",
            { "data-customer": m.customer },
            h("td", h("a.mono", { href: customerHref(kind, m.customer) }, m.customer)),
            h("td", valuesView(m.values)),
            calls ? h("td.num", fmtNum(m.calls_7d ?? 0)) : null,
          ),
        ),
      ),
    ),
  );
}
