// Billing: the Stripe connection (settings, webhook URL, a connection
// check) and the ledger of usage reports. A server without the billing
// API says so instead of failing.
import { h, icon, replace, spinner, toast, copyButton, modal, fmtNum, fmtTime, fmtAgo, fmtDay, fmtClock, fmtHour, empty } from "../dom.js";
import { get, put, post, qs, isAbort, ApiError } from "../api.js";

const modes = {
  meter_events: "Billing meter events (new Stripe prices)",
  usage_records: "Usage records (legacy metered prices)",
};

const statuses = {
  pending: "Pending",
  sent: "Sent",
  failed: "Failed",
  rejected: "Rejected",
  late: "Late",
  not_billed: "Not billed",
  needs_adjustment: "Needs adjustment",
  needs_review: "Needs review",
};

export function billingPage(main, _params, query) {
  const ctl = new AbortController();
  const conn = h("section.card", { "aria-label": "Stripe connection" }, h("div.loading", spinner()));
  const ledger = h("section.card", { "aria-label": "Usage reports" });
  replace(
    main,
    h(
      "div.page.wide",
      h("header.page-head", h("div", h("h1", "Billing"), h("p.sub", "Report each customer's metered usage to Stripe, and see every report meterd sent."))),
      conn,
      ledger,
    ),
  );
  loadSettings();
  return () => ctl.abort();

  async function loadSettings(editing = false) {
    let st = null;
    try {
      st = await get("/v1/billing/stripe", { signal: ctl.signal });
    } catch (e) {
      if (isAbort(e)) return;
      if (e instanceof ApiError && e.code === "not_found") {
        replace(conn, empty("Billing is not available on this server", "This meterd build has no Stripe reporting. Meters still compute usage; bind each to a Stripe price so it is ready."));
        ledger.hidden = true;
        return;
      }
      if (!(e instanceof ApiError && e.code === "not_configured")) {
        replace(conn, h("p.form-error", "Could not load the Stripe settings: " + e.message));
        return;
      }
    }
    if (!st || editing) showForm(st);
    else showSettings(st);
    loadReports();
  }

  function webhookBox(st) {
    const url = location.origin + (st?.webhook_path || "/v1/stripe/webhook");
    return h(
      "div.webhook",
      h("span.label", "Webhook endpoint"),
      h("div.copy-row", h("code.url", url), copyButton(url, "Copy URL")),
      h("small.muted", "In Stripe's dashboard, add this endpoint (Developers → Webhooks) for customer and subscription events, then paste its signing secret here. meterd learns from them which Stripe customer and subscription each of your customers is."),
    );
  }

  function showSettings(st) {
    const result = h("div.check-result", { "aria-live": "polite" });
    const checkBtn = h(
      "button.btn",
      {
        type: "button",
        onclick: async () => {
          checkBtn.disabled = true;
          replace(result, spinner(), " Checking…");
          try {
            const r = await post("/v1/billing/stripe/check");
            replace(result, h("span.pill.ok", icon("check", 12), " Connected"), h("span.dim", ` ${r.livemode ? "live" : "test"} mode · ${r.api_base}`));
          } catch (e) {
            replace(result, h("span.pill.err", "Failed"), h("span.err-text", " " + e.message));
          }
          checkBtn.disabled = false;
        },
      },
      icon("refresh", 14),
      "Check connection",
    );
    replace(
      conn,
      h(
        "header.card-head",
        h("div", h("h2", "Stripe connection"), h("p.sub", `Version ${st.version} · changed ${fmtAgo(st.updated_at)} by ${st.updated_by}`)),
        h("div.head-actions", checkBtn, h("button.btn", { type: "button", onclick: () => loadSettings(true) }, "Edit")),
      ),
      result,
      h(
        "dl.def",
        h("dt", "Secret key"),
        h("dd", h("code", "sk_…" + st.api_key_last4), " ", h("span.pill." + (st.livemode ? "vm" : "sql"), st.livemode ? "live" : "test")),
        h("dt", "Webhook secret"),
        h("dd", st.webhook_secret_set ? h("span", icon("check", 12), " set") : h("span.err-text", "not set: Stripe's events cannot be verified")),
        h("dt", "Reporting"),
        h("dd", modes[st.mode] || st.mode),
        h("dt", "Customer id"),
        h("dd", h("code", st.customer_id_source), h("span.dim", " — where each Stripe customer carries your customer id")),
        h("dt", "API"),
        h("dd", h("code", st.api_base), h("span.dim", ` · ${fmtNum(st.rate_limit)} requests/s`)),
        h("dt", "Worker"),
        workerStatus(),
      ),
      webhookBox(st),
    );
  }

  // workerStatus says which billing worker runs the cycles, or that none
  // does (then nothing reaches Stripe).
  function workerStatus() {
    const dd = h("dd.worker-status", spinner());
    get("/v1/billing/workers", { signal: ctl.signal }).then(
      (r) => {
        const [lead, ...standby] = r.workers;
        if (!lead) {
          replace(dd, h("span.err-text", "no billing worker is running: nothing is reported to Stripe"), h("span.dim", " — start meterd serve without --billing=false, or meterd billing"));
          return;
        }
        replace(dd, h("code", lead.worker), h("span.dim", ` runs the cycles · seen ${fmtAgo(lead.last_seen)}${standby.length ? ` · ${standby.length} on standby` : ""}`));
      },
      (e) => !isAbort(e) && replace(dd, h("span.err-text", "unknown: " + e.message)),
    );
    return dd;
  }

  function showForm(st) {
    const f = (id, label, input, help) => h("label.field", { for: id }, h("span.label", label), input, help && h("small", help));
    const key = h("input#api_key", { type: "password", autocomplete: "off", spellcheck: "false", placeholder: st ? `sk_…${st.api_key_last4} (unchanged)` : "sk_test_… or rk_live_…" });
    const secret = h("input#webhook_secret", { type: "password", autocomplete: "off", spellcheck: "false", placeholder: st?.webhook_secret_set ? "whsec_… (unchanged)" : "whsec_…" });
    const mode = h("select#mode", Object.entries(modes).map(([k, v]) => h("option", { value: k, selected: (st?.mode || "meter_events") === k }, v)));
    const source = h("input#customer_id_source", { type: "text", spellcheck: "false", value: st?.customer_id_source || "metadata.company_id" });
    const base = h("input#api_base", { type: "text", spellcheck: "false", value: st?.api_base || "https://api.stripe.com" });
    const err = h("p.form-error", { hidden: true, role: "alert" });
    const save = h("button.btn.primary", { type: "submit" }, "Save settings");
    replace(
      conn,
      h("header.card-head", h("div", h("h2", st ? "Edit the Stripe connection" : "Connect Stripe"), h("p.sub", "Secrets are stored by meterd and never shown again; leave a field empty to keep it."))),
      h(
        "form.stripe-form",
        {
          onsubmit: async (e) => {
            e.preventDefault();
            const body = { mode: mode.value, customer_id_source: source.value.trim(), api_base: base.value.trim() };
            if (key.value.trim()) body.api_key = key.value.trim();
            if (secret.value.trim()) body.webhook_secret = secret.value.trim();
            save.disabled = true;
            err.hidden = true;
            try {
              await put("/v1/billing/stripe", body);
              toast("Stripe settings saved");
              loadSettings();
            } catch (e) {
              err.hidden = false;
              err.textContent = (e.body?.field ? e.body.field + ": " : "") + e.message;
              save.disabled = false;
            }
          },
        },
        h("div.grid2", f("api_key", "Secret key", key, "A restricted key needs write access to billing meter events or usage records."), f("webhook_secret", "Webhook signing secret", secret)),
        h("div.grid2", f("mode", "Reporting", mode), f("customer_id_source", "Customer id", source, "metadata.KEY of the Stripe customer, or subscription.metadata.KEY")),
        f("api_base", "Stripe API", base, "Change only to test against stripe-mock; a change needs the secret key again."),
        webhookBox(st),
        err,
        h("div.actions", st ? h("button.btn", { type: "button", onclick: () => loadSettings() }, "Cancel") : null, save),
      ),
    );
    key.focus();
  }

  // The ledger: each report once, at its latest state, newest first, by
  // customer, meter and status; open one for its attempts.
  async function loadReports() {
    ledger.hidden = false;
    const f = { customer: query.get("customer") || "", meter: query.get("meter") || "", status: query.get("status") || "" };
    let meters = [];
    try {
      meters = (await get("/v1/meters", { signal: ctl.signal })).meters || [];
    } catch (e) {
      if (isAbort(e)) return;
    }
    const byId = new Map(meters.map((m) => [m.id, m]));
    const body = h("div");
    let loads = 0; // only the newest load shows its answer
    const customer = h("input#customer", { type: "search", value: f.customer, placeholder: "any customer", spellcheck: "false" });
    const meter = h("select#meter", h("option", { value: "" }, "any meter"), meters.map((m) => h("option", { value: m.id, selected: f.meter === m.id }, m.name)));
    const status = h(
      "select#report-status",
      { onchange: () => ((f.status = status.value), load()) },
      h("option", { value: "" }, "any status"),
      Object.entries(statuses).map(([k, v]) => h("option", { value: k, selected: f.status === k }, v)),
    );
    const form = h(
      "form.filters",
      {
        role: "search",
        onsubmit: (e) => {
          e.preventDefault();
          f.customer = customer.value.trim();
          f.meter = meter.value;
          load();
        },
      },
      h("label.field.inline", { for: "customer" }, h("span.label", "Customer"), customer),
      h("label.field.inline", { for: "meter" }, h("span.label", "Meter"), meter),
      h("label.field.inline", { for: "report-status" }, h("span.label", "Status"), status),
      h("button.btn.primary", { type: "submit" }, "Filter"),
    );
    replace(ledger, h("header.card-head", h("div", h("h2", "Usage reports"), h("p.sub", "What meterd reports to Stripe: one row per report, at its latest state. Open one for every attempt and Stripe's answers."))), form, body);
    load();

    async function load() {
      const seq = ++loads;
      history.replaceState(null, "", "#/billing" + qs(f));
      replace(body, h("div.loading", spinner()));
      let r;
      try {
        r = await get("/v1/billing/reports" + qs({ ...f, latest: true, limit: 200 }), { signal: ctl.signal });
      } catch (e) {
        if (!isAbort(e) && seq === loads) replace(body, h("p.form-error", "Could not load the reports: " + e.message));
        return;
      }
      if (seq !== loads) return;
      const counts = Object.entries(r.counts || {});
      if (!r.reports.length) {
        const filtered = f.customer || f.meter || f.status;
        const clear = () => ((f.customer = f.meter = f.status = ""), (customer.value = meter.value = status.value = ""), load());
        replace(body, empty("No reports", filtered ? "No report matches these filters." : "Reports appear once an active meter bound to a Stripe price has usage for a customer Stripe knows.", filtered ? h("button.btn", { type: "button", onclick: clear }, "Clear filters") : null));
        return;
      }
      const open = (x) => openReport(x, byId.get(x.meter_id));
      replace(
        body,
        counts.length ? h("p.counts", { "aria-label": "Reports by status" }, counts.map(([k, n]) => h("span.badge.st-" + k, `${statuses[k] || k}: ${fmtNum(n)}`))) : null,
        h(
          "div.table-wrap.flush",
          h(
            "table.table.reports-table",
            h("thead", h("tr", h("th", "Hour (UTC)"), h("th", "Status"), h("th", "Customer"), h("th", "Meter"), h("th.num", "Quantity"), h("th", "Stripe's answer"), h("th", "Last attempt"))),
            h(
              "tbody",
              r.reports.map((x) => {
                const m = byId.get(x.meter_id);
                return h(
                  "tr.clickable",
                  { tabindex: "0", "data-key": x.idempotency_key, onclick: () => open(x), onkeydown: (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), open(x)) },
                  h("td", { "data-hour": x.bucket }, coveredShort(x, m), h("div.dim.small.secondary", fmtPeriod(x.period_start, x.period_end))),
                  h("td.nowrap", h("span.badge.st-" + x.status, statuses[x.status] || x.status), x.history.length > 2 ? h("div.dim.small", `${x.history.length} entries`) : null),
                  h("td", h("div.wrap", x.customer || h("i", "(none)")), x.stripe_customer ? h("div.mono.dim.wrap", x.stripe_customer) : null, h("div.phone-only.dim.small", m?.name || x.meter_id)),
                  h("td", h("div", m?.name || x.meter_id), h("div.mono.dim", `v${x.meter_version}${x.price_id ? " · " + x.price_id : ""}`)),
                  h("td.num", h("b", fmtNum(x.quantity)), h("div.dim.small.nowrap.secondary", "period total " + fmtNum(x.total))),
                  h("td.stripe-answer", answerView(x)),
                  h("td.dim.nowrap", { title: fmtTime(x.attempt_at) }, fmtAgo(x.attempt_at)),
                );
              }),
            ),
          ),
        ),
      );
    }
  }
}

// coveredShort says what usage a report carries: an hour (additive
// meters), or the whole period (max, min and unique meters report once
// per period, at its start).
function coveredShort(x, m) {
  if (m && !additive(m)) return "whole period";
  return [h("span.nowrap", fmtDay(x.bucket, true) + ","), " ", h("span.nowrap", fmtClock(x.bucket))];
}
const additive = (m) => m.current?.aggregation === "count" || m.current?.aggregation === "sum";

// answerView is Stripe's answer to a report: its error in plain words
// (with the HTTP status), the object it created, or why it was not sent.
function answerView(x) {
  if (x.error) {
    const e = stripeError(x.error);
    return h("span.err-text", x.http_status ? h("b", x.http_status + " ") : null, e.message);
  }
  // A listing's note (late, not billed, a price Stripe refused) says why.
  if (x.note) return h(x.status === "rejected" ? "span.err-text" : "span.muted", stripeError(x.note).message);
  return x.answer ? h("code", x.answer) : h("span.dim", x.status === "pending" ? "waiting for Stripe" : "—");
}

// stripeError reads the error stored for a report: a Stripe error is
// often its JSON ({"code", "message", "request_id", ...}), alone or after
// a prefix ("price price_1: {...}"); the message is what a person reads.
export function stripeError(text) {
  const at = text.indexOf("{");
  if (at >= 0) {
    try {
      const j = JSON.parse(text.slice(at));
      if (j && typeof j.message === "string") {
        const prefix = text.slice(0, at).replace(/[\s:]+$/, "");
        return { message: (prefix ? prefix + ": " : "") + j.message, code: j.code || j.type || "", requestID: j.request_id || "", status: j.status || 0 };
      }
    } catch {
      // not JSON after all: the text is the message
    }
  }
  return { message: text, code: "", requestID: "", status: 0 };
}

// openReport shows one report: what it carries, and each ledger entry
// of its request (the intent, each outcome, a renewed key, a listing).
function openReport(x, m) {
  const hour = m && !additive(m) ? "the whole period (reported once, at its start)" : fmtHour(x.bucket);
  modal({
    title: `${statuses[x.status] || x.status} · ${x.customer || "no customer"}`,
    wide: true,
    content: () =>
      h(
        "div.report-view",
        h(
          "dl.def",
          h("dt", "Usage of"),
          h("dd", hour),
          h("dt", "Period"),
          h("dd", `${fmtTime(x.period_start)} to ${fmtTime(x.period_end)}`),
          h("dt", "Meter"),
          h("dd", m?.name || x.meter_id, h("span.dim", ` · version ${x.meter_version} · `), h("code", x.price_id || "no price")),
          h("dt", "Customer"),
          h("dd", x.customer || "—", x.stripe_customer ? [h("span.dim", " · Stripe "), h("code", x.stripe_customer)] : null),
          h("dt", "Quantity"),
          h("dd", h("b", fmtNum(x.quantity)), h("span.dim", ` · measured ${fmtNum(x.value)} · period total ${fmtNum(x.total)} (rounded)`)),
          x.subscription_item ? [h("dt", "Subscription item"), h("dd", h("code", x.subscription_item))] : null,
          x.identifier ? [h("dt", "Event identifier"), h("dd", h("code.wrap", x.identifier))] : null,
        ),
        h("h3", `Attempts (${x.history.length})`),
        h(
          "ol.attempts",
          x.history.map((a) => {
            const e = a.error ? stripeError(a.error) : null;
            return h(
              "li",
              { "data-status": a.status },
              h("div.attempt-head", h("span.badge.st-" + a.status, statuses[a.status] || a.status), h("time", { datetime: a.attempt_at }, fmtTime(a.attempt_at)), a.attempts ? h("span.dim", `${a.attempts} ${a.attempts === 1 ? "try" : "tries"}`) : null),
              h("div.mono.dim.small.wrap", "key " + a.idempotency_key),
              e ? h("p.err-text", a.http_status ? h("b", a.http_status + " ") : null, e.message, e.code ? h("span.dim", ` (${e.code})`) : null) : null,
              a.answer ? h("p.small", e ? "Stripe request " : "Stripe: ", h("code", a.answer)) : null,
              a.note ? h("p.small.muted", stripeError(a.note).message) : a.status === "pending" ? h("p.small.muted", "Written before the request: if meterd stops before Stripe answers, it sends it again.") : null,
            );
          }),
        ),
      ),
  });
}

// fmtPeriod shows a billing period: "Nov 2026" for a calendar month,
// else its two dates.
const monthFmt = new Intl.DateTimeFormat("en-GB", { month: "short", year: "numeric", timeZone: "UTC" });
function fmtPeriod(start, end) {
  const a = new Date(start), b = new Date(end);
  if (isNaN(a) || isNaN(b)) return "—";
  const monthly = a.getUTCDate() === 1 && b.getUTCDate() === 1 && !a.getUTCHours() && !b.getUTCHours() && (b.getUTCMonth() - a.getUTCMonth() + 12) % 12 === 1;
  return monthly ? monthFmt.format(a) : `${start.slice(0, 10)} → ${end.slice(0, 10)}`;
}
