package web_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// governance walks through the Governance page on a wide screen: a rule
// written with mistakes (underlined), completed, previewed (checked
// against POST /v1/governance/preview), created, switched on ("blocking
// now" checked against the API), versioned (its diff in the history), and
// a customer it holds for looked up. It returns the rule's id and the
// meter's it reads.
//
// The generated traffic has no Stripe invoices, so the rule holds for two
// generated companies by id, with usage() over a meter made here: what
// the preview and the customer page show is then the companies' real
// usage and calls.
func (e *env) governance() (rule, meter string) {
	t := e.t
	e.do("wide screen", chromedp.EmulateViewport(1440, 900))
	orders := e.api("POST", "/v1/meters", map[string]any{"name": "Orders", "filter": `request.route startsWith "/v2/orders"`, "aggregation": "count", "group_by": "company_id"})
	meter = orders["id"].(string)
	// Its version 2 takes effect now: the meter's usage chart marks it.
	e.api("POST", "/v1/meters/"+meter+"/versions", map[string]any{"filter": `request.route startsWith "/v2/orders" and request.verb != "OPTIONS"`})

	e.do("governance", chromedp.Navigate(e.url+"/#/governance"))
	e.wait("no rules yet", `document.querySelector(".empty h3")?.textContent === "No governance rules yet" && !!document.querySelector("nav a[aria-current=page][href='#/governance']")`)
	e.shot("governance-empty")
	e.do("new rule", chromedp.Click(chromedp.CSS(`a[href="#/governance/new"]`)))
	e.wait("editors", `document.querySelectorAll(".cm-content").length === 2`)
	e.do("name", chromedp.SendKeys(chromedp.CSS("#rule-name"), "Hold two companies"))

	// A misspelt field: underlined where the compiler found it.
	cond := `[data-field=condition] .cm-content`
	e.do("type a condition", chromedp.Click(chromedp.CSS(cond)), chromedp.SendKeys(chromedp.CSS(cond), `custmer in ["company-3", "company-7"]`))
	e.wait("error marked", `document.querySelector("[data-field=condition] .cm-lintRange-error")?.textContent === "custmer" && !!document.querySelector(".editor-msg .err[data-code=unknown_field]")`)
	if msg := eval[string](e, `document.querySelector(".editor-msg .err").textContent`); !strings.Contains(msg, "Line 1, column 1:") || !strings.Contains(msg, "did you mean customer") {
		t.Errorf("condition error %q", msg)
	}
	e.shot("rule-condition-error")
	// A trait no event carries: a warning, with the one meant.
	e.typeInto(cond, `company.plna == "pro"`)
	e.wait("unseen trait", `document.querySelector("[data-field=condition] ~ .editor-msg .warn[data-code=unseen_key]")?.textContent.endsWith("company.plna is in none of your 20,000 stored events; did you mean company.plan?") && document.querySelector("[data-field=condition] .cm-lintRange-warning")?.textContent === "company.plna"`)
	e.axe("rule editor, error")

	// Fixed, and usage() completed: the function, then the meters that
	// group by company, named.
	e.typeInto(cond, `customer in ["company-3", "company-7"] and usa`)
	e.wait("usage offered", `[...document.querySelectorAll(".cm-tooltip-autocomplete li")].some(li => li.textContent.startsWith("usage"))`)
	// (CodeMirror ignores Enter for 75 ms after the list opens; the
	// screenshot waits longer.)
	e.shot("rule-completion")
	e.do("take usage", pick)
	e.wait("meters offered", `[...document.querySelectorAll(".cm-tooltip-autocomplete li")].some(li => li.textContent.includes(`+strconv.Quote(meter)+`) && li.textContent.includes("Orders"))`)
	e.shot("rule-usage-completion")
	e.do("take the meter", pick, chromedp.KeyEvent(kb.End), chromedp.SendKeys(chromedp.CSS(cond), " >= 0"))
	condition := `customer in ["company-3", "company-7"] and usage("` + meter + `") >= 0`
	e.wait("valid", `!document.querySelector("[data-field=condition] .cm-lintRange-error") && !!document.querySelector("[data-field=condition] ~ .editor-msg .ok")`)
	if got := eval[string](e, `document.querySelector("[data-field=condition] .cm-content").textContent`); got != condition {
		t.Fatalf("condition typed and completed: %q, want %q", got, condition)
	}

	// The body: not JSON, then an unknown placeholder, each underlined.
	body := `[data-field=body] .cm-content`
	e.typeInto(body, `{"error": "on_hold",}`)
	e.wait("JSON error", `document.querySelector("[data-field=body] .cm-lintRange-error")?.textContent === "}" && !!document.querySelector(".editor-msg .err[data-code=invalid_json]")`)
	e.typeInto(body, `{"error": "on_hold", "customer": "{{custmer}}"}`)
	e.wait("placeholder error", `document.querySelector("[data-field=body] .cm-lintRange-error")?.textContent === "{{custmer}}" && !!document.querySelector(".editor-msg .err[data-code=invalid_placeholder]")`)
	e.shot("rule-body-error")
	e.typeInto(body, `{"error": "on_hold", "customer": "{{customer}}"}`)
	e.wait("body valid", `!document.querySelector("[data-field=body] .cm-lintRange-error") && !document.querySelector("[data-field=body] ~ .editor-msg .err")`)
	// Only the orders API, any method but DELETE.
	e.do("add a route", chromedp.Click(chromedp.CSS(`button[data-add=routes]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-rows=routes] input[data-col=route]`), "^/v2/orders"),
		chromedp.SendKeys(chromedp.CSS(`[data-rows=routes] input[data-col=verb]`), "GET|POST"))

	// The preview agrees with the API's: whom it would hold for, the values
	// that made each match, and their calls over 7 days.
	def := map[string]any{
		"name":       "Hold two companies",
		"applies_to": "company",
		"condition":  condition,
		"response":   map[string]any{"status": 402, "headers": map[string]any{}, "body": map[string]any{"error": "on_hold", "customer": "{{customer}}"}},
		"block":      true,
		"routes":     []any{map[string]any{"route": "^/v2/orders", "verb": "GET|POST"}},
	}
	e.do("preview", chromedp.Click(chromedp.CSS("#run-preview")))
	e.wait("preview", `document.querySelector(".rule-preview").dataset.matching !== undefined && !document.querySelector(".rule-preview").classList.contains("busy")`)
	want := e.api("POST", "/v1/governance/preview", def)
	ds := eval[map[string]string](e, `Object.assign({}, document.querySelector(".rule-preview").dataset)`)
	matching := want["matching"].([]any)
	if ds["evaluated"] != fmt.Sprint(want["evaluated"]) || ds["matching"] != strconv.Itoa(len(matching)) || len(matching) != 2 {
		t.Errorf("preview shows %v, API %v", ds, want)
	}
	if got := e.stat("evaluated"); got != grouped(want["evaluated"].(float64)) {
		t.Errorf("evaluated shown %s, API %v", got, want["evaluated"])
	}
	shown := eval[map[string]map[string]string](e, `Object.fromEntries([...document.querySelectorAll(".match-table tbody tr")].map(tr =>
		[tr.dataset.customer, Object.assign(Object.fromEntries([...tr.querySelectorAll("dl.values > div")].map(d => [d.dataset.key, d.querySelector("dd").textContent])), {calls: tr.querySelector("td.num").textContent})]))`)
	var customers []string
	for _, m := range matching {
		m := m.(map[string]any)
		c := m["customer"].(string)
		customers = append(customers, c)
		row, ok := shown[c]
		if !ok {
			t.Errorf("preview lacks %s: %v", c, shown)
			continue
		}
		vals := m["values"].(map[string]any)
		usage := vals[`usage("`+meter+`")`].(float64)
		if row["customer"] != strconv.Quote(c) || row[`usage("`+meter+`")`] != grouped(usage) || row["calls"] != grouped(m["calls_7d"].(float64)) || len(row) != len(vals)+1 {
			t.Errorf("preview row of %s: %v, API %v", c, row, m)
		}
		if usage == 0 || m["calls_7d"].(float64) < 100 {
			t.Errorf("%s: the generated traffic should give real usage and calls: %v", c, m)
		}
	}
	if slices.Sort(customers); fmt.Sprint(customers) != "[company-3 company-7]" || len(shown) != 2 {
		t.Errorf("preview matches %v, shown %v", customers, shown)
	}
	e.shot("rule-preview")
	e.axe("rule preview")
	// A change marks the preview stale.
	e.typeInto("#status", "409")
	e.wait("stale", `document.querySelector(".rule-preview").classList.contains("stale")`)
	e.typeInto("#status", "402")
	e.wait("fresh", `!document.querySelector(".rule-preview").classList.contains("stale")`)

	// Create: it starts off.
	e.do("create", chromedp.Click(chromedp.CSS(".definition button[type=submit]")))
	e.wait("confirmation", `!!document.querySelector(".dialog .callout")`)
	e.shot("rule-create-confirm")
	e.do("confirm", chromedp.Click(chromedp.CSS(".dialog .btn.primary")))
	e.wait("rule page", `!!document.querySelector(".timeline") && location.hash.startsWith("#/governance/rules/")`)
	id := strings.TrimPrefix(eval[string](e, `location.hash`), "#/governance/rules/")
	r := e.api("GET", "/v1/governance/rules/"+id, nil)
	cur := r["current"].(map[string]any)
	routes, _ := json.Marshal(cur["routes"])
	if r["name"] != "Hold two companies" || r["status"] != "inactive" || r["created_by"] != actorName || cur["condition"] != condition ||
		string(routes) != `[{"route":"^/v2/orders","verb":"GET|POST"}]` || cur["block"] != true || fmt.Sprint(cur["response"]) != "map[body:map[customer:{{customer}} error:on_hold] headers:map[] status:402]" {
		t.Fatalf("created rule: %v", r)
	}

	// Switched on, it holds for both companies: the page, the list and the
	// API agree.
	e.do("switch on", chromedp.Click(chromedp.CSS(".head-actions button.switch")))
	e.wait("switched on", `document.querySelector(".head-actions button.switch")?.getAttribute("aria-checked") === "true" && !!document.querySelector(".tl-item[data-kind=status]") && document.querySelectorAll(".matching .match-table tbody tr").length === 2`)
	r = e.api("GET", "/v1/governance/rules/"+id, nil)
	if r["status"] != "active" || r["matching_now"] != float64(2) {
		t.Errorf("after the switch: %v", r)
	}
	e.shot("rule-on")
	e.axe("rule page")
	e.do("list", chromedp.Navigate(e.url+"/#/governance"))
	e.wait("list", `!!document.querySelector(".rules-table tr[data-id='`+id+`'] [data-matching]")`)
	if got := eval[string](e, `document.querySelector(".rules-table tr[data-id='`+id+`'] [data-matching] b").textContent`); got != grouped(r["matching_now"].(float64)) {
		t.Errorf("blocking now shows %s, the API's matching_now %v", got, r["matching_now"])
	}
	if row := eval[string](e, `document.querySelector(".rules-table tr[data-id='`+id+`']").textContent`); !strings.Contains(row, "Hold two companies") || !strings.Contains(row, "each company") || !strings.Contains(row, condition) || !strings.Contains(row, "active") {
		t.Errorf("list row: %s", row)
	}
	e.shot("governance-list")
	e.axe("governance list")

	// A new version drops company-7: the history shows the diff, and the
	// rule now holds for company-3 alone.
	e.do("open", chromedp.Click(chromedp.CSS(".rules-table .row-link")))
	e.do("new version", chromedp.Click(chromedp.CSS(`a[href="#/governance/rules/`+id+`/version"]`)))
	e.wait("version form", `document.querySelectorAll(".cm-content").length === 2 && document.querySelector("#rule-name").disabled && document.querySelector("[data-rows=routes] input[data-col=route]")?.value === "^/v2/orders"`)
	condition2 := `customer in ["company-3"] and usage("` + meter + `") >= 0`
	e.typeInto(cond, condition2)
	e.wait("valid", `!!document.querySelector("[data-field=condition] ~ .editor-msg .ok")`)
	e.shot("rule-new-version")
	e.do("save version", chromedp.Click(chromedp.CSS(".definition button[type=submit]")))
	e.wait("confirmation", `!!document.querySelector(".dialog .btn.primary")`)
	e.do("confirm", chromedp.Click(chromedp.CSS(".dialog .btn.primary")))
	e.wait("v2 in the history", `!!document.querySelector(".tl-item[data-kind=version][data-version='2'] .diff-row[data-field=condition] del") && document.querySelectorAll(".matching .match-table tbody tr").length === 1`)
	if del := eval[string](e, `document.querySelector(".tl-item[data-kind=version] del").textContent`); !strings.Contains(del, `"company-7"`) {
		t.Errorf("the diff removed %q", del)
	}
	v := e.api("GET", "/v1/governance/rules/"+id+"/versions", nil)
	if vs := v["versions"].([]any); len(vs) != 2 || vs[1].(map[string]any)["condition"] != condition2 || vs[1].(map[string]any)["created_by"] != actorName {
		t.Fatalf("versions: %v", vs)
	}
	e.shot("rule-history")

	// The customer: which rule holds and why, as the API says.
	e.do("customer", chromedp.Click(chromedp.CSS(`.matching a[href="#/governance/customers/company/company-3"]`)))
	e.wait("customer page", `!!document.querySelector(".held-rules li[data-rule='`+id+`'] dl.values")`)
	who := e.api("GET", "/v1/governance/customers/company/company-3", nil)
	held := who["rules"].([]any)
	if len(held) != 1 {
		t.Fatalf("company-3's rules: %v", who)
	}
	vals := held[0].(map[string]any)["values"].(map[string]any)
	got := eval[map[string]string](e, `Object.fromEntries([...document.querySelectorAll(".held-rules li dl.values > div")].map(d => [d.dataset.key, d.querySelector("dd").textContent]))`)
	if got["customer"] != `"company-3"` || got[`usage("`+meter+`")`] != grouped(vals[`usage("`+meter+`")`].(float64)) || len(got) != len(vals) {
		t.Errorf("company-3 shows %v, API %v", got, vals)
	}
	if txt := eval[string](e, `document.querySelector(".held-rules li").textContent`); !strings.Contains(txt, "Hold two companies") || !strings.Contains(txt, "blocked with 402") {
		t.Errorf("company-3's rule: %s", txt)
	}
	e.shot("governance-customer")
	e.axe("governance customer")
	// Another, looked up with the form: no rule holds now.
	e.typeInto("#lookup-id", "company-7")
	e.do("look up", chromedp.Click(chromedp.CSS(".lookup button[type=submit]")))
	e.wait("company-7", `location.hash === "#/governance/customers/company/company-7" && document.querySelector(".customer-rules .empty h3")?.textContent === "No active rule holds for this company now"`)
	return id, meter
}
