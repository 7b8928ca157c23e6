package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing/stripefake"
)

// invoiceEvent is a Stripe invoice event as a webhook delivers it.
func invoiceEvent(id, typ, status string, created time.Time, attempted bool) []byte {
	return []byte(fmt.Sprintf(`{"id": %q, "object": "event", "type": %q, "created": %d, "data": {"object": {
		"id": "in_1", "object": "invoice", "customer": "cus_1", "status": %q, "amount_due": 4900, "amount_remaining": 4900,
		"currency": "usd", "created": %d, "attempted": %t, "attempt_count": %d,
		"hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test_in_1"}}}`,
		id, typ, created.Unix(), status, created.Unix(), attempted, map[bool]int{true: 1}[attempted]))
}

// config is GET /v1/config as the agents read it, with its ETag.
func (h *harness) config() (map[string]any, string) {
	h.t.Helper()
	a := h.do("GET", "/v1/config", nil, "X-Moesif-Application-Id", testIngest)
	if a.status != 200 {
		h.t.Fatalf("config: %d %s", a.status, a.body)
	}
	return a.json(h.t), a.header.Get("X-Moesif-Config-ETag")
}

func (h *harness) moesifRules() []map[string]any {
	h.t.Helper()
	a := h.do("GET", "/v1/rules", nil, "X-Moesif-Application-Id", testIngest)
	var out []map[string]any
	if a.status != 200 || json.Unmarshal(a.body, &out) != nil {
		h.t.Fatalf("rules: %d %s", a.status, a.body)
	}
	return out
}

// TestGovernanceUnpaidInvoice follows a customer whose invoice payment
// fails through meterd's side of the loop: the rule, the webhook, the
// config the agents fetch (with the invoice link filled in), the ETag on
// ingestion answers, and the payment that lifts the block.
func TestGovernanceUnpaidInvoice(t *testing.T) {
	h := newHarness(t, nil)
	if a := h.putStripe(`{"api_key":"` + testStripeKey + `","webhook_secret":"` + testWhsec + `"}`); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	for _, co := range []string{"acme", "globex"} {
		if a := h.ingest("/v1/events", strings.Replace(event("t-"+co, -60), `"company_id":"c1"`, `"company_id":"`+co+`"`, 1)); a.status != 200 {
			t.Fatalf("ingest: %d %s", a.status, a.body)
		}
	}
	// A bad condition is refused with its position.
	a := h.adminDo("POST", "/v1/governance/rules", `{"name": "x", "applies_to": "company", "condition": "invoices.unpayd > 0",
		"response": {"status": 402, "body": {"error": "x"}}}`)
	if m := a.json(t); a.status != 400 || m["code"] != "unknown_field" || m["field"] != "condition" || m["column"] != float64(10) {
		t.Fatalf("bad condition: %d %s", a.status, a.body)
	}
	a = h.adminDo("POST", "/v1/governance/rules", `{"name": "Unpaid invoices", "applies_to": "company", "active": true,
		"condition": "invoices.unpaid > 0",
		"response": {"status": 402, "headers": {"X-Blocked-For": "{{customer}}"},
			"body": {"error": "payment_required", "invoice": "{{invoices.hosted_invoice_url}}"}}}`)
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	id := a.json(t)["id"].(string)
	rs := h.moesifRules()
	if len(rs) != 1 || rs[0]["_id"] != id || rs[0]["type"] != "company" || rs[0]["applied_to"] != "matching" ||
		rs[0]["block"] != true || rs[0]["applied_to_unidentified"] != false {
		t.Fatalf("/v1/rules: %v", rs)
	}
	resp := rs[0]["response"].(map[string]any)
	if resp["status"] != float64(402) || resp["headers"].(map[string]any)["Content-Type"] != "application/json" ||
		fmt.Sprint(rs[0]["variables"]) != "[map[name:customer path:customer] map[name:invoices.hosted_invoice_url path:invoices.hosted_invoice_url]]" ||
		fmt.Sprint(rs[0]["regex_config"]) != "[]" {
		t.Fatalf("/v1/rules entry: %v", rs[0])
	}
	cfg, before := h.config()
	if len(cfg["company_rules"].(map[string]any)) != 0 || len(cfg["user_rules"].(map[string]any)) != 0 || before == "" {
		t.Fatalf("config before any unpaid invoice: %v (etag %q)", cfg, before)
	}

	f := stripefake.New(nil)
	defer f.Close()
	deliver := func(ev []byte) {
		t.Helper()
		if a := h.webhook(ev, stripefake.Sign(ev, testWhsec, time.Now())); a.status != 200 {
			t.Fatalf("webhook: %d %s", a.status, a.body)
		}
	}
	deliver(f.Customer("cus_1", map[string]string{"company_id": "acme"}))
	created := time.Now().Add(-2 * time.Hour)
	deliver(invoiceEvent("evt_created", "invoice.created", "draft", created, false))
	deliver(invoiceEvent("evt_final", "invoice.finalized", "open", created.Add(time.Minute), false))
	if cfg, _ := h.config(); len(cfg["company_rules"].(map[string]any)) != 0 {
		t.Fatalf("an open invoice not yet attempted blocks: %v", cfg)
	}
	deliver(invoiceEvent("evt_failed", "invoice.payment_failed", "open", created.Add(time.Hour), true))

	// The next ingestion answer carries the new ETag, and the config lists
	// acme with its invoice link.
	ans := h.ingest("/v1/events", strings.Replace(event("t-3", -30), `"company_id":"c1"`, `"company_id":"globex"`, 1))
	cfg, after := h.config()
	if ans.header.Get("X-Moesif-Config-ETag") != after || after == before {
		t.Fatalf("ETag: ingestion answer %q, config %q, before %q", ans.header.Get("X-Moesif-Config-ETag"), after, before)
	}
	want := `map[acme:[map[rules:` + id + ` values:map[customer:acme invoices.hosted_invoice_url:https://invoice.stripe.com/i/acct_1/test_in_1]]]]`
	if got := fmt.Sprint(cfg["company_rules"]); got != want {
		t.Fatalf("company_rules:\n got %s\nwant %s", got, want)
	}
	// Which rules hold for acme, and why; globex is free.
	who := h.admin("/v1/governance/customers/company/acme").json(t)
	if rules := who["rules"].([]any); len(rules) != 1 || fmt.Sprint(rules[0].(map[string]any)["values"]) != "map[invoices.unpaid:1]" {
		t.Fatalf("acme's rules: %v", who)
	}
	if rules := h.admin("/v1/governance/customers/company/globex").json(t)["rules"].([]any); len(rules) != 0 {
		t.Fatalf("globex's rules: %v", rules)
	}
	if r := h.admin("/v1/governance/rules/" + id).json(t); r["matching_now"] != float64(1) {
		t.Fatalf("rule: %v", r)
	}

	// Paid: the block lifts.
	deliver(invoiceEvent("evt_paid", "invoice.paid", "paid", created.Add(90*time.Minute), true))
	if cfg, etag := h.config(); len(cfg["company_rules"].(map[string]any)) != 0 || etag == after {
		t.Fatalf("after invoice.paid: %v (etag %q)", cfg, etag)
	}
	// Switched off: the agents get no rule, and no config entry names it.
	deliver(invoiceEvent("evt_failed2", "invoice.payment_failed", "open", created.Add(2*time.Hour), true))
	if a := h.adminDo("PATCH", "/v1/governance/rules/"+id, `{"active": false}`); a.status != 200 {
		t.Fatalf("patch: %d %s", a.status, a.body)
	}
	if rs, cfg := h.moesifRules(), fmt.Sprint(h.adminOnlyConfig()); len(rs) != 0 || cfg != "map[]" {
		t.Fatalf("switched off: rules %v, company_rules %s", rs, cfg)
	}
}

func (h *harness) adminOnlyConfig() any {
	cfg, _ := h.config()
	return cfg["company_rules"]
}

// TestGovernanceQuotaAndPreview: a quota over a meter holds once a company's
// usage in its period passes the limit; the preview says so before the
// rule is saved, with the values that made each match and the calls of
// the last 7 days.
func TestGovernanceQuotaAndPreview(t *testing.T) {
	h := newHarness(t, nil)
	var evs []string
	for i := 0; i < 12; i++ {
		co := map[bool]string{true: "acme", false: "globex"}[i < 9]
		evs = append(evs, strings.Replace(event(fmt.Sprintf("q-%d", i), -60-i), `"company_id":"c1"`, `"company_id":"`+co+`"`, 1))
	}
	if a := h.ingest("/v1/events/batch", batch(evs...)); a.status != 200 {
		t.Fatalf("ingest: %d %s", a.status, a.body)
	}
	a := h.adminDo("POST", "/v1/meters", `{"name": "searches", "filter": "request.route == \"/v1/search\"", "aggregation": "count"}`)
	if a.status != 201 {
		t.Fatalf("meter: %d %s", a.status, a.body)
	}
	meter := a.json(t)["id"].(string)
	rule := `{"name": "Search quota", "applies_to": "company", "condition": "usage(\"` + meter + `\") > 5",
		"response": {"status": 429, "body": {"error": "quota exceeded"}}, "routes": {"route": "^/v1/search"}}`
	p := h.adminDo("POST", "/v1/governance/preview", rule)
	var prev struct {
		Evaluated int
		Matching  []struct {
			Customer string
			Values   map[string]any
			Calls7d  int `json:"calls_7d"`
		}
	}
	if p.status != 200 || json.Unmarshal(p.body, &prev) != nil {
		t.Fatalf("preview: %d %s", p.status, p.body)
	}
	if prev.Evaluated != 2 || len(prev.Matching) != 1 || prev.Matching[0].Customer != "acme" || prev.Matching[0].Calls7d != 9 ||
		prev.Matching[0].Values[`usage("`+meter+`")`] != float64(9) {
		t.Fatalf("preview: %s", p.body)
	}
	if n := len(h.moesifRules()); n != 0 {
		t.Fatalf("a preview served %d rules", n)
	}
	// Saved and switched on, it is served with its route, made to match
	// under both agents' views of the URL.
	a = h.adminDo("POST", "/v1/governance/rules", strings.Replace(rule, `"name"`, `"active": true, "name"`, 1))
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	rs := h.moesifRules()
	if got := fmt.Sprint(rs[0]["regex_config"]); got != "[map[conditions:[map[path:request.route value:^(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)?/v1/search]]]]" {
		t.Fatalf("regex_config: %s", got)
	}
	cfg, _ := h.config()
	if got := fmt.Sprint(cfg["company_rules"]); got != "map[acme:[map[rules:"+rs[0]["_id"].(string)+" values:map[]]]]" {
		t.Fatalf("company_rules: %s", got)
	}
	// A usage() of an unknown meter is refused at its position.
	bad := h.adminDo("POST", "/v1/governance/preview", strings.Replace(rule, meter, "mtr_nope", 1))
	if m := bad.json(t); bad.status != 400 || m["code"] != "unknown_meter" || m["column"] != float64(7) {
		t.Fatalf("unknown meter: %d %s", bad.status, bad.body)
	}
}

// A customer whose calls were all blocked is still one of today's
// customers (a rule keeps holding for it), and its blocked calls are its
// blast radius: they count in the preview's calls_7d.
func TestGovernanceSeesBlockedCustomers(t *testing.T) {
	h := newHarness(t, nil)
	var evs []string
	for i := 0; i < 3; i++ {
		e := strings.Replace(event(fmt.Sprintf("b-%d", i), -60-i), `"company_id":"c1"`, `"company_id":"initech","blocked_by":"674aa0c1e4b0a2f1c3d5e7f9"`, 1)
		evs = append(evs, e)
	}
	if a := h.ingest("/v1/events/batch", batch(evs...)); a.status != 200 {
		t.Fatalf("ingest: %d %s", a.status, a.body)
	}
	p := h.adminDo("POST", "/v1/governance/preview", `{"name": "x", "applies_to": "company", "condition": "customer == \"initech\"",
		"response": {"status": 403, "body": {"error": "x"}}}`)
	if m := p.json(t); p.status != 200 || m["evaluated"] != float64(1) || fmt.Sprint(m["matching"]) != "[map[calls_7d:3 customer:initech values:map[customer:initech]]]" {
		t.Fatalf("preview: %d %s", p.status, p.body)
	}
}
