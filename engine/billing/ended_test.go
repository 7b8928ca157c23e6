package billing_test

import (
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
)

// reports is a customer's ledger with one status, as the API lists it.
func (w *world) reports(customer, status string) []billing.Report {
	w.t.Helper()
	var out struct {
		Reports []billing.Report `json:"reports"`
	}
	w.do("GET", "/v1/billing/customers/"+customer+"/reports?status="+status, nil, 200, &out)
	return out.Reports
}

// A subscription canceled by a signed customer.subscription.deleted
// webhook is billed no more, by one rule in both modes: what its customer
// used before it ended and Stripe lacks is listed as not_billed, never
// sent; what the customer uses after it ended is no part of it, and bills
// once, on the customer's new subscription to the same price (a plan
// change), not twice. A paused subscription's usage is held: neither sent
// nor listed, and sent once it is active again.
func TestCanceledSubscriptionIsNotBilled(t *testing.T) {
	inEveryWorld(t, func(t *testing.T, w *world, mode string) {
		price, items, m := w.subscribed(mode)
		wk := w.worker()
		settle(t, wk, 3)
		globexBefore := w.billed(mode, items, "globex")
		if s := w.webhook(w.fake.SetStatus(w.subs["globex"], "paused"), secret); s != 200 {
			t.Fatalf("pause webhook: %d", s)
		}
		before := w.billed(mode, items, "acme")
		if before == 0 || before != w.expected(m, "acme", w.now) {
			t.Fatalf("before the cancellation Stripe bills acme %d, the backtest says %d", before, w.expected(m, "acme", w.now))
		}
		// Usage Stripe has not seen yet (late events in the period), then
		// acme cancels and at once subscribes again to the same price.
		w.traffic(2, 300, w.start.Add(time.Hour), w.now.Add(-time.Hour))
		end := w.now
		if s := w.webhook(w.fake.SetStatus(w.subs["acme"], "canceled"), secret); s != 200 {
			t.Fatalf("cancellation webhook: %d", s)
		}
		_, item, ev := w.fake.Subscription("cus_0", price, end, end.AddDate(0, 1, 0), nil)
		if s := w.webhook(ev, secret); s != 200 {
			t.Fatalf("new subscription webhook: %d", s)
		}
		settle(t, wk, 3)
		if got := w.billed(mode, items, "acme"); got != before {
			t.Fatalf("after the cancellation Stripe bills acme %d, it had %d: usage of a canceled subscription was sent", got, before)
		}
		if got := w.billed(mode, items, "globex"); got != globexBefore {
			t.Fatalf("Stripe bills globex, paused, %d; it had %d", got, globexBefore)
		}
		for _, st := range []string{billing.StatusLate, billing.StatusNotBilled} {
			if rs := w.reports("globex", st); len(rs) != 0 {
				t.Fatalf("the paused subscription's usage is listed: %+v", rs[0])
			}
		}
		if s := w.webhook(w.fake.SetStatus(w.subs["globex"], "active"), secret); s != 200 {
			t.Fatalf("resume webhook: %d", s)
		}
		// The ledger lists what Stripe lacks of acme's usage until the end.
		listed := w.reports("acme", billing.StatusNotBilled)
		var lacking int64
		stripeHas := w.fake.Usage(items["acme"])
		for _, r := range listed {
			if r.Subscription != w.subs["acme"] || r.Note == "" {
				t.Fatalf("listing %+v", r)
			}
			if mode == billing.ModeUsageRecords {
				lacking += r.Quantity - stripeHas[r.Bucket.Unix()] // each hour's quantity, set
			} else {
				lacking += r.Quantity // the increase Stripe lacks
			}
		}
		if want := w.expected(m, "acme", end) - before; len(listed) == 0 || lacking != want || want <= 0 {
			t.Fatalf("%d not_billed listings for %d units; acme used %d units Stripe lacks before the end", len(listed), lacking, want)
		}
		if late := w.reports("acme", billing.StatusLate); len(late) != 0 {
			t.Fatalf("the canceled subscription's usage is listed late: %+v", late[0])
		}
		// Later usage bills on the new subscription, once; the canceled
		// one lists nothing more.
		w.now = w.now.Add(3 * time.Hour)
		w.traffic(3, 300, end.Add(10*time.Minute), w.now.Add(-time.Hour))
		settle(t, wk, 3)
		after := w.expectedFrom(m, "acme", end, w.now)
		if after == 0 {
			t.Fatal("no usage after the plan change")
		}
		if mode == billing.ModeUsageRecords {
			if old, cur := w.fake.ItemTotal(items["acme"]), w.fake.ItemTotal(item); old != before || cur != after {
				t.Fatalf("Stripe bills acme %d on the canceled item (had %d) and %d on the new one (backtest since the change: %d)", old, before, cur, after)
			}
		} else if got := w.billed(mode, items, "acme"); got != before+after {
			t.Fatalf("Stripe's meter has %d for acme, want %d before the cancellation plus %d since", got, before, after)
		}
		if n := len(w.reports("acme", billing.StatusNotBilled)); n != len(listed) {
			t.Fatalf("usage after the end was listed for the canceled subscription: %d listings, then %d", len(listed), n)
		}
		if got, want := w.billed(mode, items, "globex"), w.expected(m, "globex", w.now); got != want {
			t.Fatalf("Stripe bills globex %d, the backtest says %d", got, want)
		}
	})
}
