package billing_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/storage"
)

// A resync rebuilds the invoice state the webhooks would have built: on a
// store that missed some webhooks (a failure, a payment, a void, a mark
// uncollectible, a deleted draft, a whole invoice), and on an empty store,
// the unpaid invoices per customer equal those of a store that received
// every webhook; on the store that missed some, so does every invoice's
// status. Stripe is the stateful fake, its lists paginated.
func TestResyncRebuildsInvoiceState(t *testing.T) {
	for name, openStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			all, _ := openStore(t)
			missed, _ := openStore(t)
			w := newWorld(t, all, billing.ModeUsageRecords)
			m := newWorld(t, missed, billing.ModeUsageRecords)
			m.fake = w.fake // one Stripe, two meterd stores
			settings, err := billing.LoadSettings(context.Background(), all, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := billing.SaveSettings(context.Background(), missed, nil, *settings, time.Now()); err != nil {
				t.Fatal(err)
			}
			w.now = w.now.Add(-60 * 24 * time.Hour)
			f := w.fake
			deliver := func(toMissed bool, evs ...[]byte) {
				t.Helper()
				for _, ev := range evs {
					if s := w.webhook(ev, secret); s != 200 {
						t.Fatalf("webhook: %d", s)
					}
					if toMissed && m.webhook(ev, secret) != 200 {
						t.Fatal("webhook refused")
					}
				}
			}
			day := func() { w.now = w.now.Add(24 * time.Hour) }
			life := func(customer string, due time.Time, steps ...func(id string) [][]byte) string {
				id, created := f.Invoice(customer, "", 1000, "usd", due)
				deliver(true, created)
				for _, s := range steps {
					day()
					for _, ev := range s(id) {
						deliver(true, ev)
					}
				}
				return id
			}
			one := func(fn func(string) []byte) func(string) [][]byte {
				return func(id string) [][]byte { return [][]byte{fn(id)} }
			}
			lost := func(fn func(string) []byte) func(string) [][]byte { // the change happens; its webhook is missed
				return func(id string) [][]byte { deliver(false, fn(id)); return nil }
			}
			finalize, fail := one(f.FinalizeInvoice), one(f.FailInvoicePayment)
			// cus_1: a failure missed; a failure then a payment missed.
			life("cus_1", time.Time{}, finalize, lost(f.FailInvoicePayment))
			life("cus_1", time.Time{}, finalize, fail, func(id string) [][]byte { deliver(false, f.PayInvoice(id)...); return nil })
			// cus_2: a send_invoice invoice past due whose webhooks were all
			// missed; a failure then a mark uncollectible missed.
			id, _ := f.Invoice("cus_2", "", 3000, "usd", w.now.Add(5*24*time.Hour))
			deliver(false, f.FinalizeInvoice(id))
			life("cus_2", time.Time{}, finalize, fail, fail, lost(f.MarkInvoiceUncollectible))
			// cus_3: a void missed, a deleted draft missed, one not yet due;
			// and 150 paid invoices, to page through.
			life("cus_3", time.Time{}, finalize, fail, lost(f.VoidInvoice))
			life("cus_3", time.Time{}, lost(f.DeleteInvoice))
			life("cus_3", w.now.Add(90*24*time.Hour), finalize)
			for range 150 {
				id, _ := f.Invoice("cus_4", "", 10, "usd", time.Time{})
				deliver(false, f.FinalizeInvoice(id))
			}
			for range 30 {
				day()
			}
			now := w.now
			truth := foldedState(t, all)
			want := truth.UnpaidInvoices(now)
			if len(want) != 2 || want["cus_1"].Unpaid != 1 || want["cus_2"].Unpaid != 2 || want["cus_2"].AmountDue != 4000 {
				t.Fatalf("the webhooks' unpaid invoices: %+v", want)
			}
			if got := foldedState(t, missed).UnpaidInvoices(now); reflect.DeepEqual(got, want) {
				t.Fatal("missing webhooks changed nothing: the test proves nothing")
			}
			// 153 open and 1 uncollectible invoices are listed; the store that
			// missed webhooks reads the paid, void and deleted ones by id.
			resync := func(name string, st storage.Store, invoices int) *stripestate.State {
				t.Helper()
				n, err := stripestate.Resync(context.Background(), billing.NewAPI(*settings, 0), st, now)
				if err != nil || n.Invoices != invoices {
					t.Fatalf("resync %s: %+v, %v; want %d invoices", name, n, err, invoices)
				}
				return foldedState(t, st)
			}
			statuses := func(s *stripestate.State) map[string]string {
				out := map[string]string{}
				for id, inv := range s.Invoices {
					out[id] = inv.Status
					if inv.PaymentFailed {
						out[id] += ", payment failed"
					}
				}
				return out
			}
			after := resync("the store that missed webhooks", missed, 157)
			if got := after.UnpaidInvoices(now); !reflect.DeepEqual(got, want) {
				t.Fatalf("after a resync:\n got %+v\nwant %+v", got, want)
			}
			if got, want := statuses(after), statuses(truth); !reflect.DeepEqual(got, want) {
				t.Fatalf("invoices after a resync:\n got %v\nwant %v", got, want)
			}
			fresh, _ := openStore(t)
			if got := resync("an empty store", fresh, 154).UnpaidInvoices(now); !reflect.DeepEqual(got, want) {
				t.Fatalf("a resync on an empty store:\n got %+v\nwant %+v", got, want)
			}
			pages := 0
			for _, r := range f.Requests() {
				if r.Path == "/v1/invoices" && r.Form.Get("status") == "open" && r.Form.Get("starting_after") != "" {
					pages++
				}
			}
			if pages != 2 { // per resync: 153 open invoices are two pages of 100
				t.Fatalf("%d further pages of open invoices read, want 2", pages)
			}
		})
	}
}
