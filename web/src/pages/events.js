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
  // A filter the API refuses is marked red, its message under the row.
  const filterErr = h("p#filter-error.field-error.filters-error", { role: "alert", hidden: true });
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
      onreset: () => setTimeout(() => {
        for (const k of Object.keys(f)) f[k] = "";
        history.replaceState(null, "", "#/events");
        reload();
      }),
    },
    input("company_id", "Company", "any company"),
    input("user_id", "User", "any user"),
    input("route", "Route", "/v1/search"),
    input("status", "Status", "404, 4xx, 0", ".narrow"),
    h("label.field.inline.medium", { for: "range" }, h("span.label", "Time"), range),
    h("button.btn.primary", { type: "submit" }, "Filter"),
    filterErr,
  );
  const filterInputs = ["company_id", "user_id", "route", "status"];
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
    showFieldError(null);
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
          keysStat(s.metadata_keys || []),
        ),
      () => {}, // the events' request says why
    );
  }
  async function load(cur) {
    more.disabled = true;
    let r;
    try {
      r = await get("/v1/events" + qs({ limit: 50, cursor: cur, ...filters() }), { signal: ctl.signal });
    } catch (e) {
      if (isAbort(e)) return;
      // A filter the API refuses is marked at its field.
      more.hidden = true;
      if (filterInputs.includes(e.body?.field)) {
        showFieldError(e.body.field, e.message);
        replace(list, h("tr", h("td", { colspan: 6 }, h("p.muted.table-note", "Fix the ", e.body.field.replace("_id", ""), " filter to see events."))));
      } else replace(list, h("tr", h("td", { colspan: 6 }, h("p.form-error", e.message))));
      return;
    }
    if (!cur) replace(list);
    const filtered = Object.values(f).some(Boolean);
    if (!cur && !r.events.length)
      list.append(h("tr", h("td", { colspan: 6 }, empty("No events", filtered ? "Nothing matches these filters." : "Send API calls to /v1/events (Moesif format) or /api/v1/events (CloudEvents) and they appear here.", filtered ? h("button.btn", { type: "button", onclick: () => form.reset() }, "Clear filters") : null))));
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
  // showFieldError marks the filter field the API refused (none: clears).
  function showFieldError(field, message) {
    filterErr.hidden = !field;
    filterErr.textContent = message || "";
    info.classList.toggle("stale", !!field);
    for (const k of filterInputs) {
      const el = form.querySelector("#" + k);
      el.setAttribute("aria-invalid", String(k === field));
      if (k === field) el.setAttribute("aria-describedby", filterErr.id);
      else el.removeAttribute("aria-describedby");
    }
  }
  return () => ctl.abort();
}

// keysStat is the metadata keys card: how many distinct key paths the
// events carry, and the most common ones (a key seen with two JSON types
// is one key).
function keysStat(keys) {
  const counts = new Map();
  for (const k of keys) counts.set(k.key, (counts.get(k.key) || 0) + k.count);
  const top = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
  const shown = top.slice(0, 5);
  return h(
    "div.stat",
    { "data-stat": "metadata-keys", title: top.join(", ") },
    h("span.stat-label", "Metadata keys"),
    h("span.stat-value", fmtNum(top.length)),
    h("span.stat-sub", shown.join(", ") + (top.length > shown.length ? ` and ${top.length - shown.length} more` : "")),
  );
}


