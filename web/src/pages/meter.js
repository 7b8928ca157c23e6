// One meter: its usage, its current definition, the on/off switch,
// archiving, and the audit trail as a timeline with diffs.
import { h, icon, replace, statusBadge, confirmDialog, toast, fmtNum, fmtTime, fmtAgo, spinner, fitText } from "../dom.js";
import { get, post, patch, qs, isAbort } from "../api.js";
import { usageChart, groupBars } from "../chart.js";
import { lastDays } from "./meters.js";
import { aggregations, segmented } from "./meterform.js";

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
    const sw = h(
      "button.switch",
      {
        type: "button",
        role: "switch",
        "aria-checked": String(m.status === "active"),
        "aria-label": "Billing on",
        disabled: archived,
        onclick: async () => {
          const on = m.status !== "active";
          sw.disabled = true;
          try {
            await patch("/v1/meters/" + m.id, { active: on });
            toast(on ? "Meter switched on: its usage is billed" : "Meter switched off");
          } catch (e) {
            toast(e.message, "err");
          }
          load();
        },
      },
      h("span.knob"),
    );
    const nameEl = h("h1.meter-name", m.name);
    const renameBtn = h("button.btn.ghost.small", { type: "button", hidden: archived, onclick: rename, "aria-label": "Rename the meter" }, "Rename");
    function rename() {
      const input = h("input.rename", { type: "text", value: m.name, maxlength: 200, "aria-label": "Meter name" });
      let finished = false; // Enter, then the blur of the removed input
      const done = async (save) => {
        if (finished) return;
        finished = true;
        if (save && input.value.trim() && input.value.trim() !== m.name) {
          try {
            await patch("/v1/meters/" + m.id, { name: input.value.trim() });
            toast("Renamed");
          } catch (e) {
            toast(e.message, "err");
          }
        }
        load();
      };
      input.addEventListener("keydown", (e) => (e.key === "Enter" ? done(true) : e.key === "Escape" && done(false)));
      input.addEventListener("blur", () => done(true));
      nameEl.replaceWith(input);
      renameBtn.hidden = true;
      input.focus();
      input.select();
    }
    const archiveBtn = h(
      "button.btn.danger-ghost",
      {
        type: "button",
        disabled: archived,
        onclick: async () => {
          const ok = await confirmDialog({
            title: `Archive “${m.name}”?`,
            danger: true,
            confirm: "Archive meter",
            body: h("div", h("p", "An archived meter stops billing for good and can never change again. Its versions and history stay readable for audits."), h("p.dim", "To pause billing instead, switch the meter off.")),
          });
          if (!ok) return;
          try {
            await post(`/v1/meters/${m.id}/archive`);
            toast("Meter archived");
          } catch (e) {
            toast(e.message, "err");
          }
          load();
        },
      },
      icon("archive", 15),
      "Archive",
    );

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
        h(
          "header.page-head",
          h(
            "div",
            h("a.crumb", { href: "#/meters" }, icon("back", 14), "Meters"),
            h("div.title-row", nameEl, renameBtn, statusBadge(m.status)),
            h("p.sub.mono", m.id, h("span.dim", ` · created ${fmtAgo(m.created_at)} by ${m.created_by}`)),
          ),
          h(
            "div.head-actions",
            h("label.switch-row", sw, h("span", archived ? "Archived" : m.status === "active" ? "Billing on" : "Billing off")),
            archived ? null : h("a.btn.primary", { href: `#/meters/${m.id}/version` }, icon("plus"), "New version"),
            archived ? null : archiveBtn,
          ),
        ),
        archived ? h("div.callout.archived-note", icon("archive", 16), h("p", h("b", "Archived " + fmtAgo(hist.changes.at(-1)?.at) + ". "), "This meter no longer bills and cannot change; its versions and history stay here for audits.")) : null,
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
          h("section.card.history", h("header.card-head", h("h2", "History"), h("span.dim", `${hist.changes.length} ${hist.changes.length === 1 ? "change" : "changes"}`)), timeline(hist)),
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
        chart.update(r, w.from, w.to, "day");
      } catch (e) {
        if (!isAbort(e)) replace(usageStatus, "Usage unavailable: " + e.message);
      }
    }
  }
}

// topStat shows the largest customer: its share of the total for
// additive meters, else its value.
function topStat(r, agg) {
  const g = r.groups?.[0];
  const additive = agg === "count" || agg === "sum";
  const value = !g ? "—" : additive && r.total ? ((100 * (g.value || 0)) / r.total).toFixed(1) + "%" : fmtNum(g.value);
  return h("div.stat", { title: additive ? "the largest customer's share of the total" : "the largest customer's value" }, h("span.stat-label", "Top customer"), h("span.stat-value", value), h("span.stat-sub", g ? g.key || "(no customer id)" : "none"));
}

// timeline renders the audit trail, newest first; a new version shows
// what it changed against the version before it.
function timeline(hist) {
  const versions = new Map(hist.versions.map((v) => [v.version, v]));
  const items = [...hist.changes].reverse().map((ch) => {
    const d = ch.detail || {};
    let title, kind = ch.kind, body = null;
    switch (ch.kind) {
      case "created":
        title = "Created";
        body = specView(versions.get(1), d.name);
        break;
      case "version": {
        title = `Version ${ch.version}`;
        const prev = versions.get(ch.version - 1), cur = versions.get(ch.version);
        body = h("div", ch.effective_from ? h("p.dim.small", "Effective from " + fmtTime(ch.effective_from)) : null, diffView(prev, cur));
        break;
      }
      case "renamed":
        title = "Renamed";
        body = h("p.diff-inline", h("del", d.previous), " → ", h("ins", d.name));
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

function specView(v, name) {
  if (!v) return null;
  return h("dl.mini", name ? [h("dt", "name"), h("dd", name)] : null, h("dt", "filter"), h("dd", h("code", v.filter)), v.aggregation !== "count" ? [h("dt", "value"), h("dd", h("code", v.value))] : null, h("dt", "aggregation"), h("dd", v.aggregation), v.stripe_price_id ? [h("dt", "price"), h("dd", h("code", v.stripe_price_id))] : null);
}

// diffView compares two versions field by field; expressions are diffed
// token by token.
function diffView(prev, cur) {
  if (!prev || !cur) return null;
  const rows = [];
  for (const [k, label] of [["filter", "filter"], ["value", "value"], ["stripe_price_id", "price"], ["rounding", "rounding"]]) {
    const a = prev[k] || "", b = cur[k] || "";
    if (a === b) continue;
    rows.push(h("div.diff-row", h("span.diff-label", label), h("code.diff", tokenDiff(a, b))));
  }
  return rows.length ? h("div.diff", rows) : h("p.dim.small", "Same definition (a new effective date).");
}

// tokenDiff marks removed and added tokens (words, strings, operators,
// white space) with a longest-common-subsequence diff.
export function tokenDiff(a, b) {
  const tok = (s) => s.match(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[\w.]+|\s+|[^\w\s]+/g) || [];
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
