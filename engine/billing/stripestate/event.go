// Package stripestate folds Stripe's customer and subscription events
// (webhook deliveries and resyncs, kept append-only in the store's
// journal) into the state the billing worker needs: which meterd customer
// a Stripe customer is, and each subscription's status, current period and
// items with their prices.
//
// Stripe does not deliver events in order and sometimes twice. Each object
// snapshot carries the time of the event that holds it (Stripe's event
// "created", in seconds); a snapshot older than the one already applied is
// ignored, so a late, older event never overwrites newer state. Within one
// second Stripe's order is unknown: the later delivery wins, except that a
// deleted customer or an ended subscription stays ended.
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

// Object is the union of the customer and subscription fields used.
type Object struct {
	ID       string            `json:"id"`
	Object   string            `json:"object"` // "customer" or "subscription"
	Deleted  bool              `json:"deleted"`
	Metadata map[string]string `json:"metadata"`
	// Subscriptions only.
	Customer           Ref    `json:"customer"`
	Status             string `json:"status"`
	EndedAt            int64  `json:"ended_at"`
	CanceledAt         int64  `json:"canceled_at"`
	CurrentPeriodStart int64  `json:"current_period_start"`
	CurrentPeriodEnd   int64  `json:"current_period_end"`
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
