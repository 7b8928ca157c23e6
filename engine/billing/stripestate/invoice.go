package stripestate

import (
	"sort"
	"time"
)

// Invoice is a Stripe invoice as folded from its events.
type Invoice struct {
	ID           string `json:"id"`
	Customer     string `json:"customer"`
	Subscription string `json:"subscription"`
	// Status is Stripe's: draft, open, paid, void, uncollectible; or
	// deleted (a deleted draft, or one a resync no longer finds).
	Status          string `json:"status"`
	AmountDue       int64  `json:"amount_due"`       // minor units
	AmountRemaining int64  `json:"amount_remaining"` // amount_due less what was paid
	Currency        string `json:"currency"`
	Created         int64  `json:"created"`  // unix s
	DueDate         int64  `json:"due_date"` // unix s; 0: none (charge_automatically)
	Attempted       bool   `json:"attempted"`
	AttemptCount    int    `json:"attempt_count"`
	// PaymentFailed says a payment attempt failed and none succeeded: an
	// invoice.payment_failed was folded (whatever its age), or a resync
	// saw the attempt's payment intent refused (see failedAttempt).
	PaymentFailed    bool   `json:"payment_failed"`
	HostedInvoiceURL string `json:"hosted_invoice_url"`
	AsOf             int64  `json:"as_of"` // the applied snapshot's event time
}

// Unpaid reports whether the invoice is owed and overdue: open with a
// failed payment attempt or a passed due date, or marked uncollectible.
func (inv *Invoice) Unpaid(now time.Time) bool {
	switch inv.Status {
	case "uncollectible":
		return true
	case "open":
		return inv.PaymentFailed || inv.DueDate > 0 && now.Unix() > inv.DueDate
	}
	return false
}

// DueSince is when the invoice became due: its due date when it has one
// (send_invoice), else its creation (charge_automatically invoices are
// charged at once, about an hour after creation).
func (inv *Invoice) DueSince() time.Time {
	if inv.DueDate > 0 {
		return time.Unix(inv.DueDate, 0).UTC()
	}
	return time.Unix(inv.Created, 0).UTC()
}

// InvoiceSummary is what a customer owes on its unpaid invoices.
type InvoiceSummary struct {
	Unpaid int `json:"unpaid"` // unpaid invoices
	// AmountDue is the sum of their amount_remaining (what is still owed
	// after partial payments) in Currency, the oldest one's currency.
	AmountDue int64  `json:"amount_due"`
	Currency  string `json:"currency"`
	// OtherAmountsDue holds what is owed in other currencies, by currency
	// (rare: a customer's invoices usually share one currency).
	OtherAmountsDue map[string]int64 `json:"other_amounts_due,omitempty"`
	// OldestUnpaidDays is the whole days since the oldest unpaid invoice
	// became due (DueSince), 0 for less than a day.
	OldestUnpaidDays int    `json:"oldest_unpaid_days"`
	HostedInvoiceURL string `json:"hosted_invoice_url"` // the oldest unpaid invoice's
	OldestInvoice    string `json:"oldest_invoice"`     // its id
}

// UnpaidInvoices summarises the unpaid invoices at now by Stripe customer
// id; customers without one are absent.
func (s *State) UnpaidInvoices(now time.Time) map[string]InvoiceSummary {
	byCustomer := map[string][]*Invoice{}
	for _, inv := range s.Invoices {
		if inv.Customer != "" && inv.Unpaid(now) {
			byCustomer[inv.Customer] = append(byCustomer[inv.Customer], inv)
		}
	}
	out := make(map[string]InvoiceSummary, len(byCustomer))
	for cus, invs := range byCustomer {
		sort.Slice(invs, func(i, j int) bool {
			a, b := invs[i], invs[j]
			if !a.DueSince().Equal(b.DueSince()) {
				return a.DueSince().Before(b.DueSince())
			}
			return a.ID < b.ID
		})
		oldest := invs[0]
		sum := InvoiceSummary{Unpaid: len(invs), Currency: oldest.Currency, HostedInvoiceURL: oldest.HostedInvoiceURL,
			OldestInvoice: oldest.ID, OldestUnpaidDays: max(0, int(now.Sub(oldest.DueSince())/(24*time.Hour)))}
		for _, inv := range invs {
			if inv.Currency == sum.Currency {
				sum.AmountDue += inv.AmountRemaining
				continue
			}
			if sum.OtherAmountsDue == nil {
				sum.OtherAmountsDue = map[string]int64{}
			}
			sum.OtherAmountsDue[inv.Currency] += inv.AmountRemaining
		}
		out[cus] = sum
	}
	return out
}

// stage orders an invoice's statuses along its life: Stripe moves an
// invoice only forward (draft, open, uncollectible, then paid or void;
// a draft may be deleted), so a later stage is newer whatever the time
// of the event that carries it.
func stage(status string) int {
	switch status {
	case "draft":
		return 0
	case "open":
		return 1
	case "uncollectible":
		return 2
	case "paid", "void", "deleted":
		return 3
	}
	return -1 // unknown: never replaces a known status
}

// failedIntent lists the payment intent statuses of an attempt that did
// not go through (declined, or waiting for the customer to authenticate);
// processing (a bank debit under way) is not a failure.
func failedIntent(status string) bool {
	return status == "requires_payment_method" || status == "requires_action"
}

// failedAttempt reports whether an event shows a failed payment attempt:
// an invoice.payment_failed, or a snapshot of an open, attempted invoice
// whose expanded payment intent was refused (a resync lists invoices so;
// webhooks carry only the intent's id).
func failedAttempt(e Event) bool {
	o := e.Data.Object
	return e.Type == "invoice.payment_failed" || o.Status == "open" && o.Attempted && failedIntent(o.PaymentIntent.Status)
}

func invoiceOf(e Event) *Invoice {
	o := e.Data.Object
	inv := &Invoice{ID: o.ID, Customer: string(o.Customer), Subscription: string(o.Subscription), Status: o.Status,
		AmountDue: o.AmountDue, AmountRemaining: o.AmountDue, Currency: o.Currency, Created: o.Created, DueDate: o.DueDate,
		Attempted: o.Attempted, AttemptCount: o.AttemptCount, HostedInvoiceURL: o.HostedInvoiceURL, AsOf: e.Created}
	if o.AmountRemaining != nil {
		inv.AmountRemaining = *o.AmountRemaining
	}
	if inv.Subscription == "" { // API versions from 2025-03-31 keep it under parent
		inv.Subscription = string(o.Parent.SubscriptionDetails.Subscription)
	}
	return inv
}

// applyInvoice folds an invoice event; it reports whether it changed the
// state. A snapshot replaces the invoice when it shows a later stage, or
// the same stage at a later time (in the same second: as many attempts or
// more; else the later delivery wins). A failed attempt is a fact however
// old its snapshot: it marks the invoice until it is paid.
func (s *State) applyInvoice(e Event) bool {
	o := e.Data.Object
	prev := s.Invoices[o.ID]
	n := invoiceOf(e)
	if o.Deleted || e.Type == "invoice.deleted" {
		if prev != nil { // Stripe's deleted object holds only its id
			kept := *prev
			n = &kept
		}
		n.Status, n.AsOf = "deleted", e.Created
	}
	apply := prev == nil
	if prev != nil {
		ns, ps := stage(n.Status), stage(prev.Status)
		apply = ns > ps || ns == ps && (e.Created > prev.AsOf || e.Created == prev.AsOf && n.AttemptCount >= prev.AttemptCount)
	}
	cur := prev
	if apply {
		if prev != nil {
			n.PaymentFailed = prev.PaymentFailed
		}
		s.Invoices[o.ID], cur = n, n
	}
	failed := cur.PaymentFailed
	switch {
	case cur.Status == "paid":
		cur.PaymentFailed = false
	case failedAttempt(e):
		cur.PaymentFailed = true
	}
	return apply || cur.PaymentFailed != failed
}
