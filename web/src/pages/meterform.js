// New meter and new version: the expression editors with live
// validation, and under them the backtest preview of the meter over past
// traffic, refreshed as you type.
import { h, icon, replace, pageHead, debounce, confirmDialog, toast, fmtNum, fmtTime, spinner, fitText } from "../dom.js";
import { post, isAbort, ApiError } from "../api.js";
import { editor, reportErrors, validator, warningLine, stillTyping } from "../expr.js";
import { keyWarnings, onKeys } from "../keys.js";
import { formFrame } from "../controls.js";
import { usageChart, groupBars } from "../chart.js";
import { eventSummary, openEvent } from "./events.js";

const DAY = 86400e3;
const windows = {
  "24h": { label: "24 hours", ms: DAY, bucket: "hour" },
  "7d": { label: "7 days", ms: 7 * DAY, bucket: "hour" },
  "30d": { label: "30 days", ms: 30 * DAY, bucket: "day" },
};

export const aggregations = {
  count: "Count of calls",
  sum: "Sum of values",
  max: "Largest value",
  min: "Smallest value",
  unique: "Distinct values",
};

export function meterForm(main, params) {
  const editing = !!params.id;
  const state = { name: "", filter: "", value: "", aggregation: "count", group_by: "company_id", stripe_price_id: "", window: "7d", bucket: "hour" };
  let meter = null;
  return formFrame(main, editing && "/v1/meters/" + params.id, "Meter not found", (m, page) => {
    if (m) {
      meter = m;
      const c = meter.current;
      Object.assign(state, { name: meter.name, filter: c.filter, value: c.value === "1" && c.aggregation === "count" ? "" : c.value, aggregation: c.aggregation, group_by: c.group_by, stripe_price_id: c.stripe_price_id || "" });
    }
    return build(page);
  });

  function build(page) {
    const cleanups = [];
    // Definition fields.
    const nameIn = h("input#name", { type: "text", value: state.name, maxlength: 200, placeholder: "e.g. Search calls", disabled: editing, oninput: (e) => ((state.name = e.target.value), nameErr.hidden = true) });
    const nameErr = h("p.field-error", { hidden: true, role: "alert" });
    const aggSel = h(
      "select#aggregation",
      { disabled: editing, onchange: (e) => ((state.aggregation = e.target.value), syncValue(), changed()) },
      Object.entries(aggregations).map(([k, v]) => h("option", { value: k, selected: k === state.aggregation }, v)),
    );
    const groupSel = h(
      "select#group_by",
      { disabled: editing, onchange: (e) => ((state.group_by = e.target.value), changed()) },
      h("option", { value: "company_id", selected: state.group_by === "company_id" }, "Company (company_id)"),
      h("option", { value: "user_id", selected: state.group_by === "user_id" }, "User (user_id)"),
    );
    const priceIn = h("input#price", { type: "text", value: state.stripe_price_id, placeholder: "price_…  (optional)", spellcheck: "false", oninput: (e) => (state.stripe_price_id = e.target.value.trim()) });

    const filterHost = h("div.editor", { "data-field": "filter" });
    const valueHost = h("div.editor", { "data-field": "value" });
    const filterMsg = h("div.editor-msg", { "aria-live": "polite" });
    const valueMsg = h("div.editor-msg", { "aria-live": "polite" });
    const valueBox = h(
      "div.field",
      h("label.label", { id: "value-label" }, "Value ", h("span.hint", "a number expression: what one matched call adds")),
      valueHost,
      valueMsg,
    );
    const filterEd = editor({ parent: filterHost, doc: state.filter, label: "Filter expression", placeholder: 'response.status == 200 and request.route startsWith "/v1/search"', onChange: (v) => ((state.filter = v), changed()) });
    const valueEd = editor({ parent: valueHost, doc: state.value, label: "Value expression", placeholder: "metadata.tokens", onChange: (v) => ((state.value = v), changed()) });
    cleanups.push(() => filterEd.destroy(), () => valueEd.destroy());
    function syncValue() {
      valueBox.hidden = state.aggregation === "count";
      valueBox.querySelector(".hint").textContent = state.aggregation === "unique" ? "what to count distinct values of, e.g. user_id" : "a number expression: what one matched call adds";
    }
    syncValue();

    // Preview.
    const winSeg = segmented("Window", Object.entries(windows).map(([k, w]) => [k, w.label]), state.window, (k) => {
      state.window = k;
      state.bucket = windows[k].bucket;
      bucketSeg.set(state.bucket);
      runPreview();
    });
    const bucketSeg = segmented("Bucket", [["hour", "Hour"], ["day", "Day"]], state.bucket, (k) => ((state.bucket = k), runPreview()));
    const status = h("div.preview-status", { "aria-live": "polite" });
    const stats = h("div.stats");
    const valueNote = h("div");
    let lastResult = null; // the preview shown, for the confirmation
    const chartHost = h("div.chart");
    const chart = usageChart(chartHost);
    cleanups.push(() => chart.destroy());
    const groups = h("div.groups");
    const samples = h("div.samples");
    const preview = h(
      "section.card.preview",
      { "aria-label": "Backtest preview" },
      h("header.card-head", h("div", h("h2", "Backtest preview"), h("p.sub", "The meter run over your stored traffic, as you type.")), h("div.controls", winSeg.el, bucketSeg.el)),
      status,
      stats,
      valueNote,
      chartHost,
      h("div.split", h("div", h("h3", "Top customers"), groups), h("div", h("h3", "Sample events"), samples)),
    );

    // A version takes effect now, or at a later time (UTC), e.g. the
    // start of the next billing period.
    const effIn = h("input#effective_from", { type: "datetime-local", step: 60, "aria-label": "Effective from (UTC)", hidden: true });
    const effSeg = segmented("Takes effect", [["now", "When saved"], ["at", "At a time (UTC)"]], "now", (k) => {
      effIn.hidden = k === "now";
      if (k === "at") {
        if (!effIn.value) effIn.value = nextMonthUTC();
        effIn.focus();
      } else effIn.value = "";
    });
    const effBox = editing && h("div.field", h("span.label", "Takes effect"), h("div.eff-row", effSeg.el, effIn));
    const submit = h("button.btn.primary", { type: "submit" }, editing ? "Save version " + (meter.current_version + 1) : "Create meter");
    const formErr = h("p.form-error", { hidden: true, role: "alert" });
    const form = h(
      "form.card.definition",
      { onsubmit: (e) => (e.preventDefault(), save()) },
      h("div.grid2", h("label.field", { for: "name" }, h("span.label", "Name"), nameIn, nameErr), h("label.field", { for: "price" }, h("span.label", "Stripe price"), priceIn)),
      h("div.grid2", h("label.field", { for: "aggregation" }, h("span.label", "Aggregation"), aggSel), h("label.field", { for: "group_by" }, h("span.label", "Billed customer"), groupSel)),
      editing && h("p.note", icon("alert", 14), "Aggregation and billed customer are fixed for the life of a meter; the name changes on the meter page."),
      h("div.field", h("label.label", { id: "filter-label" }, "Filter ", h("span.hint", "which calls count — a true/false expression; Ctrl-Space completes")), filterHost, filterMsg),
      valueBox,
      effBox,
      formErr,
      h("div.actions", h("a.btn", { href: editing ? "#/meters/" + meter.id : "#/meters" }, "Cancel"), submit),
    );
    replace(
      page,
      pageHead({
        back: editing ? ["#/meters/" + meter.id, meter.name] : ["#/meters", "Meters"],
        title: editing ? "New version" : "New meter",
        sub: editing ? `Version ${meter.current_version + 1} takes effect when you save it, or at a time you choose; usage before then keeps version ${meter.current_version}.` : "Describe the calls you bill for. The preview shows what it would have billed.",
      }),
      h("div.form-layout", form, preview),
    );
    // Validation: every change, debounced; errors underline the editors.
    // An empty filter is not an error yet: the person has not written it.
    let lastErrors = [];
    const validate = validator(
      "/v1/meters/validate",
      definition,
      (errors, d) => {
        // What was checked, for tests and for a person's devtools.
        filterHost.dataset.checked = d.filter;
        valueHost.dataset.checked = d.value ?? "";
        applyErrors((lastErrors = errors.filter((e) => !(e.field === "filter" && !state.filter.trim()))));
      },
      (e) => replace(filterMsg, h("span.err", "Validation failed: " + e.message)),
    );
    // The keys seen in events arrive: warn about the keys read.
    cleanups.push(onKeys(() => applyErrors(lastErrors)));
    const previewSoon = debounce(runPreview, 450);
    function changed() {
      validate();
      previewSoon();
    }
    function definition() {
      const d = { name: state.name || "preview", filter: state.filter, aggregation: state.aggregation, group_by: state.group_by };
      if (state.aggregation !== "count" && state.value.trim()) d.value = state.value;
      return d;
    }
    // warnings are what the stored events say about the keys the filter
    // and value read (keys.js).
    function warnings() {
      return { filter: keyWarnings(state.filter), value: state.aggregation === "count" ? [] : keyWarnings(state.value, { numeric: numeric(state.aggregation) }) };
    }
    function applyErrors(errors) {
      const byField = (f) => errors.filter((e) => e.field === f);
      const ws = warnings();
      for (const [f, ed, msg] of [["filter", filterEd, filterMsg], ["value", valueEd, valueMsg]]) reportErrors(ed, msg, byField(f), f === "filter" && state.filter.trim() && "Valid", ws[f]);
      const other = errors.filter((e) => e.field !== "filter" && e.field !== "value" && e.field !== "name");
      formErr.hidden = !other.length;
      formErr.textContent = other.map((e) => e.message).join(" ");
    }

    // The preview: one backtest and one sample request per change; a
    // newer change aborts the requests of the older one.
    let prevCtl = null;
    async function runPreview() {
      prevCtl?.abort();
      preview.classList.toggle("idle", !state.filter.trim());
      if (!state.filter.trim()) {
        replace(status, h("div.preview-empty", h("b", "Nothing to preview yet"), h("span", "Write a filter and the meter runs over your stored traffic here, as you type.")));
        replace(stats);
        replace(valueNote);
        replace(groups);
        replace(samples);
        lastResult = null;
        chart.update(null, ...win(), state.bucket, { unit: unitOf(state) });
        return;
      }
      prevCtl = new AbortController();
      const signal = prevCtl.signal;
      const [from, to] = win();
      const body = { ...definition(), from, to, bucket: state.bucket, top: 8 };
      delete body.name;
      preview.classList.add("busy");
      preview.dataset.filter = body.filter; // what it runs, for tests and devtools
      replace(status, h("p.muted", spinner(), " Running…"));
      try {
        const r = await post("/v1/backtest", body, { signal });
        preview.classList.remove("busy");
        // What the preview shows, for tests and for a person's devtools.
        Object.assign(preview.dataset, { from, to, bucket: state.bucket, total: r.total ?? "", matched: r.matched_events, buckets: r.buckets.length });
        showResult(r, from, to);
      } catch (e) {
        if (isAbort(e)) return;
        preview.classList.remove("busy");
        delete preview.dataset.total;
        delete preview.dataset.from;
        preview.classList.add("idle");
        replace(stats);
        replace(valueNote);
        lastResult = null;
        const positioned = e.body?.errors?.length > 0;
        const of = (f) => e.body.errors.filter((x) => x.field === f);
        const typing = positioned && [["filter", filterEd], ["value", valueEd]].every(([f, ed]) => !of(f).length || stillTyping(ed, of(f)));
        replace(
          status,
          typing
            ? h("div.preview-empty", h("b", "Finish the expression to see its preview"), h("span", "The meter runs over your stored traffic as soon as it is complete."))
            : positioned
              ? h("div.preview-empty.bad", h("b", "Fix the meter to see its preview"), h("span", e.message))
              : h("p.preview-error", icon("alert", 14), e instanceof ApiError && e.status === 404 ? "The backtest endpoint is not available on this server." : e.message),
        );
        if (e.body?.errors) applyErrors(e.body.errors);
        return;
      }
      loadSamples(body, signal);
    }
    function win() {
      const to = Math.ceil(Date.now() / 60000) * 60000;
      return [new Date(to - windows[state.window].ms).toISOString(), new Date(to).toISOString()];
    }
    // valueErrorsNote says how many matched calls' values failed, and why
    // when the stored events tell (a key sent as text, or missing), with
    // the fix.
    function valueErrorsNote(r) {
      const pct = (100 * r.value_errors) / Math.max(1, r.matched_events);
      const why = warnings().value.filter((w) => w.code === "not_always_a_number");
      return h(
        "div.callout.value-note",
        icon("alert", 16),
        h(
          "div",
          h("p", h("b", `${fmtNum(r.value_errors)} of the ${fmtNum(r.matched_events)} matched calls (${pct.toFixed(pct < 1 ? 2 : 0)}%) have a value that failed`), ": they add nothing to the total."),
          why.length ? why.map((w) => warningLine(w, valueEd, `${w.path} is not always a number in your events (see under Value).`)) : h("p", "Open a matching sample marked “value error” to see its event."),
        ),
      );
    }
    function showResult(r, from, to) {
      lastResult = r;
      const pct = r.scanned_events ? (100 * r.matched_events) / r.scanned_events : 0;
      replace(
        status,
        h("p.engine", h("span.pill." + r.engine, r.engine === "sql" ? "SQL" : "VM"), ` answered in ${fmtNum(r.took_ms)} ms`, r.fallback ? h("span.dim", ` — ran on the VM: ${r.fallback}`) : null),
      );
      replace(
        stats,
        stat("Total", fmtNum(r.total), aggregations[state.aggregation].toLowerCase(), "total"),
        stat("Matched calls", fmtNum(r.matched_events), `${pct.toFixed(pct < 1 && pct > 0 ? 2 : 1)}% of scanned`, "matched"),
        stat("Scanned calls", fmtNum(r.scanned_events), `last ${windows[state.window].label}`, "scanned", false, `${fmtTime(from)} to ${fmtTime(to)}`),
        stat("Value errors", fmtNum(r.value_errors), r.value_errors ? "values that failed" : "none", "errors", r.value_errors > 0),
      );
      fitText(stats);
      replace(valueNote, r.value_errors ? valueErrorsNote(r) : null);
      chart.update(r, from, to, state.bucket, { unit: unitOf(state) });
      replace(groups, groupBars(r.groups, state.aggregation !== "count"));
    }
    async function loadSamples(body, signal) {
      replace(samples, h("p.muted", spinner()));
      let s;
      try {
        s = await post("/v1/backtest/samples", { ...body, limit: 6 }, { signal });
      } catch (e) {
        if (!isAbort(e)) replace(samples, h("p.muted", "Samples unavailable: " + e.message));
        return;
      }
      const tabs = segmented("Samples", [["matched", `Matching (${s.matched.length})`], ["unmatched", `Not matching (${s.unmatched.length})`]], "matched", (k) => show(k));
      const list = h("ul.sample-list");
      const show = (k) =>
        replace(
          list,
          (s[k] || []).map((x) =>
            h(
              "li",
              h(
                "button.sample",
                { type: "button", onclick: () => openEvent(x.event, k === "matched" ? (x.value_error ? { error: true } : { value: x.value }) : { unmatched: true }) },
                eventSummary(x.event),
                k === "matched" ? (x.value_error ? h("span.val.err", "value error") : h("span.val", fmtValue(x.value))) : h("span.val.dim", "no match"),
              ),
            ),
          ),
          !(s[k] || []).length ? h("li.muted", k === "matched" ? "No recent call matches." : "Every recent call matches.") : null,
        );
      show("matched");
      replace(samples, tabs.el, list);
    }

    // A version starts from the current definition: check and preview it.
    if (state.filter) validate.now();
    runPreview();
    return cleanups;

    // confirmWarnings is what the confirmation warns of: the preview's
    // value errors and the keys read that the events never hold or do not
    // always hold as numbers.
    function confirmWarnings() {
      const ws = warnings();
      const lines = [...ws.filter, ...ws.value].map((w) => w.message);
      const r = lastResult;
      if (r?.value_errors) lines.unshift(`Over the last ${windows[state.window].label}, ${fmtNum(r.value_errors)} of ${fmtNum(r.matched_events)} matched calls had a value that failed: they would bill nothing.`);
      return warningsCallout(lines);
    }
    async function save() {
      nameErr.hidden = true;
      if (!editing && !state.name.trim()) {
        nameErr.hidden = false;
        nameErr.textContent = "Give the meter a name.";
        nameIn.focus();
        return;
      }
      const d = { filter: state.filter, aggregation: state.aggregation, group_by: state.group_by };
      if (state.aggregation !== "count" && state.value.trim()) d.value = state.value;
      if (state.stripe_price_id) d.stripe_price_id = state.stripe_price_id;
      if (editing && effIn.value) d.effective_from = new Date(effIn.value + "Z").toISOString();
      const when = d.effective_from ? "From " + fmtTime(d.effective_from) : "From now on";
      const ok = await confirmDialog({
        title: editing ? `Save version ${meter.current_version + 1}?` : "Create this meter?",
        confirm: editing ? "Save version" : "Create meter",
        body: h(
          "div",
          h("p", editing ? when + ", usage is computed with this definition. Usage before then keeps the version it was computed with." : "The meter starts switched off, so nothing is billed until you turn it on."),
          h("div.callout", icon("alert", 16), h("p", h("b", "The filter and the billing binding cannot be changed afterwards, only versioned. "), "Each change becomes a new version, effective from when it is saved, and every version stays in the audit trail.")),
          h("dl.summary", h("dt", "Filter"), h("dd", h("code", state.filter)), d.value ? [h("dt", "Value"), h("dd", h("code", d.value))] : null, h("dt", "Aggregation"), h("dd", state.aggregation), h("dt", "Billed customer"), h("dd", state.group_by), h("dt", "Stripe price"), h("dd", state.stripe_price_id || "not bound")),
          confirmWarnings(),
        ),
      });
      if (!ok) return;
      submit.disabled = true;
      try {
        const m = editing ? await post(`/v1/meters/${meter.id}/versions`, d) : await post("/v1/meters", { name: state.name.trim(), ...d });
        toast(editing ? `Version ${m.current_version} saved` : `Meter “${m.name}” created`);
        location.hash = "#/meters/" + m.id;
      } catch (e) {
        submit.disabled = false;
        if (e.body?.errors) applyErrors(e.body.errors);
        if (e.body?.field === "name") (nameErr.hidden = false), (nameErr.textContent = e.message);
        else (formErr.hidden = false), (formErr.textContent = e.message);
      }
    }
  }
}

// numeric says whether an aggregation's value must be a number.
const numeric = (agg) => agg === "sum" || agg === "max" || agg === "min";

// warningsCallout lists warnings in a confirmation (none: nothing).
export function warningsCallout(lines) {
  if (!lines.length) return null;
  return h("div.callout.confirm-warnings", { "data-warnings": lines.length }, icon("alert", 16), h("div", h("p", h("b", "Check before you save:")), h("ul", lines.map((l) => h("li", l)))));
}

// nextMonthUTC is the start of next month, as a datetime-local value.
function nextMonthUTC() {
  const n = new Date();
  return new Date(Date.UTC(n.getUTCFullYear(), n.getUTCMonth() + 1, 1)).toISOString().slice(0, 16);
}

// unitOf names what a meter's chart counts, for its y axis: calls, or
// the aggregate of its value ("sum of metadata.tokens").
export function unitOf({ aggregation, value }) {
  if (aggregation === "count") return "calls";
  const v = (value || "").replace(/\s+/g, " ").trim();
  const short = v.length > 28 ? v.slice(0, 27) + "…" : v;
  return { sum: "sum of ", max: "largest ", min: "smallest ", unique: "distinct " }[aggregation] + short;
}

// fmtValue shows a sample's value: a number, or text for unique meters.
export const fmtValue = (v) => (typeof v === "number" ? fmtNum(v) : JSON.stringify(v));

function stat(label, value, sub, key, warn = false, title) {
  return h("div.stat" + (warn ? ".warn" : ""), { "data-stat": key, title }, h("span.stat-label", label), h("span.stat-value", value), h("span.stat-sub", sub));
}

// segmented is a row of toggle buttons (one pressed).
export function segmented(label, options, value, onchange) {
  const btns = options.map(([k, text]) => h("button.seg", { type: "button", "data-value": k, "aria-pressed": String(k === value), onclick: () => (set(k), onchange(k)) }, text));
  const el = h("div.segmented", { role: "group", "aria-label": label }, btns);
  function set(k) {
    btns.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.value === k)));
  }
  return { el, set };
}


