package stripestate

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// invoice is an invoice object as Stripe's webhooks carry it (the payment
// intent by id) in API version 2023-10-16; extra adds or overrides fields.
func invoice(status string, attempts int, extra string) string {
	return fmt.Sprintf(`{"id":"in_1","object":"invoice","customer":"cus_1","subscription":"sub_1","status":%q,
		"amount_due":1500,"amount_remaining":%d,"currency":"eur","created":1000,"due_date":null,
		"attempted":%v,"attempt_count":%d,"payment_intent":"pi_1",
		"hosted_invoice_url":"https://invoice.stripe.com/i/in_1"%s}`,
		status, map[bool]int{true: 0, false: 1500}[status == "paid"], attempts > 0, attempts, extra)
}

// permutations calls f with every order of n items.
func permutations(n int, f func(order []int)) {
	var rec func(order []int, used []bool)
	rec = func(order []int, used []bool) {
		if len(order) == n {
			f(order)
			return
		}
		for i := 0; i < n; i++ {
			if !used[i] {
				used[i] = true
				rec(append(order, i), used)
				used[i] = false
			}
		}
	}
	rec(nil, make([]bool, n))
}

// Every delivery order of an invoice's life, each also with every event
// delivered twice, folds to the same invoice: the one its last event
// shows, failed attempts kept until paid. Each life runs with its events
// a second apart and all in one second (Stripe's times are whole
// seconds: then only the stage orders them).
func TestInvoiceFoldOrders(t *testing.T) {
	type step struct{ typ, obj string }
	created := step{"invoice.created", invoice("draft", 0, "")}
	finalized := step{"invoice.finalized", invoice("open", 0, "")}
	failed := step{"invoice.payment_failed", invoice("open", 1, "")}
	failedAgain := step{"invoice.payment_failed", invoice("open", 2, "")}
	paid := step{"invoice.paid", invoice("paid", 2, "")}
	succeeded := step{"invoice.payment_succeeded", invoice("paid", 2, "")}
	voided := step{"invoice.voided", invoice("void", 1, "")}
	uncollectible := step{"invoice.marked_uncollectible", invoice("uncollectible", 2, "")}
	base := Invoice{ID: "in_1", Customer: "cus_1", Subscription: "sub_1", AmountDue: 1500, AmountRemaining: 1500, Currency: "eur",
		Created: 1000, HostedInvoiceURL: "https://invoice.stripe.com/i/in_1"}
	want := func(status string, attempts int, failed bool) Invoice {
		w := base
		w.Status, w.Attempted, w.AttemptCount, w.PaymentFailed = status, attempts > 0, attempts, failed
		if status == "paid" {
			w.AmountRemaining = 0
		}
		return w
	}
	for _, c := range []struct {
		name   string
		life   []step
		want   Invoice
		unpaid bool
	}{
		{"finalized, not yet charged", []step{created, finalized}, want("open", 0, false), false},
		{"a payment failed", []step{created, finalized, failed}, want("open", 1, true), true},
		{"failed, then paid", []step{created, finalized, failed, paid, succeeded}, want("paid", 2, false), false},
		{"failed twice, then uncollectible", []step{created, finalized, failed, failedAgain, uncollectible}, want("uncollectible", 2, true), true},
		{"uncollectible, then paid", []step{created, finalized, failed, uncollectible, paid}, want("paid", 2, false), false},
		{"failed, then voided", []step{created, finalized, failed, voided}, want("void", 1, true), false},
	} {
		for _, oneSecond := range []bool{false, true} {
			name := c.name
			if oneSecond {
				name += ", in one second"
			}
			t.Run(name, func(t *testing.T) {
				at := func(i int) int64 {
					if oneSecond {
						return 2000
					}
					return 2000 + int64(i)
				}
				w := c.want
				w.AsOf = at(len(c.life) - 1) // each life ends with its latest stage
				permutations(len(c.life), func(order []int) {
					for _, twice := range []bool{false, true} {
						s := New()
						var seq []string
						for _, i := range order {
							e := ev(fmt.Sprintf("evt_%d", i), c.life[i].typ, at(i), c.life[i].obj)
							s.Apply(e)
							seq = append(seq, c.life[i].typ)
							if twice {
								s.Apply(e)
							}
						}
						got := *s.Invoices["in_1"]
						if !reflect.DeepEqual(got, w) {
							t.Fatalf("order %s (twice: %v):\n got %+v\nwant %+v", strings.Join(seq, ", "), twice, got, w)
						}
						if u := got.Unpaid(time.Unix(1e9, 0)); u != c.unpaid {
							t.Fatalf("order %s: unpaid %v, want %v", strings.Join(seq, ", "), u, c.unpaid)
						}
					}
				})
			})
		}
	}
}

// A resync's snapshot is dated when it ran: an invoice it saw open is
// still paid by a webhook Stripe sent before (delivered late), and a
// payment failure sent before still marks it. A resync's snapshot of an
// open, attempted invoice marks a failed attempt when its expanded payment
// intent was refused, not while a bank debit is processing.
func TestInvoiceAfterResync(t *testing.T) {
	s := New()
	s.Apply(ev("resync_1", "meterd.resync.invoice", 5000, invoice("open", 0, "")))
	s.Apply(ev("evt_f", "invoice.payment_failed", 4000, invoice("open", 1, "")))
	if inv := s.Invoices["in_1"]; inv.AsOf != 5000 || inv.AttemptCount != 0 || !inv.PaymentFailed || !inv.Unpaid(time.Unix(6000, 0)) {
		t.Fatalf("a failure before the resync: %+v", inv)
	}
	s.Apply(ev("evt_p", "invoice.paid", 4500, invoice("paid", 1, "")))
	if inv := s.Invoices["in_1"]; inv.Status != "paid" || inv.PaymentFailed || inv.Unpaid(time.Unix(6000, 0)) {
		t.Fatalf("paid before the resync: %+v", inv)
	}
	for status, failed := range map[string]bool{"requires_payment_method": true, "requires_action": true, "processing": false, "succeeded": false} {
		s := New()
		s.Apply(ev("resync_1", "meterd.resync.invoice", 5000, invoice("open", 1, `,"payment_intent":{"id":"pi_1","status":"`+status+`"}`)))
		if inv := s.Invoices["in_1"]; inv.PaymentFailed != failed {
			t.Errorf("a resync's open invoice whose intent is %s: payment failed %v, want %v", status, inv.PaymentFailed, failed)
		}
	}
	// A webhook's open, attempted snapshot (the intent by id) is no failure.
	s = New()
	s.Apply(ev("evt_u", "invoice.updated", 5000, invoice("open", 1, "")))
	if s.Invoices["in_1"].PaymentFailed {
		t.Fatal("an attempted invoice without its intent's status counts as failed")
	}
}

// API versions from 2025-03-31 name the subscription under parent; a
// deleted draft (its event, or Stripe's deleted object, which holds only
// the id) keeps what was known of it; amount_remaining defaults to
// amount_due; an unknown status never replaces a known one.
func TestInvoiceShapes(t *testing.T) {
	s := New()
	s.Apply(ev("e1", "invoice.created", 100, `{"id":"in_b","object":"invoice","customer":{"id":"cus_2"},"status":"draft",
		"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_9"}},"amount_due":700,"currency":"usd","created":90}`))
	inv := s.Invoices["in_b"]
	if inv.Subscription != "sub_9" || inv.Customer != "cus_2" || inv.AmountRemaining != 700 {
		t.Fatalf("a basil invoice: %+v", inv)
	}
	s.Apply(ev("e2", "invoice.updated", 110, `{"id":"in_b","object":"invoice","status":"sent_to_mars"}`))
	s.Apply(ev("resync_2", "meterd.resync.invoice", 120, `{"id":"in_b","object":"invoice","deleted":true}`))
	if inv := s.Invoices["in_b"]; inv.Status != "deleted" || inv.Customer != "cus_2" || inv.AmountDue != 700 || inv.AsOf != 120 {
		t.Fatalf("a deleted draft: %+v", inv)
	}
	s.Apply(ev("e3", "invoice.deleted", 130, `{"id":"in_c","object":"invoice","customer":"cus_2","status":"draft"}`))
	if inv := s.Invoices["in_c"]; inv.Status != "deleted" || inv.Customer != "cus_2" {
		t.Fatalf("invoice.deleted: %+v", inv)
	}
	if s.Events != 3 || s.Ignored != 1 {
		t.Fatalf("events %d, ignored %d; want 3 and 1", s.Events, s.Ignored)
	}
}

// Unpaid: open with a failed attempt or a passed due date, or
// uncollectible; the summary sums what is still owed in the oldest
// invoice's currency and names the invoice that became due first.
func TestUnpaidInvoices(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	day := int64(24 * 3600)
	at := now.Unix()
	for _, c := range []struct {
		name   string
		inv    Invoice
		unpaid bool
	}{
		{"open, due date passed, never attempted", Invoice{Status: "open", DueDate: at - 1}, true},
		{"open, due now", Invoice{Status: "open", DueDate: at}, false},
		{"open, due tomorrow", Invoice{Status: "open", DueDate: at + day}, false},
		{"open, charged at once, not yet attempted", Invoice{Status: "open", Created: at - 5*day}, false},
		{"open, attempt failed", Invoice{Status: "open", Attempted: true, AttemptCount: 1, PaymentFailed: true}, true},
		{"open, attempt failed, due tomorrow", Invoice{Status: "open", DueDate: at + day, PaymentFailed: true}, true},
		{"uncollectible", Invoice{Status: "uncollectible"}, true},
		{"paid", Invoice{Status: "paid", DueDate: at - day}, false},
		{"void after a failure", Invoice{Status: "void", PaymentFailed: true, DueDate: at - day}, false},
		{"draft past its due date", Invoice{Status: "draft", DueDate: at - day}, false},
		{"deleted", Invoice{Status: "deleted", DueDate: at - day}, false},
	} {
		if got := c.inv.Unpaid(now); got != c.unpaid {
			t.Errorf("%s: unpaid %v, want %v", c.name, got, c.unpaid)
		}
	}
	s := New()
	add := func(inv Invoice) { s.Invoices[inv.ID] = &inv }
	// cus_1: a failed charge 40 days old, a send_invoice invoice created 60
	// days ago but due 10 days ago (became due later), one paid, one in
	// another currency.
	add(Invoice{ID: "in_a", Customer: "cus_1", Status: "open", PaymentFailed: true, Created: at - 40*day - 3600,
		AmountDue: 1000, AmountRemaining: 1000, Currency: "eur", HostedInvoiceURL: "https://pay/a"})
	add(Invoice{ID: "in_b", Customer: "cus_1", Status: "open", Created: at - 60*day, DueDate: at - 10*day,
		AmountDue: 900, AmountRemaining: 400, Currency: "eur", HostedInvoiceURL: "https://pay/b"})
	add(Invoice{ID: "in_c", Customer: "cus_1", Status: "paid", Created: at - 90*day, Currency: "eur", AmountDue: 5})
	add(Invoice{ID: "in_d", Customer: "cus_1", Status: "uncollectible", Created: at - 2*day, AmountRemaining: 300, Currency: "usd"})
	// cus_2: nothing unpaid; cus_3: due an hour ago.
	add(Invoice{ID: "in_e", Customer: "cus_2", Status: "open", Created: at - 90*day, AmountRemaining: 50})
	add(Invoice{ID: "in_f", Customer: "cus_3", Status: "open", DueDate: at - 3600, AmountRemaining: 20, Currency: "eur"})
	got := s.UnpaidInvoices(now)
	want := map[string]InvoiceSummary{
		"cus_1": {Unpaid: 3, AmountDue: 1400, Currency: "eur", OtherAmountsDue: map[string]int64{"usd": 300},
			OldestUnpaidDays: 40, HostedInvoiceURL: "https://pay/a", OldestInvoice: "in_a"},
		"cus_3": {Unpaid: 1, AmountDue: 20, Currency: "eur", OldestUnpaidDays: 0, OldestInvoice: "in_f"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unpaid invoices:\n got %+v\nwant %+v", got, want)
	}
}
