package billing_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/rules"
)

// stripeMock is stripe-mock's URL (env METERD_TEST_STRIPE_MOCK, e.g.
// http://127.0.0.1:12111; .ci/run starts one). CI must have it.
func stripeMock(t *testing.T) string {
	u := os.Getenv("METERD_TEST_STRIPE_MOCK")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("METERD_TEST_STRIPE_MOCK is not set, and CI=true: the Stripe wire contract must be checked in CI")
		}
		t.Skip("METERD_TEST_STRIPE_MOCK not set (go install github.com/stripe/stripe-mock@v0.190.0; stripe-mock -http-port 12111)")
	}
	return u
}

// Every request meterd makes is one Stripe's API spec accepts: the check,
// the resync's lists and usage records, checked by stripe-mock.
func TestStripeMockContract(t *testing.T) {
	url := stripeMock(t)
	st := open(t, "duckdb://"+t.TempDir()+"/m.duckdb")
	w := &world{t: t, st: st, now: time.Now().UTC().Truncate(time.Second)}
	w.start = w.now.Add(-5 * time.Hour)
	w.fake = stripefake.New(nil) // only to build and sign events
	t.Cleanup(w.fake.Close)
	newServer(t, w)
	w.do("PUT", "/v1/billing/stripe", map[string]any{"api_key": "sk_test_123", "webhook_secret": secret,
		"mode": billing.ModeUsageRecords, "api_base": url, "rate_limit": 50}, 200, nil)
	var check map[string]any
	w.do("POST", "/v1/billing/stripe/check", nil, 200, &check)
	if check["ok"] != true {
		t.Fatalf("check: %v", check)
	}
	s, err := billing.LoadSettings(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := stripestate.Resync(context.Background(), billing.NewAPI(*s, 0), st, time.Now()); err != nil || n == 0 {
		t.Fatalf("resync against stripe-mock: %d objects, %v", n, err)
	}
	price := w.fake.AddLegacyPrice()
	w.fake.Customer("cus_mock", map[string]string{"company_id": "acme"})
	ev := w.fake.Customer("cus_mock", map[string]string{"company_id": "acme"})
	if w.webhook(ev, secret) != 200 {
		t.Fatal("webhook refused")
	}
	_, _, sev := w.fake.Subscription("cus_mock", price, w.start, w.start.AddDate(0, 1, 0), nil)
	if w.webhook(sev, secret) != 200 {
		t.Fatal("webhook refused")
	}
	w.meter(price, rules.AggCount)
	w.traffic(1, 60, w.start, w.now.Add(-time.Hour))
	stats, err := w.worker().Cycle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent == 0 || stats.Rejected != 0 || stats.Failed != 0 {
		t.Fatalf("usage records against stripe-mock: %+v", stats)
	}
	rs, err := billing.LoadReports(context.Background(), st, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Status == billing.StatusSent && r.Answer == "" {
			t.Fatalf("a sent report without Stripe's id: %+v", r)
		}
	}
}
