// One meter: its usage, its current definition, the on/off switch,
// archiving, and the audit trail as a timeline with diffs.
import { h, icon, replace, fmtNum, fmtTime, fmtAgo, spinner, fitText } from "../dom.js";
import { get, qs, isAbort } from "../api.js";
import { usageChart, groupBars } from "../chart.js";
import { lastDays } from "./meters.js";
import { timeline, diffFields, historyCard } from "../history.js";
import { lifecycleHead } from "../controls.js";
import { aggregations, segmented, unitOf } from "./meterform.js";

export function meterPage(main, params) {
  const ctl = new AbortController();
  let chart = null;
  replace(main, h("div.loading", spinner()));
  load();
  return () => (ctl.abort(), chart?.destroy());

  async function load() {
    let m, hist;
    try {
      [m, hist] = await Promise.all([get("/v1/meters/" + params.id, { signal: ctl.signal }), get(`/v1/meters/${params.id}/versions`, { signal: ctl.signal })]);
    } catch (e) {
      if (!isAbort(e)) replace(main, h("div.page", h("a.crumb", { href: "#/meters" }, icon("back", 14), "Meters"), h("h1", "Meter not found"), h("p.form-error", e.message)));
      return;
    }
    render(m, hist);
  }

  function render(m, hist) {
    chart?.destroy();
    document.title = m.name + " · meterd";
    const archived = m.status === "archived";
    const c = m.current;
    const chartHost = h("div.chart");
    const usageStats = h("div.stats.compact");
    const usageStatus = h("p.muted.small");
    const usageGroups = h("div.usage-groups");
    const range = { key: "30d" };
    const rangeSeg = segmented("Period", [["7d", "7 days"], ["30d", "30 days"]], range.key, (k) => ((range.key = k), loadUsage()));
    chart = usageChart(chartHost, { height: 200 });

    replace(
      main,
      h(
        "div.page.wide",
        lifecycleHead(meterKind, m, { hist, about: ` · created ${fmtAgo(m.created_at)} by ${m.created_by}`, done: load }),
        h(
          "div.detail-layout",
          h(
            "div.col",
            h("section.card", h("header.card-head", h("div", h("h2", "Usage"), usageStatus), rangeSeg.el), usageStats, chartHost, usageGroups),
            h(
              "section.card",
              h(
                "header.card-head",
                h("h2", `Latest version · v${c.version}`),
                archived ? null : c.effective_from && new Date(c.effective_from) > new Date() ? h("span.pill.vm", "scheduled: takes effect " + fmtAgo(c.effective_from)) : h("span.pill.ok", "in force"),
              ),
              h(
                "dl.def",
                h("dt", "Filter"),
                h("dd", h("pre.code", c.filter)),
                c.aggregation !== "count" ? [h("dt", "Value"), h("dd", h("pre.code", c.value))] : null,
                h("dt", "Aggregation"),
                h("dd", c.aggregation, h("span.dim", " — " + aggregations[c.aggregation])),
                h("dt", "Billed customer"),
                h("dd", h("code", c.group_by)),
                h("dt", "Stripe price"),
                h("dd", c.stripe_price_id ? h("code", c.stripe_price_id) : h("span.dim", "not bound")),
                h("dt", "Effective from"),
                h("dd", c.effective_from ? fmtTime(c.effective_from) : "the beginning (version 1)"),
              ),
            ),
          ),
          historyCard(hist, meterHistory(hist)),
        ),
      ),
    );
    loadUsage();

    async function loadUsage() {
      const w = lastDays(range.key === "7d" ? 7 : 30);
      replace(usageStatus, "Loading…");
      try {
        const r = await get(`/v1/meters/${m.id}/usage` + qs({ ...w, bucket: "day", top: 5 }), { signal: ctl.signal });
        replace(usageStatus, `Per day, computed with the version in force at each call · ${r.engine.toUpperCase()} · ${fmtNum(r.took_ms)} ms`);
        replace(
          usageStats,
          h("div.stat", { "data-stat": "total" }, h("span.stat-label", "Total"), h("span.stat-value", fmtNum(r.total))),
          h("div.stat", h("span.stat-label", "Matched calls"), h("span.stat-value", fmtNum(r.matched_events))),
          topStat(r, c.aggregation),
          h("div.stat" + (r.value_errors ? ".warn" : ""), h("span.stat-label", "Value errors"), h("span.stat-value", fmtNum(r.value_errors))),
        );
        fitText(usageStats);
        replace(usageGroups, h("h3", "Top customers"), groupBars(r.groups, c.aggregation !== "count"));
        // Where a version took effect within the window.
        const marks = (r.versions || []).slice(1).map((v) => ({ at: v.from, version: v.version, label: "v" + v.version, title: `version ${v.version} in force from ${fmtTime(v.from)}` }));
        chart.update(r, w.from, w.to, "day", { unit: unitOf(c), marks });
      } catch (e) {
        if (!isAbort(e)) replace(usageStatus, "Usage unavailable: " + e.message);
      }
    }
  }
}

// meterKind is what a meter's page head says and does (lifecycleHead).
const meterKind = {
  what: "meter",
  page: (id) => "#/meters/" + id,
  path: (id) => "/v1/meters/" + id,
  back: ["#/meters", "Meters"],
  on: { label: "Billing on", states: ["Billing on", "Billing off"], messages: ["Meter switched on: its usage is billed", "Meter switched off"] },
  archiveBody: h("div", h("p", "An archived meter stops billing for good and can never change again. Its versions and history stay readable for audits."), h("p.dim", "To pause billing instead, switch the meter off.")),
  archivedNote: "This meter no longer bills and cannot change; its versions and history stay here for audits.",
};

// topStat shows the largest customer: its share of the total for
// additive meters, else its value.
function topStat(r, agg) {
  const g = r.groups?.[0];
  const additive = agg === "count" || agg === "sum";
  const value = !g ? "—" : additive && r.total ? ((100 * (g.value || 0)) / r.total).toFixed(1) + "%" : fmtNum(g.value);
  return h("div.stat", { title: additive ? "the largest customer's share of the total" : "the largest customer's value" }, h("span.stat-label", "Top customer"), h("span.stat-value", value), h("span.stat-sub", g ? g.key || "(no customer id)" : "none"));
}

// meterHistory renders a meter's audit trail: its creation shows the
// definition, a version what it changed against the one before.
const meterHistory = (hist) =>
  timeline(hist, {
    created: (v, d) => specView(v, d.name),
    version: (ch, prev, cur) =>
      h("div", ch.effective_from ? h("p.dim.small", "Effective from " + fmtTime(ch.effective_from)) : null, diffFields(prev, cur, meterFields, "Same definition (a new effective date).")),
  });

const meterFields = [["filter", "filter"], ["value", "value"], ["stripe_price_id", "price"], ["rounding", "rounding"]].map(([k, label]) => [label, (v) => v[k] || ""]);

function specView(v, name) {
  if (!v) return null;
  return h("dl.mini", name ? [h("dt", "name"), h("dd", name)] : null, h("dt", "filter"), h("dd", h("code", v.filter)), v.aggregation !== "count" ? [h("dt", "value"), h("dd", h("code", v.value))] : null, h("dt", "aggregation"), h("dd", v.aggregation), v.stripe_price_id ? [h("dt", "price"), h("dd", h("code", v.stripe_price_id))] : null);
}
