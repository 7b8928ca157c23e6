// Billing: the Stripe connection (settings, webhook URL, a connection
// check) and the ledger of usage reports. A server without the billing
// API says so instead of failing.
import { h, icon, replace, spinner, toast, copyButton, fmtNum, fmtTime, fmtAgo, empty } from "../dom.js";
import { get, put, post, qs, isAbort, ApiError } from "../api.js";
import { segmented } from "./meterform.js";

const modes = {
  meter_events: "Billing meter events (new Stripe prices)",
  usage_records: "Usage records (legacy metered prices)",
};

const statuses = {
  sent: "Sent",
  pending: "Pending",
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

  // The ledger: every report, newest first, by customer, meter, status.
  async function loadReports() {
    ledger.hidden = false;
    const f = { customer: query.get("customer") || "", meter: query.get("meter") || "", status: query.get("status") || "" };
    let meters = [];
    try {
      meters = (await get("/v1/meters", { signal: ctl.signal })).meters || [];
    } catch (e) {
      if (isAbort(e)) return;
    }
    const names = new Map(meters.map((m) => [m.id, m.name]));
    const body = h("div");
    const customer = h("input#customer", { type: "search", value: f.customer, placeholder: "any customer", spellcheck: "false" });
    const meter = h("select#meter", h("option", { value: "" }, "any meter"), meters.map((m) => h("option", { value: m.id, selected: f.meter === m.id }, m.name)));
    const status = segmented("Status", [["", "All"], ["sent", "Sent"], ["failed", "Failed"], ["rejected", "Rejected"], ["late", "Late"], ["not_billed", "Not billed"], ["needs_review", "Review"]], f.status, (k) => ((f.status = k), load()));
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
      h("button.btn.primary", { type: "submit" }, "Filter"),
      h("span.grow"),
      status.el,
    );
    replace(ledger, h("header.card-head", h("div", h("h2", "Usage reports"), h("p.sub", "What meterd sent to Stripe, per customer, meter and period, with Stripe's answer."))), form, body);
    load();

    async function load() {
      history.replaceState(null, "", "#/billing" + qs(f));
      replace(body, h("div.loading", spinner()));
      let r;
      try {
        r = await get("/v1/billing/reports" + qs({ ...f, limit: 200 }), { signal: ctl.signal });
      } catch (e) {
        if (!isAbort(e)) replace(body, h("p.form-error", "Could not load the reports: " + e.message));
        return;
      }
      const counts = Object.entries(r.counts || {});
      if (!r.reports.length) {
        replace(body, empty("No reports", f.customer || f.meter || f.status ? "No report matches these filters." : "Reports appear once an active meter bound to a Stripe price has usage for a customer Stripe knows."));
        return;
      }
      replace(
        body,
        counts.length ? h("p.counts", counts.map(([k, n]) => h("span.badge.st-" + k, `${statuses[k] || k}: ${fmtNum(n)}`))) : null,
        h(
          "div.table-wrap.flush",
          h(
            "table.table.reports-table",
            h("thead", h("tr", h("th", "Sent"), h("th", "Status"), h("th", "Customer"), h("th", "Meter"), h("th", "Period"), h("th.num", "Quantity"), h("th", "Stripe"))),
            h(
              "tbody",
              r.reports.map((x) =>
                h(
                  "tr",
                  h("td.dim.nowrap", { title: fmtTime(x.attempt_at) }, fmtAgo(x.attempt_at)),
                  h("td.nowrap", h("span.badge.st-" + x.status, statuses[x.status] || x.status)),
                  h("td.nowrap", h("div", x.customer || h("i.dim", "(none)")), x.stripe_customer ? h("div.mono.dim", x.stripe_customer) : null),
                  h("td", h("div", names.get(x.meter_id) || x.meter_id), h("div.mono.dim", `v${x.meter_version} · ${x.price_id || ""}`)),
                  h("td.dim.nowrap", { title: `${fmtTime(x.period_start)} to ${fmtTime(x.period_end)}` }, fmtPeriod(x.period_start, x.period_end)),
                  h("td.num.nowrap", h("b", fmtNum(x.quantity)), h("div.dim.small", "period total " + fmtNum(x.total))),
                  h("td.stripe-answer", x.error ? h("span.err-text", { title: x.error }, (x.http_status ? x.http_status + " " : "") + x.error) : h("code.dim", x.answer || "—")),
                ),
              ),
            ),
          ),
        ),
      );
    }
  }
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
