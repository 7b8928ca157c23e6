// One customer under governance: which active rules hold for it now, what
// its calls get, and the values that made each hold
// (GET /v1/governance/customers/{company|user}/{id}).
import { h, replace, pageHead, fmtTime, fmtAgo, spinner, empty } from "../dom.js";
import { get, isAbort } from "../api.js";
import { lookupCard, valuesView } from "./governance.js";

export function governedCustomerPage(main, params) {
  const ctl = new AbortController();
  const kind = params.kind || "company";
  const id = params.id || "";
  const result = h("section.card.customer-rules", { "aria-label": "Rules holding" });
  replace(
    main,
    h(
      "div.page.wide",
      pageHead({ back: ["#/governance", "Governance"], title: id ? h("h1", h("span.mono", id)) : "Look up a customer", sub: id && `The ${kind} whose calls carry ${kind}_id = ${JSON.stringify(id)}.` }),
      lookupCard(kind, id),
      id ? result : null,
    ),
  );
  if (id) load();
  return () => ctl.abort();

  async function load() {
    replace(result, h("div.loading", spinner()));
    let c;
    try {
      c = await get(`/v1/governance/customers/${kind}/${encodeURIComponent(id)}`, { signal: ctl.signal });
    } catch (e) {
      if (!isAbort(e)) replace(result, h("p.form-error", e.message));
      return;
    }
    document.title = id + " · meterd";
    const when = c.evaluated_at ? ["As of the last evaluation, ", h("time", { datetime: c.evaluated_at, title: fmtTime(c.evaluated_at) }, fmtAgo(c.evaluated_at)), "."] : "Not evaluated yet.";
    const blocked = c.rules.some((r) => r.block);
    replace(
      result,
      h(
        "header.card-head",
        h("div", h("h2", c.rules.length ? (blocked ? "Blocked" : "Governed") : "Not governed"), h("p.sub", when)),
        c.rules.length ? h("span.pill." + (blocked ? "err" : "vm"), `${c.rules.length} ${c.rules.length === 1 ? "rule holds" : "rules hold"}`) : h("span.pill.ok", "no rule holds"),
      ),
      c.rules.length
        ? h(
            "ul.held-rules",
            c.rules.map((r) =>
              h(
                "li",
                { "data-rule": r.rule_id },
                h("div.held-head", h("a.row-link", { href: "#/governance/rules/" + r.rule_id }, r.name), r.block ? h("span.pill.err", `blocked with ${r.status}`) : h("span.pill.vm", "headers added")),
                h("p.dim.small", "because its condition read:"),
                valuesView(r.values),
              ),
            ),
          )
        : empty(`No active rule holds for this ${kind} now`, "Its calls reach your API as usual. Rules that are off, archived or apply to the other kind of customer are not evaluated for it."),
    );
  }
}
