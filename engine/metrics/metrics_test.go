package metrics

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A nil Set records nothing and does not fail: the callers that run
// without metrics (meterd billing --once, other packages' tests).
func TestNilSet(t *testing.T) {
	var s *Set
	s.IngestEvents(FormatMoesif, 1, 1)
	s.IngestRequest("/v1/events", 400, "invalid_json", time.Second)
	s.WatchIngest(func() int { return 0 }, 1, func() int64 { return 0 }, 1)
	s.StoreInsert(time.Second, 1, nil)
	s.Backtest(SourceBacktest, "sql", false, time.Second, nil)
	s.BillingCycle(time.Now, time.Now(), time.Second, nil, true)
	s.BillingLeader(true, time.Now())
	s.BillingReport("sent")
	s.Webhook("", "invalid_signature")
	s.GovernanceRound(time.Second, nil)
	s.WatchGovernance(nil)
	if s.StripeTransport(nil) != http.DefaultTransport {
		t.Error("a nil Set's Stripe transport is not the base")
	}
}

// The lag is how long the oldest hour no cycle covered has been closed:
// 0 right after a cycle, growing while cycles fail, 0 on standby.
func TestBillingLag(t *testing.T) {
	s := New()
	lag := func() float64 { return s.billing.lag() }
	now := time.Date(2026, 11, 25, 12, 10, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	if lag() != 0 {
		t.Fatalf("before any cycle: %v", lag())
	}
	s.BillingCycle(clock, now, time.Second, nil, true)
	if lag() != 0 {
		t.Fatalf("right after a cycle: %v", lag())
	}
	now = now.Add(55 * time.Minute) // 13:05: the hour 12:00 closed 5 minutes ago
	if lag() != 300 {
		t.Fatalf("5 minutes after an hour closed: %v, want 300", lag())
	}
	s.BillingCycle(clock, now, time.Second, errors.New("store down"), true)
	now = now.Add(2 * time.Hour) // 15:05, every cycle failing
	if lag() != 2*3600+300 {     // the hour that ended at 13:00 still waits
		t.Fatalf("failing for two hours: %v", lag())
	}
	s.BillingLeader(false, now) // another worker leads
	if lag() != 0 || testutil.ToFloat64(s.billing.leader) != 0 {
		t.Fatalf("standby: lag %v", lag())
	}

	// A worker failing from its first cycle on: the lag counts from it.
	s = New()
	now = time.Date(2026, 11, 25, 12, 59, 0, 0, time.UTC)
	s.BillingCycle(clock, now, time.Second, errors.New("store down"), true)
	now = now.Add(2 * time.Minute)
	if lag() != 60 {
		t.Fatalf("failing from the first cycle: %v, want 60", lag())
	}
	s.BillingCycle(clock, now, time.Second, nil, false) // Stripe not configured: nothing lags
	if lag() != 0 {
		t.Fatalf("not configured: %v", lag())
	}
	if n := testutil.ToFloat64(s.billing.cycles.WithLabelValues("not_configured")); n != 1 {
		t.Fatalf("not_configured cycles: %v", n)
	}
}

// Stripe's paths name operations; ids never become labels.
func TestStripeOperation(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/billing/meter_events":                    "meter_events",
		"/v1/subscription_items/si_1Ab/usage_records": "usage_records",
		"/v1/prices/price_1MoBy5LkdIwHu7ixZhnattbh":   "prices",
		"/v1/billing/meters/mtr_123":                  "billing_meters",
		"/v1/balance":                                 "balance",
		"/v1/customers":                               "customers",
		"/v1/invoices/in_42":                          "invoices",
		"/proxy/v1/subscriptions":                     "subscriptions",
		"/v1/charges/ch_1":                            "other",
		"/v1/prices/price_1/extra":                    "other",
	} {
		if got := stripeOperation(path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}
