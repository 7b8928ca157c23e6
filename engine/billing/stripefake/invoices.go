package stripefake

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// invoiceStatuses are the statuses GET /v1/invoices filters by.
var invoiceStatuses = map[string]bool{"draft": true, "open": true, "paid": true, "uncollectible": true, "void": true}

// Invoice creates a draft invoice of customer (for subscription, "" for
// none) of amount (minor units) in currency and returns its id and its
// invoice.created event. A non-zero due date makes it a send_invoice
// invoice; without one Stripe charges it automatically.
func (f *Fake) Invoice(customer, subscription string, amount int64, currency string, due time.Time) (id string, event []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id = f.id("in")
	inv := map[string]any{"id": id, "object": "invoice", "customer": customer, "subscription": nil, "status": "draft",
		"amount_due": amount, "amount_paid": int64(0), "amount_remaining": amount, "currency": currency,
		"created": f.now().Unix(), "due_date": nil, "collection_method": "charge_automatically",
		"attempted": false, "attempt_count": 0, "paid": false, "payment_intent": nil, "hosted_invoice_url": nil,
		"status_transitions": map[string]any{"finalized_at": nil, "paid_at": nil, "voided_at": nil, "marked_uncollectible_at": nil}}
	if subscription != "" {
		inv["subscription"] = subscription
	}
	if !due.IsZero() {
		inv["due_date"], inv["collection_method"] = due.Unix(), "send_invoice"
	}
	f.invoices[id] = inv
	return id, f.event("invoice.created", inv)
}

// FinalizeInvoice opens a draft (its hosted page and payment intent
// appear) and returns the invoice.finalized event.
func (f *Fake) FinalizeInvoice(id string) []byte {
	return f.change(id, []string{"draft"}, func(inv map[string]any) {
		pi := f.id("pi")
		f.intents[pi] = map[string]any{"id": pi, "object": "payment_intent", "status": "requires_payment_method",
			"amount": inv["amount_due"], "currency": inv["currency"], "invoice": id}
		inv["payment_intent"] = pi
		inv["hosted_invoice_url"] = "https://invoice.stripe.com/i/acct_fake/" + id
		f.move(inv, "open", "finalized_at", "")
	}, "invoice.finalized")[0]
}

// FailInvoicePayment makes a payment attempt on an open invoice that the
// bank declines, and returns the invoice.payment_failed event.
func (f *Fake) FailInvoicePayment(id string) []byte {
	return f.change(id, []string{"open"}, func(inv map[string]any) {
		inv["attempted"], inv["attempt_count"] = true, inv["attempt_count"].(int)+1
		f.move(inv, "open", "", "requires_payment_method")
	}, "invoice.payment_failed")[0]
}

// PayInvoice pays an open or uncollectible invoice in full and returns
// its invoice.paid and invoice.payment_succeeded events.
func (f *Fake) PayInvoice(id string) [][]byte {
	return f.change(id, []string{"open", "uncollectible"}, func(inv map[string]any) {
		inv["paid"], inv["attempted"] = true, true
		inv["amount_paid"], inv["amount_remaining"] = inv["amount_due"], int64(0)
		f.move(inv, "paid", "paid_at", "succeeded")
	}, "invoice.paid", "invoice.payment_succeeded")
}

// VoidInvoice voids an open or uncollectible invoice and returns the
// invoice.voided event.
func (f *Fake) VoidInvoice(id string) []byte {
	return f.change(id, []string{"open", "uncollectible"}, func(inv map[string]any) {
		f.move(inv, "void", "voided_at", "canceled")
	}, "invoice.voided")[0]
}

// MarkInvoiceUncollectible marks an open invoice uncollectible and
// returns the invoice.marked_uncollectible event.
func (f *Fake) MarkInvoiceUncollectible(id string) []byte {
	return f.change(id, []string{"open"}, func(inv map[string]any) {
		f.move(inv, "uncollectible", "marked_uncollectible_at", "")
	}, "invoice.marked_uncollectible")[0]
}

// DeleteInvoice deletes a draft (Stripe answers 404 for it from then on)
// and returns the invoice.deleted event.
func (f *Fake) DeleteInvoice(id string) []byte {
	return f.change(id, []string{"draft"}, func(map[string]any) { delete(f.invoices, id) }, "invoice.deleted")[0]
}

// change applies fn, under the lock, to an invoice in one of the statuses
// Stripe allows the change from (anything else is a mistake in the test),
// and returns its events of the given types.
func (f *Fake) change(id string, from []string, fn func(inv map[string]any), types ...string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv, found := f.invoices[id]
	if !found {
		panic("stripefake: no invoice " + id)
	}
	if !slices.Contains(from, inv["status"].(string)) {
		panic("stripefake: invoice " + id + " is " + inv["status"].(string) + ", not " + strings.Join(from, " or "))
	}
	fn(inv)
	var evs [][]byte
	for _, typ := range types {
		evs = append(evs, f.event(typ, inv))
	}
	return evs
}

// move sets an invoice's status, the time of its status transition (when
// named) and its payment intent's status (when given).
func (f *Fake) move(inv map[string]any, status, transition, intent string) {
	inv["status"] = status
	if transition != "" {
		inv["status_transitions"].(map[string]any)[transition] = f.now().Unix()
	}
	if intent != "" {
		f.intents[inv["payment_intent"].(string)]["status"] = intent
	}
}

// listInvoices is GET /v1/invoices: filtered by status and customer,
// paginated; expand[]=data.payment_intent expands each payment intent.
func (f *Fake) listInvoices(form url.Values) (int, []byte) {
	status := form.Get("status")
	if status != "" && !invoiceStatuses[status] {
		return 400, errBody("invalid_request_error", "Invalid status: must be one of draft, open, paid, uncollectible, or void", "status")
	}
	matched := map[string]map[string]any{}
	for id, inv := range f.invoices {
		if (status == "" || inv["status"] == status) && (form.Get("customer") == "" || inv["customer"] == form.Get("customer")) {
			matched[id] = f.expandIntent(inv, expanded(form, "data.payment_intent"))
		}
	}
	return page(matched, form)
}

// getInvoice is GET /v1/invoices/{id}.
func (f *Fake) getInvoice(id string, form url.Values) (int, []byte) {
	inv, found := f.invoices[id]
	if !found {
		return 404, errBodyCode("invalid_request_error", "resource_missing", "No such invoice: '"+id+"'", "id")
	}
	return ok(f.expandIntent(inv, expanded(form, "payment_intent")))
}

func (f *Fake) expandIntent(inv map[string]any, expand bool) map[string]any {
	pi, _ := inv["payment_intent"].(string)
	if !expand || pi == "" {
		return inv
	}
	out := make(map[string]any, len(inv))
	for k, v := range inv {
		out[k] = v
	}
	out["payment_intent"] = f.intents[pi]
	return out
}

// expanded reports whether a request's expand[] (expand[0]=..., as
// stripe-go sends it) names field.
func expanded(form url.Values, field string) bool {
	for k, vs := range form {
		if strings.HasPrefix(k, "expand[") {
			for _, v := range vs {
				if v == field {
					return true
				}
			}
		}
	}
	return false
}
