package billing_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/storage"
)

// 'meterd billing resync' on an empty store rebuilds from Stripe's list
// endpoints the same customers and subscriptions (statuses, periods,
// items and prices, hence the same billed customers) that the signed
// webhooks built on another store.
func TestResyncRebuildsWebhookState(t *testing.T) {
	bin := buildMeterd(t)
	for name, openStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st, _ := openStore(t)
			w := newWorldClock(t, st, billing.ModeUsageRecords, true)
			price := w.fake.AddLegacyPrice()
			items := w.customers(price)
			other := w.fake.AddMeter("api_tokens")
			w.fake.Customer("cus_9", map[string]string{"company_id": "hooli"}) // its creation is never delivered
			subs := map[string]string{}
			for _, co := range []string{"acme", "globex"} {
				subs[co] = subscriptionOf(t, w, items[co])
			}
			for co, status := range map[string]string{"acme": "past_due", "globex": "canceled"} {
				if s := w.webhook(w.fake.SetStatus(subs[co], status), secret); s != 200 {
					t.Fatalf("status webhook: %d", s)
				}
			}
			for _, ev := range [][]byte{
				w.fake.Customer("cus_9", map[string]string{"company_id": "hooli", "plan": "pro"}),
			} {
				if s := w.webhook(ev, secret); s != 200 {
					t.Fatalf("webhook: %d", s)
				}
			}
			_, _, sev := w.fake.Subscription("cus_9", other, w.start, w.start.AddDate(0, 1, 0), map[string]string{"tenant": "h-1"})
			if s := w.webhook(sev, secret); s != 200 {
				t.Fatalf("webhook: %d", s)
			}
			fromWebhooks := foldedState(t, w.st)

			fresh, dsn := openStore(t)
			if _, err := billing.SaveSettings(context.Background(), fresh, nil, billing.Settings{APIKey: "sk_test_fake0000key1234",
				Mode: billing.ModeUsageRecords, APIBase: w.fake.URL, CustomerIDSource: stripestate.DefaultSource}, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := fresh.Close(); err != nil {
				t.Fatal(err)
			}
			out := runMeterd(t, bin, "billing", "resync", "--store", dsn)
			if !strings.Contains(out, "recorded 4 customers, 4 subscriptions and 0 invoices") {
				t.Fatalf("resync: %s", out)
			}
			fresh = open(t, dsn)
			fromResync := foldedState(t, fresh)
			a, b := comparable(fromWebhooks), comparable(fromResync)
			if a != b {
				t.Fatalf("state from webhooks:\n%s\nfrom the resync:\n%s", a, b)
			}
			for _, src := range []string{"metadata.company_id", "metadata.plan", "customer_id", "subscription.metadata.tenant"} {
				for id, sub := range fromWebhooks.Subscriptions {
					if x, y := fromWebhooks.BillingKey(sub, src), fromResync.BillingKey(fromResync.Subscriptions[id], src); x != y {
						t.Fatalf("%s bills %q from webhooks, %q after the resync (%s)", id, x, y, src)
					}
				}
			}
		})
	}
}

func subscriptionOf(t *testing.T, w *world, item string) string {
	t.Helper()
	st := foldedState(t, w.st)
	for _, s := range st.Subscriptions {
		for _, it := range s.Items {
			if it.ID == item {
				return s.ID
			}
		}
	}
	t.Fatalf("no subscription holds %s", item)
	return ""
}

func foldedState(t *testing.T, st storage.Store) *stripestate.State {
	t.Helper()
	evs, err := st.JournalEntries(context.Background(), storage.JournalQuery{Stream: storage.StreamStripeEvents})
	if err != nil {
		t.Fatal(err)
	}
	return stripestate.Fold(evs)
}

// comparable is the state without the event times and counts (a resync's
// snapshots are dated when it ran), empty metadata as none.
func comparable(s *stripestate.State) string {
	type cus struct {
		Metadata map[string]string
		Deleted  bool
	}
	type sub struct {
		Customer, Status string
		Metadata         map[string]string
		Current          stripestate.Period
		Items            []stripestate.Item
	}
	cs, ss := map[string]cus{}, map[string]sub{}
	nonEmpty := func(m map[string]string) map[string]string {
		if len(m) == 0 {
			return nil
		}
		return m
	}
	for id, c := range s.Customers {
		cs[id] = cus{nonEmpty(c.Metadata), c.Deleted}
	}
	for id, x := range s.Subscriptions {
		ss[id] = sub{x.Customer, x.Status, nonEmpty(x.Metadata), x.Current, x.Items}
	}
	b, _ := json.MarshalIndent(map[string]any{"customers": cs, "subscriptions": ss}, "", " ")
	return string(b)
}
