package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/server/config"
)

// samples are one scrape of GET /metrics: each series' value by its name
// and sorted labels (a histogram as its _count and _sum), and each family
// as "# NAME".
type samples map[string]float64

// series names a series: labels alternate name and value.
func series(name string, labels ...string) string {
	var pairs []string
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, labels[i]+"="+labels[i+1])
	}
	slices.Sort(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// scrape reads GET /metrics with the admin token, as Prometheus does.
func (h *harness) scrape() samples {
	h.t.Helper()
	a := h.admin("/metrics")
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
		h.t.Fatalf("GET /metrics: %d %s %.300s", a.status, a.header.Get("Content-Type"), a.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(a.body))
	if err != nil {
		h.t.Fatalf("GET /metrics is not Prometheus's text format: %v", err)
	}
	out := samples{}
	for name, f := range fams {
		out["# "+name] = 1 // the families scraped
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName(), l.GetValue())
			}
			switch {
			case m.Counter != nil:
				out[series(name, labels...)] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[series(name, labels...)] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[series(name+"_count", labels...)] = float64(m.GetHistogram().GetSampleCount())
				out[series(name+"_sum", labels...)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// moved checks that each series changed by want between two scrapes
// (want < 0: by any positive amount).
func moved(t *testing.T, before, after samples, want float64, name string, labels ...string) {
	t.Helper()
	s := series(name, labels...)
	got, ok := after[s]
	switch d := got - before[s]; {
	case !ok:
		t.Errorf("%s is not in the scrape", s)
	case want < 0 && d <= 0, want >= 0 && d != want:
		t.Errorf("%s moved by %v (from %v to %v), want %v", s, d, before[s], got, want)
	}
}

// One scrape before and one after ingesting (accepted, duplicates,
// refused for bad JSON, credentials, memory and queue), a failed insert,
// backtests (SQL, a fallback, a failure), a saved meter's usage, Stripe
// webhooks, a billing cycle against the Stripe fake (one 429 on the way),
// and a governance round: every metric moved as much as it should.
func TestMetricsMove(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxQueuedEvents = 1 })
	wantError(t, h.do("GET", "/metrics", nil), 401, "unauthorized", "", -1)
	before := h.scrape()
	if before[series("meterd_ingest_queued_events_limit")] != 1 || before[series("meterd_ingest_memory_limit_bytes")] != config.DefaultIngestMemory {
		t.Errorf("limits: %v, %v", before[series("meterd_ingest_queued_events_limit")], before[series("meterd_ingest_memory_limit_bytes")])
	}

	// Ingestion: two events, the same two again, a CloudEvent, refusals.
	acme := func(txn string, offset int) string {
		return strings.Replace(event(txn, offset), `"company_id":"c1"`, `"company_id":"acme"`, 1)
	}
	two := batch(acme("m-1", -7200), acme("m-2", -7190))
	for range 2 {
		if a := h.ingest("/v1/events/batch", two); a.status != 200 {
			t.Fatalf("ingest: %d %s", a.status, a.body)
		}
	}
	if a := h.postJSON("application/cloudevents+json", `{"specversion":"1.0","id":"ce-1","source":"test","type":"prompt","subject":"acme","time":"2026-11-25T11:00:00Z"}`); a.status != 200 {
		t.Fatalf("cloudevent: %d %s", a.status, a.body)
	}
	wantError(t, h.ingest("/v1/events/batch", `[{"request":`), 400, "invalid_json", "", 0)
	wantError(t, h.do("POST", "/v1/events", strings.NewReader(acme("", 0)), "X-Moesif-Application-Id", "wrong"), 401, "unauthorized", "", -1)
	hold := h.srv.budget.Hold(h.srv.budget.Free() - 1000) // the ingest memory, taken
	held := h.scrape()[series("meterd_ingest_memory_bytes")]
	wantError(t, h.ingest("/v1/events", acme("m-3", 0)), 429, "overloaded", "", -1)
	hold.Release()
	if held < float64(config.DefaultIngestMemory-1000) {
		t.Errorf("meterd_ingest_memory_bytes while the memory was taken: %v", held)
	}
	// A held insert, one request queued behind it: the queue is full.
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open)
	h.store.set(func(s *slowStore) { s.gate = gate })
	calls := h.insertCalls()
	answers := make(chan answer, 2)
	go func() { answers <- h.ingest("/v1/events", acme("m-4", 0)) }()
	h.waitFor("the insert to be held", func() bool { return h.insertCalls() == calls+1 })
	go func() { answers <- h.ingest("/v1/events", acme("m-5", 0)) }()
	h.waitFor("a request to queue", func() bool { return h.srv.writer.Queued() == 1 })
	if q := h.scrape()[series("meterd_ingest_queued_events")]; q != 1 {
		t.Errorf("meterd_ingest_queued_events with one event queued: %v", q)
	}
	wantError(t, h.ingest("/v1/events", acme("m-6", 0)), 503, "overloaded", "", -1)
	h.store.set(func(s *slowStore) { s.gate = nil })
	open()
	for range 2 {
		if a := <-answers; a.status != 200 {
			t.Fatalf("queued request: %d %s", a.status, a.body)
		}
	}
	h.store.set(func(s *slowStore) { s.fail = errors.New("disk on fire") })
	wantError(t, h.ingest("/v1/events", acme("m-7", 0)), 503, "store_unavailable", "", -1)
	h.store.set(func(s *slowStore) { s.fail = nil })

	// Backtests: SQL, a fallback to the VM, engine sql refusing; a saved
	// meter's usage.
	span := window(testNow.Add(-3*time.Hour), testNow, "hour")
	for _, c := range []struct {
		body   string
		status int
	}{
		{`{"filter":"true","aggregation":"count",` + span + `}`, 200},
		{`{"filter":"true","value":"2 ** len(company_id)","aggregation":"sum",` + span + `}`, 200},
		{`{"filter":"true","value":"2 ** len(company_id)","aggregation":"sum","engine":"sql",` + span + `}`, 422},
	} {
		if a := h.adminDo("POST", "/v1/backtest", c.body); a.status != c.status {
			t.Fatalf("backtest %s: %d %s", c.body, a.status, a.body)
		}
	}

	// Stripe: settings, a metered price, acme's customer and subscription.
	clock := testNow
	var clockMu sync.Mutex
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	f := stripefake.New(now)
	defer f.Close()
	if a := h.putStripe(fmt.Sprintf(`{"api_key":%q,"webhook_secret":%q,"api_base":%q,"rate_limit":100}`, testStripeKey, testWhsec, f.URL)); a.status != 200 {
		t.Fatalf("settings: %d %s", a.status, a.body)
	}
	price := f.AddMeter("api_calls")
	deliver := func(ev []byte, want int) {
		t.Helper()
		if a := h.webhook(ev, stripefake.Sign(ev, testWhsec, time.Now())); a.status != want {
			t.Fatalf("webhook: %d %s", a.status, a.body)
		}
	}
	customer := f.Customer("cus_1", map[string]string{"company_id": "acme"})
	deliver(customer, 200)
	deliver(customer, 200) // a duplicate
	_, _, sub := f.Subscription("cus_1", price, testNow.Add(-30*time.Hour), testNow.Add(30*24*time.Hour-30*time.Hour), nil)
	deliver(sub, 200)
	wantError(t, h.webhook(sub, stripefake.Sign(sub, "whsec_wrong", time.Now())), 400, "invalid_signature", "Stripe-Signature", -1)
	a := h.adminDo("POST", "/v1/meters", `{"name":"Calls","filter":"true","aggregation":"count","stripe_price_id":"`+price+`"}`)
	if a.status != 201 {
		t.Fatalf("meter: %d %s", a.status, a.body)
	}
	meter := a.json(t)["id"].(string)
	if a := h.adminDo("PATCH", "/v1/meters/"+meter, `{"active":true}`); a.status != 200 {
		t.Fatalf("activate: %d %s", a.status, a.body)
	}
	if a := h.admin("/v1/meters/" + meter + "/usage?bucket=hour&from=2026-11-25T09:00:00Z&to=2026-11-25T12:00:00Z"); a.status != 200 {
		t.Fatalf("usage: %d %s", a.status, a.body)
	}

	// A billing cycle: Stripe answers the first meter event 429.
	f.SetFault(func(n int, r *http.Request) stripefake.Fault {
		if r.URL.Path == "/v1/billing/meter_events" && !slices.ContainsFunc(f.Requests(), func(q stripefake.Request) bool { return q.Path == r.URL.Path }) {
			return stripefake.Fault{Status: 429}
		}
		return stripefake.Fault{}
	})
	w := &billing.Worker{Store: h.srv.cfg.Store, Now: now, Metrics: h.srv.metrics,
		Retry: billing.Retry{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond}}
	// acme's hours 10:00 (m-1, m-2) and 11:00 (the CloudEvent) are closed.
	if st, err := w.Cycle(context.Background()); err != nil || st.Sent != 2 {
		t.Fatalf("billing cycle: %+v %v", st, err)
	}
	billed := h.scrape()
	clockMu.Lock()
	clock = clock.Add(2 * time.Hour) // the hours ending 13:00 and 14:00 closed since, no cycle
	clockMu.Unlock()
	lagging := h.scrape()

	// Governance: a blocking rule that holds for acme.
	a = h.adminDo("POST", "/v1/governance/rules", `{"name":"Acme","applies_to":"company","active":true,"condition":"customer == \"acme\"",
		"response":{"status":402,"body":{"error":"blocked"}}}`)
	if a.status != 201 {
		t.Fatalf("rule: %d %s", a.status, a.body)
	}
	rule := a.json(t)["id"].(string)

	after := h.scrape()
	moved(t, before, after, 2, "meterd_ingest_events_total", "format", "moesif", "result", "duplicate")
	moved(t, before, after, 4, "meterd_ingest_events_total", "format", "moesif", "result", "accepted") // m-1, m-2, m-4, m-5
	moved(t, before, after, 1, "meterd_ingest_events_total", "format", "cloudevents", "result", "accepted")
	for _, r := range [][]string{
		{"/v1/events/batch", "400", "invalid_json"}, {"/v1/events", "401", "unauthorized"}, {"/v1/events", "429", "overloaded"},
		{"/v1/events", "503", "overloaded"}, {"/v1/events", "503", "store_unavailable"},
	} {
		moved(t, before, after, 1, "meterd_ingest_rejected_requests_total", "route", r[0], "status", r[1], "code", r[2])
	}
	moved(t, before, after, 3, "meterd_ingest_request_duration_seconds_count", "route", "/v1/events/batch")
	moved(t, before, after, 1, "meterd_ingest_request_duration_seconds_count", "route", "/api/v1/events")
	moved(t, before, after, 5, "meterd_store_inserted_rows_total")
	moved(t, before, after, 1, "meterd_store_insert_duration_seconds_count", "result", "error")
	moved(t, before, after, -1, "meterd_store_insert_duration_seconds_count", "result", "ok")
	moved(t, before, after, 1, "meterd_backtest_duration_seconds_count", "source", "backtest", "engine", "sql")
	moved(t, before, after, 1, "meterd_backtest_duration_seconds_count", "source", "backtest", "engine", "vm")
	moved(t, before, after, 1, "meterd_backtest_fallbacks_total", "source", "backtest")
	moved(t, before, after, 1, "meterd_backtest_errors_total", "source", "backtest")
	moved(t, before, after, 1, "meterd_backtest_duration_seconds_count", "source", "usage", "engine", "sql")
	moved(t, before, after, 1, "meterd_webhook_deliveries_total", "type", "customer.created", "result", "received")
	moved(t, before, after, 1, "meterd_webhook_deliveries_total", "type", "customer.created", "result", "duplicate")
	moved(t, before, after, 1, "meterd_webhook_deliveries_total", "type", "customer.subscription.created", "result", "received")
	moved(t, before, after, 1, "meterd_webhook_deliveries_total", "type", "unknown", "result", "invalid_signature")
	moved(t, before, after, 1, "meterd_billing_cycles_total", "result", "ok")
	moved(t, before, after, 1, "meterd_billing_cycle_duration_seconds_count")
	moved(t, before, after, 2, "meterd_billing_reports_total", "status", "pending")
	moved(t, before, after, 2, "meterd_billing_reports_total", "status", "sent")
	moved(t, before, after, 3, "meterd_stripe_request_duration_seconds_count", "operation", "meter_events")
	moved(t, before, after, 1, "meterd_stripe_request_errors_total", "operation", "meter_events", "code", "429")
	moved(t, before, after, 1, "meterd_stripe_request_duration_seconds_count", "operation", "prices")
	moved(t, before, after, 1, "meterd_stripe_request_duration_seconds_count", "operation", "billing_meters")
	moved(t, before, after, -1, "meterd_governance_rounds_total", "result", "ok")
	moved(t, before, after, -1, "meterd_governance_round_duration_seconds_count")
	moved(t, before, after, 1, "meterd_governance_rule_customers", "rule", rule, "block", "true")
	// The lag: none right after the cycle; two hours later, the hour that
	// ended at 13:00 has waited an hour.
	if lag := billed[series("meterd_billing_lag_seconds")]; lag != 0 {
		t.Errorf("lag right after a cycle: %v", lag)
	}
	if lag := lagging[series("meterd_billing_lag_seconds")]; lag != 3600 {
		t.Errorf("lag two hours after the last cycle: %v, want 3600", lag)
	}
	documented(t, after)
}

// documented checks that every meterd_ metric of a scrape is documented
// in docs/operations.md, and that every metric documented there was
// scraped (TestMetricsMove moves them all, so all are there).
func documented(t *testing.T, scraped samples) {
	t.Helper()
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	inDoc := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(meterd_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		inDoc[m[1]] = true
	}
	for k := range scraped {
		if name, ok := strings.CutPrefix(k, "# "); ok && strings.HasPrefix(name, "meterd_") {
			if !inDoc[name] {
				t.Errorf("%s is not documented in docs/operations.md", name)
			}
			delete(inDoc, name)
		}
	}
	for name := range inDoc {
		t.Errorf("docs/operations.md documents %s, which GET /metrics does not have", name)
	}
}
