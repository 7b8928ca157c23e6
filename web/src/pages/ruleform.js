// New governance rule and new version: the condition and body editors
// with live validation (POST /v1/governance/validate), the response,
// headers and routes, and the preview of whom the unsaved rule would hold
// for now (POST /v1/governance/preview).
import { h, icon, replace, pageHead, confirmDialog, toast, fmtNum, fmtTime, fmtAgo, spinner, fitText } from "../dom.js";
import { get, post, isAbort } from "../api.js";
import { editor, reportErrors, errorLine, setUsageMeters, conditionLang, validator } from "../expr.js";
import { formFrame } from "../controls.js";
import { jsonLang, jsonProblem, locate } from "../jsonedit.js";
import { segmented, warningsCallout } from "./meterform.js";
import { keyWarnings, onKeys } from "../keys.js";
import { matchTable, appliesLabel } from "./governance.js";

const defaultBody = `{
  "error": "payment_required",
  "message": "Your account is on hold: pay your open invoice to continue.",
  "invoice": "{{invoices.hosted_invoice_url}}"
}`;

export function ruleForm(main, params) {
  const editing = !!params.id;
  const state = { name: "", applies_to: "company", condition: "", status: 402, headers: [], body: defaultBody, block: true, routes: [] };
  let rule = null, meters = [];
  return formFrame(main, editing && "/v1/governance/rules/" + params.id, "Rule not found", (r, page, signal) => {
    get("/v1/meters", { signal }).then((x) => ((meters = x.meters || []), syncMeters()), () => {});
    if (r) {
      rule = r;
      const c = rule.current;
      Object.assign(state, {
        name: rule.name,
        applies_to: rule.applies_to,
        condition: c.condition,
        status: c.response.status,
        headers: Object.entries(c.response.headers || {}),
        body: c.response.body === undefined ? "" : JSON.stringify(c.response.body, null, 2),
        block: c.block,
        routes: c.routes.map((x) => ({ ...x })),
      });
    }
    return build(page);
  });

  // usage("...") offers the meters that group by the rule's customers.
  function syncMeters() {
    const by = state.applies_to === "user" ? "user_id" : "company_id";
    setUsageMeters(meters.filter((m) => m.status !== "archived" && m.current.group_by === by));
  }

  function build(page) {
    const cleanups = [];
    const nameIn = h("input#rule-name", { type: "text", value: state.name, maxlength: 200, placeholder: "e.g. Unpaid invoices", disabled: editing, oninput: (e) => ((state.name = e.target.value), (nameErr.hidden = true), changed()) });
    const nameErr = h("p.field-error", { hidden: true, role: "alert" });
    const appliesSeg = segmented("Applies to", [["company", "Each company"], ["user", "Each user"]], state.applies_to, (k) => ((state.applies_to = k), syncMeters(), changed()));
    if (editing) appliesSeg.el.querySelectorAll("button").forEach((b) => (b.disabled = true));

    const condHost = h("div.editor", { "data-field": "condition" });
    const condMsg = h("div.editor-msg", { "aria-live": "polite" });
    const condEd = editor({ parent: condHost, doc: state.condition, label: "Condition", language: conditionLang, placeholder: 'invoices.unpaid > 0 or usage("mtr_…") > 100000', onChange: (v) => ((state.condition = v), changed()) });
    const bodyHost = h("div.editor.body-editor", { "data-field": "body" });
    const bodyMsg = h("div.editor-msg", { "aria-live": "polite" });
    const bodyEd = editor({ parent: bodyHost, doc: state.body, label: "Response body (JSON)", language: jsonLang, placeholder: '{"error": "payment_required"}', onChange: (v) => ((state.body = v), changed()) });
    cleanups.push(() => condEd.destroy(), () => bodyEd.destroy());

    const statusIn = h("input#status", { type: "number", min: 100, max: 599, step: 1, value: state.status, inputmode: "numeric", oninput: (e) => ((state.status = parseInt(e.target.value, 10) || 0), changed()) });
    const statusErr = h("p.field-error", { hidden: true });
    const blockIn = h("input#block", { type: "checkbox", checked: state.block, onchange: (e) => ((state.block = e.target.checked), syncBlock(), changed()) });
    const bodyBox = h(
      "div.field",
      h("label.label", { id: "body-label" }, "Body ", h("span.hint", "JSON the agents answer instead of your API")),
      bodyHost,
      bodyMsg,
      h("p.note.placeholder-doc", icon("info", 14), h("span", "Strings may hold ", h("code", "{{NAME}}"), ", filled for each customer with a value the condition can read: ", h("code", "{{customer}}"), ", ", h("code", "{{invoices.hosted_invoice_url}}"), ", ", h("code", "{{company.plan}}"), "… Type ", h("code", "{{"), " to pick one. Only this exact form, and none inside an array: every agent can fill it.")),
    );
    function syncBlock() {
      bodyBox.hidden = !state.block;
    }
    syncBlock();

    const rowsEditor = (key, list, cols, addLabel, blank) => {
      const host = h("div.kv-rows", { "data-rows": key });
      const render = () =>
        replace(
          host,
          list().map((row, i) =>
            h(
              "div.kv-row",
              { "data-index": i },
              cols.map(([k, label, ph]) => h("input", { type: "text", "data-col": k, value: row[k] ?? "", placeholder: ph, "aria-label": `${label} ${i + 1}`, spellcheck: "false", oninput: (e) => ((row[k] = e.target.value), changed()) })),
              h("button.icon-btn", { type: "button", "aria-label": `Remove ${addLabel.toLowerCase()} ${i + 1}`, onclick: () => (list().splice(i, 1), render(), changed()) }, icon("close", 14)),
              h("div.row-msg"),
            ),
          ),
        );
      render();
      const add = h("button.btn.small", { type: "button", "data-add": key, onclick: () => (list().push(blank()), render(), changed(), host.querySelector(".kv-row:last-child input")?.focus()) }, icon("plus", 14), "Add " + addLabel.toLowerCase());
      return { host, add, render };
    };
    // Headers are [name, value] pairs (index 0 and 1); routes {route, verb}.
    const headers = rowsEditor("headers", () => state.headers, [[0, "Header name", "X-Reason"], [1, "Header value", "unpaid: {{invoices.amount_due}}"]], "Header", () => ["", ""]);
    const routes = rowsEditor("routes", () => state.routes, [["route", "Route pattern", "^/v1/"], ["verb", "Method pattern", "GET|POST"]], "Route", () => ({ route: "", verb: "" }));
    const headersMsg = h("div.editor-msg", { "aria-live": "polite" });

    // The preview runs on demand (it evaluates every customer of the
    // kind); a change after it marks it stale.
    const previewBtn = h("button#run-preview.btn.primary", { type: "button", onclick: runPreview }, icon("refresh", 15), "Run preview");
    const pStatus = h("div.preview-status", { "aria-live": "polite" });
    const pStats = h("div.stats");
    const pList = h("div.preview-list");
    const preview = h(
      "section.card.preview.rule-preview.idle",
      { "aria-label": "Preview" },
      h("header.card-head", h("div", h("h2", "Preview"), h("p.sub", "Whom the rule would hold for now, before it goes live: each customer, the values that made it match, and its calls.")), previewBtn),
      pStatus,
      pStats,
      pList,
    );
    replace(pStatus, h("div.preview-empty", h("b", "Not run yet"), h("span", "Write the condition, then run the preview over today's customers. Nothing is saved.")));

    const submit = h("button.btn.primary", { type: "submit" }, editing ? "Save version " + (rule.current_version + 1) : "Create rule");
    const formErr = h("p.form-error", { hidden: true, role: "alert" });
    const form = h(
      "form.card.definition.rule-definition",
      { onsubmit: (e) => (e.preventDefault(), save()), novalidate: true },
      h("label.field", { for: "rule-name" }, h("span.label", "Name"), nameIn, nameErr),
      h("div.field", h("span.label", "Applies to ", h("span.hint", "whose calls it governs: the call's company_id or user_id")), appliesSeg.el),
      editing && h("p.note", icon("alert", 14), "The name changes on the rule's page; whom it applies to is fixed for its life."),
      h("div.field", h("label.label", { id: "condition-label" }, "Condition ", h("span.hint", "when the rule holds for a customer — true/false; Ctrl-Space completes")), condHost, condMsg),
      h("fieldset.group", h("legend", "Response"), h("label.check", blockIn, h("span", "Block the call: answer with this response instead of calling your API ", h("span.hint", "(off: only add the headers to your API's answers)"))),
        h("label.field.status-field", { for: "status" }, h("span.label", "Status"), statusIn, statusErr),
        h("div.field", h("span.label", "Headers"), headers.host, headersMsg, h("div", headers.add)),
        bodyBox),
      h("fieldset.group", h("legend", "Routes ", h("span.hint", "regular expressions over the path (with query) and the method; none: every call")), routes.host, h("div", routes.add)),
      formErr,
      h("div.actions", h("a.btn", { href: editing ? "#/governance/rules/" + rule.id : "#/governance" }, "Cancel"), submit),
    );
    replace(
      page,
      pageHead({
        back: editing ? ["#/governance/rules/" + rule.id, rule.name] : ["#/governance", "Governance"],
        title: editing ? "New version" : "New rule",
        sub: editing ? `Version ${rule.current_version + 1} is in force as soon as you save it; version ${rule.current_version} stays in the history.` : "Describe whom to hold and what their calls get. The preview shows whom it would hold for now.",
      }),
      h("div.form-layout", form, preview),
    );

    // The definition as the API takes it; the body only when it parses
    // (its own check says why not).
    function definition() {
      const headerMap = Object.fromEntries(state.headers.filter(([k, v]) => k.trim() || v).map(([k, v]) => [k.trim(), v]));
      const d = { name: state.name.trim() || "preview", applies_to: state.applies_to, condition: state.condition, response: { status: state.status, headers: headerMap }, block: state.block, routes: state.routes };
      if (state.block && state.body.trim() && !jsonProblem(state.body)) d.response.body = JSON.parse(state.body);
      return d;
    }

    let lastErrors = [];
    const validate = validator(
      "/v1/governance/validate",
      definition,
      (errors, d) => {
        condHost.dataset.checked = d.condition; // for tests and devtools
        applyErrors((lastErrors = errors));
      },
      (e) => replace(condMsg, h("div.err", "Validation failed: " + e.message)),
    );
    // The traits seen in events arrive: warn about the ones read.
    cleanups.push(onKeys(() => applyErrors(lastErrors)));
    // What the preview depends on: the definition but its name.
    const previewed = () => JSON.stringify({ ...definition(), name: "" });
    let ran = null; // what the preview shows
    function changed() {
      validate();
      if (ran) preview.classList.toggle("stale", previewed() !== ran);
    }
    // applyErrors puts each error by its field. Not yet written is not an
    // error: an empty name or condition.
    function applyErrors(all) {
      let errors = all.filter((e) => !(e.field === "name" && !state.name.trim()) && !(e.field === "condition" && !state.condition.trim()));
      const bodyJSON = state.block && state.body.trim() ? jsonProblem(state.body) : null;
      if (bodyJSON) errors = errors.filter((e) => !e.field.startsWith("response.body"));
      const of = (p) => errors.filter((e) => e.field === p || e.field.startsWith(p + ".") || e.field.startsWith(p + "["));
      const used = new Set();
      const take = (es) => (es.forEach((e) => used.add(e)), es);
      reportErrors(condEd, condMsg, take(of("condition")), state.condition.trim() && "Valid", keyWarnings(state.condition));
      const bodyErrs = take(of("response.body")).map((e) => locate(state.body, e));
      reportErrors(bodyEd, bodyMsg, bodyJSON ? [bodyJSON] : bodyErrs);
      const st = take(of("response.status"));
      statusErr.hidden = !st.length;
      statusErr.textContent = st.map((e) => e.message).join(" ");
      statusIn.setAttribute("aria-invalid", String(st.length > 0));
      replace(headersMsg, take(of("response.headers")).map(errorLine));
      // routes[i].route / routes[i].verb / routes[i]
      routes.host.querySelectorAll(".kv-row").forEach((row, i) => {
        const es = take(of(`routes[${i}]`));
        replace(row.querySelector(".row-msg"), es.map(errorLine));
        row.querySelectorAll("input").forEach((inp) => inp.setAttribute("aria-invalid", String(es.some((e) => e.field === `routes[${i}]` || e.field.endsWith("." + inp.dataset.col)))));
      });
      const names = take(of("name"));
      if (names.length) (nameErr.hidden = false), (nameErr.textContent = names[0].message);
      const other = errors.filter((e) => !used.has(e));
      formErr.hidden = !other.length;
      formErr.textContent = other.map((e) => e.message).join(" ");
    }

    let prevCtl = null;
    async function runPreview() {
      prevCtl?.abort();
      prevCtl = new AbortController();
      const d = definition(), key = previewed();
      preview.classList.add("busy");
      preview.classList.remove("stale");
      previewBtn.disabled = true;
      replace(pStatus, h("p.muted", spinner(), " Evaluating today's customers…"));
      let p;
      try {
        p = await post("/v1/governance/preview", d, { signal: prevCtl.signal });
      } catch (e) {
        if (isAbort(e)) return;
        previewBtn.disabled = false;
        preview.classList.remove("busy");
        preview.classList.add("idle");
        delete preview.dataset.evaluated;
        replace(pStats);
        replace(pList);
        replace(pStatus, e.body?.errors?.length ? h("div.preview-empty.bad", h("b", "Fix the rule to preview it"), h("span", e.message)) : h("p.preview-error", icon("alert", 14), e.message));
        if (e.body?.errors) applyErrors(e.body.errors);
        return;
      }
      previewBtn.disabled = false;
      ran = key;
      preview.classList.remove("busy", "idle");
      // What the preview shows, for tests and for a person's devtools.
      Object.assign(preview.dataset, { evaluated: p.evaluated, matching: p.matching.length, at: p.at });
      const calls = p.matching.reduce((s, m) => s + (m.calls_7d || 0), 0);
      const kind = state.applies_to === "user" ? "users" : "companies";
      replace(pStatus, h("p", `Evaluated at ${fmtTime(p.at)} (${fmtAgo(p.at)}) over today's ${kind}: those that called your API in the last 35 days or have a profile.`), h("p.stale-note", icon("alert", 14), "The rule changed since: run the preview again."));
      replace(
        pStats,
        h("div.stat", { "data-stat": "evaluated" }, h("span.stat-label", "Evaluated"), h("span.stat-value", fmtNum(p.evaluated)), h("span.stat-sub", kind)),
        h("div.stat" + (p.matching.length ? ".warn" : ""), { "data-stat": "matching" }, h("span.stat-label", state.block ? "Would be blocked" : "Would get the headers"), h("span.stat-value", fmtNum(p.matching.length)), h("span.stat-sub", p.evaluated ? `${((100 * p.matching.length) / p.evaluated).toFixed(1)}% of them` : "none evaluated")),
        h("div.stat", { "data-stat": "calls" }, h("span.stat-label", "Their calls, 7 days"), h("span.stat-value", fmtNum(calls)), h("span.stat-sub", state.block ? "what blocking them would have answered" : "answers that would carry the headers")),
      );
      fitText(pStats);
      replace(pList, p.matching.length ? matchTable(p.matching, state.applies_to, { calls: true }) : h("p.muted", `The condition holds for no ${appliesLabel(state.applies_to).replace("each ", "")} now.`));
    }

    if (state.condition) validate.now();
    return cleanups;

    async function save() {
      nameErr.hidden = true;
      if (!editing && !state.name.trim()) {
        nameErr.hidden = false;
        nameErr.textContent = "Give the rule a name.";
        nameIn.focus();
        return;
      }
      const bodyJSON = state.block && state.body.trim() ? jsonProblem(state.body) : null;
      if (bodyJSON) {
        reportErrors(bodyEd, bodyMsg, [bodyJSON]);
        bodyEd.focus();
        return;
      }
      const d = definition();
      delete d.name;
      if (editing) delete d.applies_to;
      const active = rule?.status === "active";
      const ok = await confirmDialog({
        title: editing ? `Save version ${rule.current_version + 1}?` : "Create this rule?",
        confirm: editing ? "Save version" : "Create rule",
        body: h(
          "div",
          h("p", editing ? (active ? "The rule is on: the agents get this version within seconds of the next evaluation, which runs now." : "The rule is off: this version is what it enforces once you switch it on.") : "The rule starts switched off: nothing is enforced until you turn it on, from its page or the list."),
          h("div.callout", icon("alert", 16), h("p", h("b", "The condition, response and routes cannot be edited in place, only versioned. "), "Each change becomes a new version, and every version stays in the history.")),
          h("dl.summary", h("dt", "Applies to"), h("dd", appliesLabel(state.applies_to)), h("dt", "Condition"), h("dd", h("code", state.condition)), h("dt", "Response"), h("dd", d.block ? `blocks with ${d.response.status}` : "adds headers only"), h("dt", "Routes"), h("dd", d.routes.length ? d.routes.map((r) => `${r.verb || "any method"} ${r.route || "any path"}`).join("; ") : "every call")),
          warningsCallout(keyWarnings(state.condition).map((w) => w.message)),
        ),
      });
      if (!ok) return;
      submit.disabled = true;
      try {
        const r = editing ? await post(`/v1/governance/rules/${rule.id}/versions`, d) : await post("/v1/governance/rules", { name: state.name.trim(), ...d });
        toast(editing ? `Version ${r.current_version} saved` : `Rule “${r.name}” created`);
        location.hash = "#/governance/rules/" + r.id;
      } catch (e) {
        submit.disabled = false;
        if (e.body?.errors) applyErrors(e.body.errors);
        else if (e.body?.field === "name") (nameErr.hidden = false), (nameErr.textContent = e.message);
        else (formErr.hidden = false), (formErr.textContent = e.message);
      }
    }
  }
}
