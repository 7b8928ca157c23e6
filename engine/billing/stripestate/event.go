// Package stripestate folds Stripe's customer, subscription and invoice
// events (webhook deliveries and resyncs, kept append-only in the store's
// journal) into the state the billing worker needs: which meterd customer
// a Stripe customer is, and each subscription's status, current period and
// items with their prices; and, for governance, each customer's unpaid
// invoices.
//
// Stripe does not deliver events in order and sometimes twice. Each object
// snapshot carries the time of the event that holds it (Stripe's event
// "created", in seconds); a snapshot older than the one already applied is
// ignored, so a late, older event never overwrites newer state. Within one
// second Stripe's order is unknown: the later delivery wins, except that a
// deleted customer or an ended subscription stays ended. Invoices only move
// forward (draft, open, uncollectible, paid or void), so a snapshot of a
// later stage wins whatever its time (see applyInvoice).
//
// Only the few fields used are decoded, so events of any Stripe API
// version fold the same way (see docs/billing.md).
package stripestate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Event is the part of a Stripe event meterd reads.
type Event struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Data       struct {
		Object Object `json:"object"`
	} `json:"data"`
}

// Object is the union of the customer, subscription and invoice fields
// used.
type Object struct {
	ID       string            `json:"id"`
	Object   string            `json:"object"` // "customer", "subscription" or "invoice"
	Deleted  bool              `json:"deleted"`
	Metadata map[string]string `json:"metadata"`
	// Subscriptions and invoices.
	Customer Ref    `json:"customer"`
	Status   string `json:"status"`
	Created  int64  `json:"created"`
	// Subscriptions only.
	EndedAt            int64 `json:"ended_at"`
	CanceledAt         int64 `json:"canceled_at"`
	CurrentPeriodStart int64 `json:"current_period_start"`
	CurrentPeriodEnd   int64 `json:"current_period_end"`
	Items              struct {
		Data []struct {
			ID    string `json:"id"`
			Price struct {
				ID string `json:"id"`
			} `json:"price"`
			// API versions from 2025-03-31 keep the period on the item.
			CurrentPeriodStart int64 `json:"current_period_start"`
			CurrentPeriodEnd   int64 `json:"current_period_end"`
		} `json:"data"`
	} `json:"items"`
	// Invoices only.
	Subscription Ref `json:"subscription"` // up to API 2025-02
	Parent       struct {
		SubscriptionDetails struct {
			Subscription Ref `json:"subscription"`
		} `json:"subscription_details"`
	} `json:"parent"` // from API 2025-03-31
	AmountDue        int64     `json:"amount_due"`
	AmountRemaining  *int64    `json:"amount_remaining"` // absent: amount_due
	Currency         string    `json:"currency"`
	DueDate          int64     `json:"due_date"`
	Attempted        bool      `json:"attempted"`
	AttemptCount     int       `json:"attempt_count"`
	HostedInvoiceURL string    `json:"hosted_invoice_url"`
	PaymentIntent    IntentRef `json:"payment_intent"`
}

// Ref is an expandable reference: Stripe sends an id string, or the object
// when expanded.
type Ref string

// UnmarshalJSON accepts "cus_1" and {"id": "cus_1", ...}.
func (r *Ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*r = Ref(o.ID)
		return nil
	}
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s != nil {
		*r = Ref(*s)
	}
	return nil
}

// IntentRef is an invoice's payment intent: its id, and its status when
// expanded (a resync expands it; webhooks send the id alone).
type IntentRef struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// UnmarshalJSON accepts "pi_1" and {"id": "pi_1", "status": ...}.
func (r *IntentRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		type plain IntentRef
		return json.Unmarshal(b, (*plain)(r))
	}
	var id Ref
	err := id.UnmarshalJSON(b)
	r.ID = string(id)
	return err
}

// Decode reads an event's JSON. It needs an id, a type and a creation
// time; the object may be of any kind (other kinds are ignored by Apply).
func Decode(body []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("stripe event: %w", err)
	}
	if e.ID == "" || e.Type == "" || e.Created <= 0 {
		return e, errors.New("stripe event: id, type and created are required")
	}
	return e, nil
}
