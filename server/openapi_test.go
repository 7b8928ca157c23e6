package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/server/openapi"
)

// spec is the OpenAPI document as kin-openapi reads it, checked against
// the OpenAPI 3.1 specification, and its router.
var spec = sync.OnceValues(func() (*openapiSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.JSON)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(loader.Context, openapi3.EnableMultiError()); err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	// Bodies kin-openapi does not decode by itself: CloudEvents are JSON,
	// the console's files are opaque.
	openapi3filter.RegisterBodyDecoder("application/cloudevents+json", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/cloudevents-batch+json", openapi3filter.JSONBodyDecoder)
	for _, ct := range []string{"text/html", "text/javascript", "text/css", "font/woff2"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	return &openapiSpec{doc: doc, router: router}, nil
})

type openapiSpec struct {
	doc    *openapi3.T
	router routers.Router
}

func loadSpec(t *testing.T) *openapiSpec {
	t.Helper()
	s, err := spec()
	if err != nil {
		t.Fatalf("server/openapi/openapi.json: %v", err)
	}
	return s
}

// operations are the document's operations as "METHOD /path".
func (s *openapiSpec) operations() []string {
	var out []string
	for path, item := range s.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// The document is OpenAPI 3.1 and valid; it is served at /openapi.json
// without credentials, as committed.
func TestOpenAPIDocument(t *testing.T) {
	s := loadSpec(t)
	if !s.doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", s.doc.OpenAPI)
	}
	h := newHarness(t, nil)
	a := h.do("GET", "/openapi.json", nil)
	if a.status != 200 || a.header.Get("Content-Type") != "application/json" || !bytes.Equal(a.body, openapi.JSON) {
		t.Fatalf("GET /openapi.json: %d %s, %d bytes", a.status, a.header.Get("Content-Type"), len(a.body))
	}
}

// echoParam is an Echo path parameter (:id) or wildcard (*).
var echoParam = regexp.MustCompile(`:([A-Za-z]+)|\*`)

// Every route the server registers is in the document, and every
// operation the document lists is registered: they are the same set.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	s := loadSpec(t)
	h := newHarness(t, nil)
	var routes []string
	for _, r := range h.srv.echo.Routes() {
		path := echoParam.ReplaceAllStringFunc(r.Path, func(p string) string {
			if p == "*" {
				return "{path}" // the document's name for the one wildcard, /assets/*
			}
			return "{" + p[1:] + "}"
		})
		routes = append(routes, r.Method+" "+path)
	}
	sort.Strings(routes)
	routes = slices.Compact(routes)
	documented := s.operations()
	for _, r := range routes {
		if _, found := slices.BinarySearch(documented, r); !found {
			t.Errorf("%s is served but not in server/openapi/openapi.json", r)
		}
	}
	for _, op := range documented {
		if _, found := slices.BinarySearch(routes, op); !found {
			t.Errorf("%s is in server/openapi/openapi.json but not served", op)
		}
	}
}

// validator checks requests and answers against the document, and
// remembers which operations answered what.
type validator struct {
	t        *testing.T
	spec     *openapiSpec
	mu       sync.Mutex
	answered map[string][]int // operation id: the statuses seen
}

func newValidator(t *testing.T) *validator {
	return &validator{t: t, spec: loadSpec(t), answered: map[string][]int{}}
}

// validate checks an answer against the document: its status is listed
// for the operation, and its headers and body match what is listed for
// the status. A request the server accepted (2xx) must match the
// document too.
func (v *validator) validate(req *http.Request, body []byte, a answer) {
	v.t.Helper()
	route, params, err := v.spec.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound) && a.status == http.StatusNotFound,
		errors.Is(err, routers.ErrMethodNotAllowed) && a.status == http.StatusMethodNotAllowed:
		return // no route, no operation (TestOpenAPIListsEveryRoute: they are the same)
	case err != nil:
		v.t.Errorf("%s %s answered %d but is no operation of the document: %v", req.Method, req.URL.Path, a.status, err)
		return
	}
	v.mu.Lock()
	v.answered[route.Operation.OperationID] = append(v.answered[route.Operation.OperationID], a.status)
	v.mu.Unlock()
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	r := req.Clone(context.Background())
	r.Body = http.NoBody
	if body != nil {
		r.Body = readCloser{bytes.NewReader(body)}
		if r.Header.Get("Content-Type") == "" { // read as JSON whatever it says (the document's info)
			r.Header.Set("Content-Type", "application/json")
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	if a.status < 300 && req.Header.Get("Content-Encoding") == "" {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			v.t.Errorf("%s %s: the server accepted a request the document refuses: %v\nbody: %.500s", req.Method, req.URL, err, body)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: a.status, Header: a.header, Options: opts}
	out.SetBodyBytes(a.body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.t.Errorf("%s %s: the answer %d does not match the document: %v\nbody: %.1000s", req.Method, req.URL, a.status, err, a.body)
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// missing lists the operations that never answered 2xx, but those in
// except.
func (v *validator) missing(except ...string) []string {
	var out []string
	for _, op := range v.spec.operations() {
		method, path, _ := strings.Cut(op, " ")
		o := v.spec.doc.Paths.Find(path).GetOperation(method)
		if slices.Contains(except, o.OperationID) || slices.ContainsFunc(v.answered[o.OperationID], func(s int) bool { return s < 300 }) {
			continue
		}
		out = append(out, o.OperationID)
	}
	return out
}

// The main flows of the API, every request and answer checked against
// the document: ingestion in every format, listing and stats, profiles,
// meters through their life, backtests and usage, OpenMeter's endpoints,
// Stripe settings, webhook, a billing cycle's reports, governance rules
// and previews, the agents' documents, operations, and errors (meterd's
// and RFC 7807 problems, with Retry-After where they carry it). Every
// operation of the document answers 2xx at least once, but the two that
// never do (deletions are refused).
func TestOpenAPIAnswers(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBatchEvents = 5 })
	admin := func(method, path, body string) map[string]any {
		t.Helper()
		a := h.adminDo(method, path, body)
		if a.status >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, a.status, a.body)
		}
		var m map[string]any
		if a.body[0] == '{' {
			m = a.json(t)
		}
		return m
	}
	acme := func(txn string, offset int) string {
		return strings.Replace(event(txn, offset), `"company_id":"c1"`, `"company_id":"acme"`, 1)
	}

	// Operations and the console.
	for _, p := range []string{"/healthz", "/openapi.json", "/", "/index.html", "/assets/app.js"} {
		if a := h.do("GET", p, nil); a.status != 200 {
			t.Fatalf("GET %s: %d", p, a.status)
		}
	}
	wantError(t, h.do("GET", "/assets/nope.js", nil), 404, "not_found", "", -1)
	admin("GET", "/v1/debug/runtime", "")
	admin("GET", "/metrics", "")
	wantError(t, h.do("GET", "/v1/events", nil), 401, "unauthorized", "", -1)

	// Ingestion: Moesif events, profiles, CloudEvents in its three types.
	if a := h.ingest("/v1/events", acme("t-1", -7200)); a.status != 200 {
		t.Fatalf("ingest: %d %s", a.status, a.body)
	}
	if a := h.ingest("/v1/events/batch", batch(acme("t-1", -7200), acme("t-2", -3600), event("", -60))); a.status != 200 {
		t.Fatalf("ingest batch: %d %s", a.status, a.body)
	}
	for _, p := range []struct{ path, body string }{
		{"/v1/users", `{"user_id":"u1","company_id":"acme","metadata":{"name":"Ann"}}`},
		{"/v1/users/batch", `[{"user_id":"u2","modified_time":"2026-11-25T10:00:00Z","metadata":{"name":"Bob"}}]`},
		{"/v1/companies", `{"company_id":"acme","metadata":{"plan":"pro"}}`},
		{"/v1/companies/batch", `[{"company_id":"globex","metadata":{"plan":"free","seats":{"max":5}}}]`},
	} {
		if a := h.ingest(p.path, p.body); a.status != 200 {
			t.Fatalf("%s: %d %s", p.path, a.status, a.body)
		}
	}
	for _, ce := range []struct{ ct, body string }{
		{"application/cloudevents+json", openMeterEvent("ce-1", "acme", testNow.Add(-90*time.Minute), 10)},
		{"application/cloudevents-batch+json", "[" + openMeterEvent("ce-2", "acme", testNow.Add(-80*time.Minute), 20) + "]"},
		{"application/json", `{"specversion":"1.0","id":"ce-3","source":"svc","type":"ping","subject":"globex"}`},
	} {
		if a := h.postJSON(ce.ct, ce.body); a.status != 200 {
			t.Fatalf("%s: %d %s", ce.ct, a.status, a.body)
		}
	}
	// Refusals: meterd's errors, and problems under /api/.
	wantError(t, h.ingest("/v1/events/batch", `[{"request":`), 400, "invalid_json", "", 0)
	wantError(t, h.ingest("/v1/events", `{"request":{"time":"x","uri":"/","verb":"GET"}}`), 400, "invalid_value", "request.time", -1)
	wantError(t, h.ingest("/v1/events/batch", batch(acme("", 0), acme("", 1), acme("", 2), acme("", 3), acme("", 4), acme("", 5))), 413, "batch_too_large", "", 5)
	wantError(t, h.ingest("/v1/events", acme("", 0), "Content-Encoding", "br"), 415, "unsupported_encoding", "", -1)
	wantError(t, h.do("POST", "/v1/users", strings.NewReader(`{}`), "X-Moesif-Application-Id", "nope"), 401, "unauthorized", "", -1)
	hold := h.srv.budget.Hold(h.srv.budget.Free() - 1000)
	wantError(t, h.ingest("/v1/events", acme("t-9", 0)), 429, "overloaded", "", -1)
	hold.Release()
	h.store.set(func(s *slowStore) { s.fail = errors.New("disk on fire") })
	wantError(t, h.ingest("/v1/events", acme("t-9", 0)), 503, "store_unavailable", "", -1)
	h.store.set(func(s *slowStore) { s.fail = nil })
	wantProblem(t, h.postJSON("text/plain", "{}"), 415, "unsupported_media_type", "", -1)
	wantProblem(t, h.postJSON("application/json", `[{"id":"x"}]`), 400, "missing_field", "specversion", 0)

	// Reading events and profiles.
	admin("GET", "/v1/events?limit=2&company_id=acme&status=2xx&blocked=false", "")
	page := admin("GET", "/v1/events?limit=2", "")
	admin("GET", "/v1/events?limit=2&cursor="+page["next_cursor"].(string), "")
	admin("GET", "/v1/events?type=prompt", "")
	admin("GET", "/v1/events/stats?route=/v1/search", "")
	wantError(t, h.admin("/v1/events?status=6xx"), 400, "invalid_value", "status", -1)
	admin("GET", "/v1/users/u1", "")
	admin("GET", "/v1/companies/globex", "")
	wantError(t, h.admin("/v1/companies/nobody"), 404, "not_found", "", -1)

	// Meters through their life.
	m := admin("POST", "/v1/meters", `{"name":"Tokens","slug":"tokens","filter":"true","value":"float(metadata.tokens ?? 1)","aggregation":"sum","stripe_price_id":"price_x"}`)
	id := m["id"].(string)
	admin("POST", "/v1/meters/validate", `{"name":"x","filter":"true","aggregation":"count"}`)
	if r := admin("POST", "/v1/meters/validate", `{"name":"x","filter":"request.verbb == 1","aggregation":"count"}`); r["valid"] != false {
		t.Fatalf("validate: %v", r)
	}
	a := h.adminDo("POST", "/v1/meters", `{"name":"x","filter":"request.verbb == \"GET\"","aggregation":"count"}`)
	if a.status != 400 || a.json(t)["errors"] == nil {
		t.Fatalf("a meter that does not compile: %d %s", a.status, a.body)
	}
	wantError(t, h.adminDo("POST", "/v1/meters", `{"name":"x","filtre":"true","aggregation":"count"}`), 400, "unknown_field", "filtre", -1)
	admin("GET", "/v1/meters", "")
	admin("PATCH", "/v1/meters/"+id, `{"name":"Tokens used","active":true}`)
	admin("POST", "/v1/meters/"+id+"/versions", `{"filter":"true","value":"float(metadata.tokens ?? 2)","effective_from":"2026-11-26T00:00:00Z"}`)
	admin("GET", "/v1/meters/"+id, "")
	admin("GET", "/v1/meters/"+id+"/versions", "")
	admin("GET", "/v1/meters/"+id+"/usage?from=2026-11-25T00:00:00Z&to=2026-11-25T12:00:00Z&bucket=hour&customer=acme", "")
	other := admin("POST", "/v1/meters", `{"name":"Old","filter":"true","aggregation":"count"}`)["id"].(string)
	wantError(t, h.adminDo("PATCH", "/v1/meters/"+other, `{"slug":"tokens"}`), 409, "slug_taken", "slug", -1)
	admin("POST", "/v1/meters/"+other+"/archive", "")
	wantError(t, h.adminDo("PATCH", "/v1/meters/"+other, `{"name":"x"}`), 409, "archived", "", -1)
	wantError(t, h.adminDo("DELETE", "/v1/meters/"+id, ""), 405, "meters_are_not_deleted", "", -1)
	wantError(t, h.admin("/v1/meters/mtr_nope"), 404, "not_found", "", -1)

	// Backtests: SQL, a fallback, samples, engine sql refusing.
	span := window(testNow.Add(-3*time.Hour), testNow, "hour")
	admin("POST", "/v1/backtest", `{"filter":"true","value":"float(metadata.tokens ?? 1)","aggregation":"sum","top":3,`+span+`}`)
	admin("POST", "/v1/backtest", `{"meter":{"filter":"true","value":"2 ** len(company_id)","aggregation":"max"},`+span+`}`)
	admin("POST", "/v1/backtest/samples", `{"filter":"response.status == 200","value":"metadata.tokens","aggregation":"unique","limit":2,`+span+`}`)
	wantError(t, h.adminDo("POST", "/v1/backtest", `{"filter":"true","value":"2 ** len(company_id)","aggregation":"sum","engine":"sql",`+span+`}`), 422, "not_translatable", "engine", -1)
	wantError(t, h.adminDo("POST", "/v1/backtest", `{"filter":"true","aggregation":"count","bucket":"week"}`), 400, "invalid_window", "bucket", -1)

	// OpenMeter's reads.
	admin("GET", "/api/v1/events?subject=acme&limit=10", "")
	admin("GET", "/api/v1/meters?includeDeleted=true&orderBy=name&order=DESC", "")
	admin("GET", "/api/v1/meters/tokens", "")
	admin("GET", "/api/v1/meters/tokens/query?from=2026-11-25T00:00:00Z&to=2026-11-25T12:00:00Z&windowSize=HOUR&groupBy=subject", "")
	admin("GET", "/api/v1/meters/"+id+"/query?subject=acme", "")
	wantProblem(t, h.admin("/api/v1/meters/tokens/query?groupBy=customer_id"), 400, "unsupported_parameter", "groupBy", -1)
	wantProblem(t, h.admin("/api/v1/meters/nope"), 404, "not_found", "", -1)
	wantProblem(t, h.admin("/api/v1/events?customerId=c"), 400, "unsupported_parameter", "customerId", -1)

	// Stripe: settings, the check, webhooks, a cycle's reports, the state.
	wantError(t, h.admin("/v1/billing/stripe"), 404, "not_configured", "", -1)
	f := stripefake.New(func() time.Time { return testNow })
	defer f.Close()
	admin("PUT", "/v1/billing/stripe", fmt.Sprintf(`{"api_key":%q,"webhook_secret":%q,"api_base":%q,"rate_limit":100}`, testStripeKey, testWhsec, f.URL))
	admin("GET", "/v1/billing/stripe", "")
	admin("POST", "/v1/billing/stripe/check", "")
	wantError(t, h.putStripe(`{"mode":"invoices"}`), 400, "invalid_value", "mode", -1)
	price := f.AddMeter("tokens")
	customer := f.Customer("cus_1", map[string]string{"company_id": "acme"})
	for range 2 { // received, then a duplicate
		if a := h.webhook(customer, stripefake.Sign(customer, testWhsec, time.Now())); a.status != 200 {
			t.Fatalf("webhook: %d %s", a.status, a.body)
		}
	}
	_, _, sub := f.Subscription("cus_1", price, testNow.Add(-30*time.Hour), testNow.Add(30*24*time.Hour-30*time.Hour), nil)
	if a := h.webhook(sub, stripefake.Sign(sub, testWhsec, time.Now())); a.status != 200 {
		t.Fatalf("webhook: %d %s", a.status, a.body)
	}
	invoice := invoiceEvent("evt_in", "invoice.payment_failed", "open", time.Now().Add(-time.Hour), true)
	if a := h.webhook(invoice, stripefake.Sign(invoice, testWhsec, time.Now())); a.status != 200 {
		t.Fatalf("webhook: %d %s", a.status, a.body)
	}
	wantError(t, h.webhook(sub, "t=1,v1=00"), 400, "invalid_signature", "Stripe-Signature", -1)
	w := &billing.Worker{Store: h.srv.cfg.Store, Now: func() time.Time { return testNow }, Retry: billing.Retry{Attempts: 1}}
	admin("POST", "/v1/meters", `{"name":"Billed","filter":"true","aggregation":"count","stripe_price_id":"`+price+`","status":"active"}`)
	if st, err := w.Cycle(context.Background()); err != nil || st.Sent == 0 {
		t.Fatalf("billing cycle: %+v %v", st, err)
	}
	if r := admin("GET", "/v1/billing/reports?status=sent&limit=5", ""); len(r["reports"].([]any)) == 0 {
		t.Fatalf("no reports: %v", r)
	}
	admin("GET", "/v1/billing/customers/acme/reports", "")
	wantError(t, h.admin("/v1/billing/reports?status=lost"), 400, "invalid_value", "status", -1)
	admin("GET", "/v1/billing/state", "")
	admin("GET", "/v1/billing/workers", "")

	// Governance: rules through their life, previews, what the agents get.
	rule := admin("POST", "/v1/governance/rules", `{"name":"Unpaid","applies_to":"company","active":true,"condition":"invoices.unpaid > 0",
		"response":{"status":402,"headers":{"X-Reason":"unpaid"},"body":{"error":"payment_required","invoice":"{{invoices.hosted_invoice_url}}"}},
		"routes":{"route":"^/v1/","verb":"GET|POST"}}`)["id"].(string)
	admin("POST", "/v1/governance/rules", `{"name":"Heavy","applies_to":"user","condition":"customer == \"u1\"","response":{"status":200,"headers":{"X-Heavy":"yes"}},"block":false}`)
	a = h.adminDo("POST", "/v1/governance/rules", `{"name":"x","applies_to":"company","condition":"invoices.unpayd > 0","response":{"status":402,"body":{}}}`)
	if a.status != 400 || a.json(t)["errors"] == nil {
		t.Fatalf("a rule that does not compile: %d %s", a.status, a.body)
	}
	admin("GET", "/v1/governance/rules", "")
	admin("GET", "/v1/governance/rules/"+rule, "")
	admin("PATCH", "/v1/governance/rules/"+rule, `{"name":"Unpaid invoices"}`)
	admin("POST", "/v1/governance/rules/"+rule+"/versions", `{"condition":"invoices.unpaid > 0","response":{"status":402,"body":{"error":"pay"}},"routes":[{"route":"^/v1/search"}]}`)
	admin("GET", "/v1/governance/rules/"+rule+"/versions", "")
	admin("POST", "/v1/governance/validate", `{"name":"x","applies_to":"company","condition":"true","response":{"status":402,"body":{}}}`)
	admin("POST", "/v1/governance/preview", `{"name":"x","applies_to":"company","condition":"company.plan == \"pro\"","response":{"status":402,"body":{}}}`)
	admin("GET", "/v1/governance/status", "")
	admin("GET", "/v1/governance/customers/company/acme", "")
	wantError(t, h.admin("/v1/governance/customers/team/acme"), 400, "invalid_value", "kind", -1)
	for _, p := range []string{"/v1/config", "/v1/rules"} {
		if a := h.do("GET", p, nil, "X-Moesif-Application-Id", testIngest); a.status != 200 {
			t.Fatalf("%s: %d %s", p, a.status, a.body)
		}
	}
	wantError(t, h.adminDo("DELETE", "/v1/governance/rules/"+rule, ""), 405, "rules_are_not_deleted", "", -1)
	admin("POST", "/v1/governance/rules/"+rule+"/archive", "")
	wantError(t, h.adminDo("PATCH", "/v1/governance/rules/"+rule, `{"active":true}`), 409, "archived", "", -1)
	wantError(t, h.admin("/v1/governance/rules/000000000000000000000000"), 404, "not_found", "", -1)

	if m := h.openapi.missing("deleteMeter", "deleteRule"); len(m) > 0 {
		t.Errorf("operations never answered 2xx here: %v", m)
	}
}
