// The meters list: name, status, current version, Stripe price and the
// last 7 days of usage.
import { h, icon, replace, statusBadge, fmtAgo, fmtCompact, empty, spinner } from "../dom.js";
import { get, qs, isAbort } from "../api.js";
import { sparkline, series } from "../chart.js";

const DAY = 86400e3;

// lastDays is the window of the last n whole UTC days up to now.
export function lastDays(n) {
  const to = new Date(Math.ceil(Date.now() / 60000) * 60000);
  const from = new Date(Math.floor((to.getTime() - n * DAY) / DAY) * DAY + DAY);
  return { from: from.toISOString(), to: to.toISOString() };
}

export function metersPage(main) {
  const ctl = new AbortController();
  const body = h("div.card", h("div.loading", spinner()));
  replace(
    main,
    h(
      "div.page",
      h(
        "header.page-head",
        h("div", h("h1", "Meters"), h("p.sub", "What each customer is billed for, computed from your API calls.")),
        h("a.btn.primary", { href: "#/meters/new" }, icon("plus"), "New meter"),
      ),
      body,
    ),
  );
  load();
  async function load() {
    let meters;
    try {
      meters = (await get("/v1/meters", { signal: ctl.signal })).meters || [];
    } catch (e) {
      if (!isAbort(e)) replace(body, h("p.form-error", "Could not load the meters: " + e.message));
      return;
    }
    if (!meters.length) {
      replace(body, empty("No meters yet", "A meter counts the API calls you bill for: write a filter, preview it on your traffic, then turn it on.", h("a.btn.primary", { href: "#/meters/new" }, icon("plus"), "Create your first meter")));
      return;
    }
    const w = lastDays(7);
    const rows = meters.map((m) => {
      const usage = h("div.usage-cell", h("span.muted", "…"));
      const row = h(
        "tr",
        { tabindex: "-1", onclick: (e) => e.target.closest("a") || (location.hash = "#/meters/" + m.id) },
        h("td", h("a.row-link", { href: "#/meters/" + m.id }, m.name), h("div.mono.dim", m.id)),
        h("td", statusBadge(m.status)),
        h("td.num", "v" + m.current_version),
        h("td", m.current.stripe_price_id ? h("code.price", m.current.stripe_price_id) : h("span.muted", "not bound")),
        h("td", usage),
        h("td.dim", { title: m.updated_at }, fmtAgo(m.updated_at)),
      );
      loadUsage(m, w, usage);
      return row;
    });
    replace(
      body,
      h(
        "div.table-wrap",
        h(
          "table.table.meters-table",
          h("thead", h("tr", h("th", "Meter"), h("th", "Status"), h("th.num", "Version"), h("th", "Stripe price"), h("th", "Last 7 days"), h("th", "Updated"))),
          h("tbody", rows),
        ),
      ),
    );
  }
  async function loadUsage(m, w, cell) {
    try {
      const r = await get(`/v1/meters/${m.id}/usage` + qs({ ...w, bucket: "day", top: 1 }), { signal: ctl.signal });
      const s = series(r, w.from, w.to, "day");
      replace(cell, sparkline(s.ys), h("span.usage-total", fmtCompact(r.total ?? 0)));
    } catch (e) {
      if (!isAbort(e)) replace(cell, h("span.muted", { title: e.message }, "—"));
    }
  }
  return () => ctl.abort();
}
