package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// replay resends intents without an outcome, exactly as written.
func (c *cycle) replay(ctx context.Context) error {
	for _, r := range c.ledger.pending() {
		if r.Mode == ModeMeterEvents && c.now.Sub(r.AttemptAt) > 23*time.Hour {
			r.Status, r.AttemptAt = StatusNeedsReview, c.now
			r.Note = "the outcome of this meter event is unknown and Stripe no longer deduplicates it: compare with Stripe's meter event summary before resending"
			if err := c.appendReport(ctx, r, true); err != nil {
				return err
			}
			c.ledger.last[r.Key] = r
			c.stats.Flagged++
			continue
		}
		c.stats.Replayed++
		if err := c.send(ctx, r, true); err != nil {
			return err
		}
	}
	return nil
}

type meterInfo struct {
	eventName, customerKey, valueKey string
	err                              error
	temporary                        bool
}

// meterFor finds the Stripe billing meter behind a price (its event name
// and payload keys), once per cycle.
func (c *cycle) meterFor(ctx context.Context, price string) meterInfo {
	if mi, ok := c.meters[price]; ok {
		return mi
	}
	var mi meterInfo
	var p *stripe.Price
	_, err := do(ctx, c.w.limiter, c.w.Retry, func() (e error) {
		p, e = c.api.Prices.Get(price, &stripe.PriceParams{Params: stripe.Params{Context: ctx}})
		return e
	})
	switch {
	case err != nil:
		mi.err = fmt.Errorf("price %s: %w", price, err)
	case p.Recurring == nil || p.Recurring.Meter == "":
		mi.err = fmt.Errorf("price %s is not backed by a Stripe billing meter: set mode usage_records for legacy metered prices, or create the price with a meter", price)
	default:
		var bm *stripe.BillingMeter
		_, err = do(ctx, c.w.limiter, c.w.Retry, func() (e error) {
			bm, e = c.api.BillingMeters.Get(p.Recurring.Meter, &stripe.BillingMeterParams{Params: stripe.Params{Context: ctx}})
			return e
		})
		if err != nil {
			mi.err = fmt.Errorf("billing meter %s: %w", p.Recurring.Meter, err)
			break
		}
		mi.eventName, mi.customerKey, mi.valueKey = bm.EventName, "stripe_customer_id", "value"
		if bm.CustomerMapping != nil && bm.CustomerMapping.EventPayloadKey != "" {
			mi.customerKey = bm.CustomerMapping.EventPayloadKey
		}
		if bm.ValueSettings != nil && bm.ValueSettings.EventPayloadKey != "" {
			mi.valueKey = bm.ValueSettings.EventPayloadKey
		}
	}
	// An outage (or the worker stopping) is not a misconfiguration: it is
	// not flagged, and asked again next cycle.
	mi.temporary = mi.err != nil && (Retryable(errors.Unwrap(mi.err)) || ctx.Err() != nil)
	c.meters[price] = mi
	return mi
}

// appendReport writes a ledger entry and counts it (GET /metrics).
func (c *cycle) appendReport(ctx context.Context, r Report, once bool) error {
	if err := appendReport(ctx, c.w.Store, r, once); err != nil {
		return err
	}
	c.w.Metrics.BillingReport(r.Status)
	return nil
}

// flag records a status that needs no request, once per key.
func (c *cycle) flag(ctx context.Context, r Report, status, note string) error {
	if c.ledger.flagged[r.Key+"/"+status] {
		return nil
	}
	r.Status, r.Note, r.AttemptAt = status, note, c.now
	if err := c.appendReport(ctx, r, true); err != nil {
		return err
	}
	c.ledger.flagged[r.Key+"/"+status] = true
	c.stats.Flagged++
	return nil
}

// send writes the intent (unless replaying one), makes the request with
// pacing and retries, and records the outcome. Only a store error stops
// the cycle; Stripe's errors are recorded.
//
// Retries reuse the idempotency key, whatever the outcome may have been
// (a timeout, a network error): Stripe applies a key once. A definite 5xx
// answer is different: Stripe saved it and replays it for the key for
// 24 h, so the request goes again, at once or in a later cycle, under its
// next key (renewed), journaled as a new intent before it is sent.
func (c *cycle) send(ctx context.Context, r Report, replay bool) error {
	retry := c.w.Retry.withDefaults()
	left := retry.Attempts
	for {
		if spent(c.ledger.last[r.Key]) {
			r, replay = r.renewed(), false
			if left < retry.Attempts { // renewed within this send: back off first
				if err := c.w.clock().Sleep(ctx, retry.pause(retry.Attempts-left)); err != nil {
					return err
				}
			}
		}
		if !replay {
			r.Status, r.AttemptAt = StatusPending, c.w.now()
			if err := c.appendReport(ctx, r, false); err != nil {
				return err
			}
			c.ledger.note(r)
		}
		var answer string
		try := retry
		try.Attempts = left
		attempts, err := do(ctx, c.w.limiter, try, func() error {
			var e error
			answer, e = c.call(ctx, r)
			if definite5xx(e) {
				return stop{e}
			}
			return e
		})
		if ctx.Err() != nil {
			return ctx.Err() // the intent stays pending: the next start resends it
		}
		out := c.outcome(r, attempts, answer, err)
		if err := c.appendReport(ctx, out, false); err != nil {
			return err
		}
		c.ledger.note(out)
		if left -= attempts; spent(out) && left > 0 {
			continue
		}
		if out.Status != StatusSent && out.Mode == ModeMeterEvents {
			c.blocked[blockKey(out)] = true
		}
		return nil
	}
}

// outcome is the ledger entry of a request's answer.
func (c *cycle) outcome(r Report, attempts int, answer string, err error) Report {
	out := r
	out.AttemptAt, out.Attempts, out.Answer, out.HTTPStatus, out.Error = c.w.now(), attempts, answer, 0, ""
	var se *stripe.Error
	switch {
	case err == nil:
		out.Status = StatusSent
		c.stats.Sent++
	case alreadyCounted(r, err):
		out.Status, out.Note = StatusSent, "Stripe holds this identifier already (an earlier key's request was applied): counted once"
		c.stats.Sent++
	case Retryable(err):
		out.Status = StatusFailed
		c.stats.Failed++
	default:
		out.Status = StatusRejected
		c.stats.Rejected++
	}
	if err != nil {
		out.Error = err.Error()
		if errors.As(err, &se) {
			out.HTTPStatus, out.Error = se.HTTPStatusCode, se.Msg
			if se.RequestID != "" {
				out.Answer = se.RequestID
			}
		}
	}
	return out
}

// alreadyCounted reports whether Stripe refused a meter event because it
// holds its identifier already, which a resend under a renewed key meets
// when the request of an earlier key was applied: Stripe answers 400 "An
// event already exists with identifier ..." and counts nothing more.
func alreadyCounted(r Report, err error) bool {
	var se *stripe.Error
	return r.Mode == ModeMeterEvents && errors.As(err, &se) && se.HTTPStatusCode == http.StatusBadRequest &&
		strings.HasPrefix(se.Msg, "An event already exists with identifier")
}

// blockKey names a (meter, item, period): while one of its meter events
// has an unknown outcome, no other event is sent for it.
func blockKey(r Report) string {
	return r.MeterID + "|" + r.SubscriptionItem + "|" + fmt.Sprint(r.PeriodStart.Unix())
}

// call makes one request with the report's deterministic idempotency key.
func (c *cycle) call(ctx context.Context, r Report) (string, error) {
	params := stripe.Params{Context: ctx, IdempotencyKey: stripe.String(r.Key)}
	if r.Mode == ModeUsageRecords {
		ur, err := c.api.UsageRecords.New(&stripe.UsageRecordParams{Params: params, SubscriptionItem: stripe.String(r.SubscriptionItem),
			Action: stripe.String(stripe.UsageRecordActionSet), Quantity: stripe.Int64(r.Quantity), Timestamp: stripe.Int64(r.Bucket.Unix())})
		if err != nil {
			return "", err
		}
		return ur.ID, nil
	}
	ev, err := c.api.BillingMeterEvents.New(&stripe.BillingMeterEventParams{Params: params, EventName: stripe.String(r.EventName),
		Identifier: stripe.String(r.Identifier), Timestamp: stripe.Int64(r.Bucket.Unix()),
		Payload: map[string]string{r.CustomerKey: r.StripeCustomer, r.ValueKey: strconv.FormatInt(r.Quantity, 10)}})
	if err != nil {
		return "", err
	}
	return ev.Identifier, nil
}
