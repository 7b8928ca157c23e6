// Events: the newest stored calls, filterable by customer, user, route,
// status and time, each openable as formatted JSON.
import { h, replace, modal, jsonView, copyButton, fmtNum, fmtTime, spinner, empty } from "../dom.js";
import { get, qs, isAbort } from "../api.js";

// eventSummary is a one-line description of an event.
export function eventSummary(ev) {
  const st = ev.response?.status;
  return h(
    "span.ev-sum",
    ev.request ? h("span.verb", ev.request.verb) : h("span.verb.ce", "CE"),
    h("span.route", ev.request ? ev.request.route : ev.type || ev.id),
    st != null ? h("span.status.s" + String(st)[0], st) : ev.request ? h("span.status.s0", "—") : null,
    h("span.who", ev.company_id || ev.user_id || "anonymous"),
  );
}

// openEvent shows one event as JSON, with how the meter saw it.
export function openEvent(ev, verdict) {
  modal({
    title: ev.request ? `${ev.request.verb} ${ev.request.route}` : ev.type || "Event",
    wide: true,
    content: () =>
      h(
        "div.event-view",
        h(
          "div.event-meta",
          h("span", fmtTime(ev.time)),
          h("code", ev.id),
          verdict?.value != null ? h("span.pill.ok", "matched · value " + (typeof verdict.value === "number" ? fmtNum(verdict.value) : JSON.stringify(verdict.value))) : null,
          verdict?.error ? h("span.pill.err", "matched · the value failed: it adds nothing and counts as a value error") : null,
          verdict?.unmatched ? h("span.pill", "not matched") : null,
          h("span.grow"),
          copyButton(() => JSON.stringify(ev, null, 2), "Copy JSON"),
        ),
        jsonView(ev, "The event as JSON"),
      ),
  });
}

export function eventsPage(main, _params, query) {
  let ctl = new AbortController();
  const f = {};
  for (const k of ["company_id", "user_id", "route", "status", "range"]) f[k] = query.get(k) || "";
  const list = h("tbody");
  const more = h("button.btn", { type: "button", hidden: true, onclick: () => load(cursor) }, "Load more");
  const info = h("div.stats.compact");
  const tableBox = h("div.card", h("div.table-wrap", h("table.table.events-table", h("thead", h("tr", h("th", "Time (UTC)"), h("th", "Call"), h("th.num", "Status"), h("th", "Company"), h("th", "User"), h("th.num", "Duration"))), list)), h("div.table-foot", more));
  let cursor = null;
  const input = (id, label, ph, cls = "") =>
    h("label.field.inline" + cls, { for: id }, h("span.label", label), h("input", { id, type: "search", value: f[id], placeholder: ph, spellcheck: "false" }));
  const range = h(
    "select#range",
    ["", "1h", "24h", "7d"].map((r) => h("option", { value: r, selected: f.range === r }, r ? "last " + r.replace("h", " hours").replace("1 hours", "hour").replace("d", " days") : "any time")),
  );
  const form = h(
    "form.filters",
    {
      role: "search",
      onsubmit: (e) => {
        e.preventDefault();
        for (const k of ["company_id", "user_id", "route", "status"]) f[k] = form.querySelector("#" + k).value.trim();
        f.range = range.value;
        history.replaceState(null, "", "#/events" + qs(f));
        reload();
      },
    },
    input("company_id", "Company", "any company"),
    input("user_id", "User", "any user"),
    input("route", "Route", "/v1/search"),
    input("status", "Status", "200, 4xx, 0", ".narrow"),
    h("label.field.inline.medium", { for: "range" }, h("span.label", "Time"), range),
    h("button.btn.primary", { type: "submit" }, "Filter"),
  );
  replace(main, h("div.page.wide", h("header.page-head", h("div", h("h1", "Events"), h("p.sub", "The API calls meterd has stored, newest first. Open one to see every field a meter can use."))), info, form, tableBox));
  reload();

  function window() {
    const ms = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 }[f.range];
    return ms ? { from: new Date(Date.now() - ms).toISOString() } : {};
  }
  function filters() {
    return { company_id: f.company_id, user_id: f.user_id, route: f.route, status: f.status, ...window() };
  }
  function reload() {
    ctl.abort();
    ctl = new AbortController();
    cursor = null;
    replace(list, h("tr", h("td", { colspan: 6 }, h("div.loading", spinner()))));
    load(null);
    const p = filters();
    get("/v1/events/stats" + qs(p), { signal: ctl.signal }).then(
      (s) =>
        replace(
          info,
          h("div.stat", h("span.stat-label", "Events"), h("span.stat-value", fmtNum(s.count))),
          h("div.stat", h("span.stat-label", "Companies"), h("span.stat-value", fmtNum(s.distinct_companies))),
          h("div.stat", h("span.stat-label", "Users"), h("span.stat-value", fmtNum(s.distinct_users))),
          h("div.stat", h("span.stat-label", "Metadata keys"), h("span.stat-value", fmtNum(new Set((s.metadata_keys || []).map((k) => k.key)).size)), h("span.stat-sub", (s.metadata_keys || []).slice(0, 4).map((k) => k.key).join(", "))),
        ),
      () => replace(info),
    );
  }
  async function load(cur) {
    more.disabled = true;
    let r;
    try {
      r = await get("/v1/events" + qs({ limit: 50, cursor: cur, ...filters() }), { signal: ctl.signal });
    } catch (e) {
      if (!isAbort(e)) replace(list, h("tr", h("td", { colspan: 6 }, h("p.form-error", e.message))));
      return;
    }
    if (!cur) replace(list);
    if (!cur && !r.events.length) list.append(h("tr", h("td", { colspan: 6 }, empty("No events", Object.values(f).some(Boolean) ? "Nothing matches these filters." : "Send API calls to /v1/events (Moesif format) or /api/v1/events (CloudEvents) and they appear here."))));
    for (const ev of r.events) {
      const st = ev.response?.status;
      list.append(
        h(
          "tr.clickable",
          { tabindex: "0", "data-id": ev.id, onclick: () => openEvent(ev), onkeydown: (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), openEvent(ev)) },
          h("td.mono.dim.nowrap", { title: ev.time }, ev.time.slice(5, 19).replace("T", " ")),
          h("td", ev.request ? [h("span.verb", ev.request.verb), " ", h("span.route", ev.request.route)] : [h("span.verb.ce", "CE"), " ", ev.type], h("div.phone-only.dim.small", ev.company_id || "no company")),
          h("td.num", st != null ? h("span.status.s" + String(st)[0], st) : h("span.dim", "—")),
          h("td", ev.company_id || h("span.dim", "—")),
          h("td", ev.user_id || h("span.dim", "—")),
          h("td.num.dim", ev.request ? fmtNum(ev.duration_ms) + " ms" : "—"),
        ),
      );
    }
    cursor = r.next_cursor;
    more.hidden = !cursor;
    more.disabled = false;
  }
  return () => ctl.abort();
}


