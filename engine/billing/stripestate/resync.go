package stripestate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/meterd/meterd/storage"
)

// Resynced counts the objects a resync recorded.
type Resynced struct {
	Customers, Subscriptions, Invoices int
}

// Resync rebuilds the state from Stripe's API: every customer, every
// subscription (any status) and every open or uncollectible invoice is
// appended to the event journal as a snapshot dated now, so it folds like
// an event created now: newer than anything delivered before, older than
// anything Stripe sends after. An invoice the journal holds as draft, open
// or uncollectible that those lists lack (paid, voided or deleted while
// its webhooks were missed) is read by id, so that it stops counting as
// unpaid; one Stripe no longer has is recorded deleted.
func Resync(ctx context.Context, api *client.API, j storage.Journal, now time.Time) (Resynced, error) {
	var got Resynced
	entries, err := j.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamStripeEvents})
	if err != nil {
		return got, fmt.Errorf("resync: read the journal: %w", err)
	}
	known := Fold(entries).Invoices
	// record journals one object; it returns the object's id.
	record := func(kind string, obj any) (string, error) {
		raw, err := json.Marshal(obj)
		if err != nil {
			return "", err
		}
		var head struct {
			ID string `json:"id"`
		}
		json.Unmarshal(raw, &head)
		key := fmt.Sprintf("resync_%d_%s", now.UnixNano(), head.ID)
		body, _ := json.Marshal(map[string]any{
			"id": key, "type": "meterd.resync." + kind, "created": now.Unix(),
			"data": map[string]json.RawMessage{"object": raw},
		})
		err = j.AppendJournal(ctx, storage.JournalEntry{Stream: storage.StreamStripeEvents, Key: key, At: now, Body: string(body)})
		if err == storage.ErrConflict {
			err = nil
		}
		return head.ID, err
	}
	listed := map[string]bool{}
	each := func(what string, it *stripe.Iter, count *int) error {
		for it.Next() {
			id, err := record(what, it.Current())
			if err != nil {
				return err
			}
			listed[id] = true
			*count++
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("resync %ss: %w", what, err)
		}
		return nil
	}
	cp := &stripe.CustomerListParams{}
	cp.Context = ctx
	cp.Limit = stripe.Int64(100)
	if err := each("customer", api.Customers.List(cp).Iter, &got.Customers); err != nil {
		return got, err
	}
	sp := &stripe.SubscriptionListParams{Status: stripe.String("all")}
	sp.Context = ctx
	sp.Limit = stripe.Int64(100)
	if err := each("subscription", api.Subscriptions.List(sp).Iter, &got.Subscriptions); err != nil {
		return got, err
	}
	// The payment intent's status tells a declined attempt from a debit
	// still processing (failedAttempt).
	for _, status := range []string{"open", "uncollectible"} {
		ip := &stripe.InvoiceListParams{Status: stripe.String(status)}
		ip.Context = ctx
		ip.Limit = stripe.Int64(100)
		ip.AddExpand("data.payment_intent")
		if err := each("invoice", api.Invoices.List(ip).Iter, &got.Invoices); err != nil {
			return got, err
		}
	}
	var stale []string
	for id, inv := range known {
		if stage(inv.Status) < stage("paid") && !listed[id] {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)
	for _, id := range stale {
		p := &stripe.InvoiceParams{}
		p.Context = ctx
		p.AddExpand("payment_intent")
		var obj any
		inv, err := api.Invoices.Get(id, p)
		var se *stripe.Error
		switch {
		case errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound && se.Code == stripe.ErrorCodeResourceMissing:
			obj = map[string]any{"id": id, "object": "invoice", "deleted": true}
		case err != nil:
			return got, fmt.Errorf("resync invoice %s: %w", id, err)
		default:
			obj = inv
		}
		if _, err := record("invoice", obj); err != nil {
			return got, err
		}
		got.Invoices++
	}
	return got, nil
}
