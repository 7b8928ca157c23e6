package stripestate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/meterd/meterd/storage"
)

// Resync rebuilds the state from Stripe's list endpoints: every customer
// and every subscription (any status) is appended to the event journal as
// a snapshot dated now, so it folds like an event created now: newer than
// anything delivered before, older than anything Stripe sends after.
// It returns the number of objects recorded.
func Resync(ctx context.Context, api *client.API, j storage.Journal, now time.Time) (int, error) {
	n := 0
	record := func(kind, id string, obj any) error {
		raw, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("resync_%d_%s", now.UnixNano(), id)
		body, _ := json.Marshal(map[string]any{
			"id": key, "type": "meterd.resync." + kind, "created": now.Unix(),
			"data": map[string]json.RawMessage{"object": raw},
		})
		err = j.AppendJournal(ctx, storage.JournalEntry{Stream: storage.StreamStripeEvents, Key: key, At: now, Body: string(body)})
		if err == storage.ErrConflict {
			err = nil
		}
		n++
		return err
	}
	cp := &stripe.CustomerListParams{}
	cp.Context = ctx
	cp.Limit = stripe.Int64(100)
	cit := api.Customers.List(cp)
	for cit.Next() {
		c := cit.Customer()
		if err := record("customer", c.ID, c); err != nil {
			return n, err
		}
	}
	if err := cit.Err(); err != nil {
		return n, fmt.Errorf("resync customers: %w", err)
	}
	sp := &stripe.SubscriptionListParams{Status: stripe.String("all")}
	sp.Context = ctx
	sp.Limit = stripe.Int64(100)
	sit := api.Subscriptions.List(sp)
	for sit.Next() {
		s := sit.Subscription()
		if err := record("subscription", s.ID, s); err != nil {
			return n, err
		}
	}
	if err := sit.Err(); err != nil {
		return n, fmt.Errorf("resync subscriptions: %w", err)
	}
	return n, nil
}
