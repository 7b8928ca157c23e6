package billing

import (
	"context"
	"fmt"
)

// reportUsageRecords sets each bucket's quantity at its timestamp
// (action=set: a repeat or a correction overwrites, never adds).
func (c *cycle) reportUsageRecords(ctx context.Context, base Report, us []unit, hold unsent) error {
	for _, u := range us {
		r := base
		r.Bucket, r.Quantity, r.Value, r.Total, r.MeterVersion = u.at, u.qty, u.value, u.cum, u.version
		if r.Quantity < 0 {
			r.Quantity, r.Note = 0, "negative usage reported as 0"
		}
		// Compare with the last request made, not the last accepted: a
		// failed request may have been applied, so it is set again.
		acc, tried := c.ledger.accepted[r.unit()], c.ledger.attempts[r.unit()]
		var la Report
		if len(tried) > 0 {
			la = tried[len(tried)-1]
		}
		switch {
		case len(tried) == 0 && r.Quantity == 0:
			continue
		case len(tried) > 0 && la.Quantity == r.Quantity && la.Status == StatusSent:
			continue
		case len(tried) > 0 && la.Quantity == r.Quantity:
			r.Key, r.Generation = la.Key, la.Generation // the same request again: Stripe's idempotency covers it
		default:
			r.Key = hashKey("meterd-ur-", r.SubscriptionItem, r.MeterID, r.Bucket.Unix(), r.Quantity, len(tried))
		}
		if hold.status != "" {
			var had int64
			if len(acc) > 0 {
				had = acc[len(acc)-1].Quantity
			}
			if err := c.flag(ctx, r, hold.status, hold.note(r.Quantity, had)); err != nil {
				return err
			}
			continue
		}
		if c.ledger.settled(r.Key) {
			continue // rejected before: a person looks at it
		}
		if err := c.send(ctx, r, false); err != nil {
			return err
		}
	}
	return nil
}

// reportMeterEvents sends increases: a closed bucket once, a later
// increase as another event with its own identifier. What Stripe has is
// the sum of accepted events; the shortfall against the rounded running
// total goes to the earliest buckets that lack it, so the events always
// add up to the rounded total.
func (c *cycle) reportMeterEvents(ctx context.Context, base Report, us []unit, hold unsent) error {
	if c.blocked[blockKey(base)] {
		return nil // an event of unknown outcome is retried first (replay)
	}
	var closed []unit
	for _, u := range us {
		if u.closed {
			closed = append(closed, u)
		}
	}
	if len(closed) == 0 {
		return nil
	}
	sentBy := map[int64]int64{} // accepted increases by bucket
	var sent int64
	for _, a := range c.acceptedFor(base) {
		sentBy[a.Bucket.Unix()] += a.Quantity
		sent += a.Quantity
	}
	total := closed[len(closed)-1].cum
	remaining := total - sent
	last := closed[len(closed)-1]
	switch {
	case remaining == 0:
		return nil
	case remaining < 0:
		r := base
		r.Bucket, r.Quantity, r.Total, r.Value, r.MeterVersion = last.at, remaining, total, last.value, last.version
		r.Key = hashKey("meterd-adj-", r.SubscriptionItem, r.MeterID, r.PeriodStart.Unix(), total, sent)
		return c.flag(ctx, r, StatusNeedsAdjustment, fmt.Sprintf("Stripe has %d, the meter now measures %d: cancel events (within 24 h) or credit the difference", sent, total))
	}
	if hold.status != "" {
		r := base
		r.Bucket, r.Quantity, r.Total, r.Value, r.MeterVersion = last.at, remaining, total, last.value, last.version
		r.Key = hashKey(hold.prefix, r.SubscriptionItem, r.MeterID, r.PeriodStart.Unix(), total, sent)
		return c.flag(ctx, r, hold.status, hold.note(total, sent))
	}
	info := c.meterFor(ctx, base.PriceID)
	if info.err != nil && info.temporary {
		c.stats.Failed++ // Stripe is unreachable: the next cycle tries again
		return nil
	}
	if info.err != nil {
		r := base
		r.Bucket, r.Quantity, r.Total, r.MeterVersion = last.at, remaining, total, last.version
		r.Key = hashKey("meterd-nometer-", r.PriceID)
		return c.flag(ctx, r, StatusRejected, info.err.Error())
	}
	var cum int64
	for _, u := range closed {
		cum += sentBy[u.at.Unix()]
		deficit := u.cum - cum
		if deficit <= 0 || remaining <= 0 {
			continue
		}
		x := min(deficit, remaining)
		r := base
		r.Bucket, r.Quantity, r.Value, r.Total, r.MeterVersion = u.at, x, u.value, total, u.version
		r.EventName, r.CustomerKey, r.ValueKey = info.eventName, info.customerKey, info.valueKey
		r.Key = hashKey("meterd-me-", r.SubscriptionItem, r.MeterID, r.PeriodStart.Unix(), r.Bucket.Unix(), cum+x)
		r.Identifier = r.Key
		if c.ledger.settled(r.Key) {
			return nil // rejected before: a person looks at it
		}
		if err := c.send(ctx, r, false); err != nil {
			return err
		}
		if sent, _ := c.ledger.latest(r.Key); sent.Status != StatusSent {
			return nil // the rest waits for the next cycle
		}
		cum += x
		remaining -= x
	}
	return nil
}

// acceptedFor lists accepted meter events of one (meter, item, period).
func (c *cycle) acceptedFor(base Report) []Report {
	var out []Report
	for _, rs := range c.ledger.accepted {
		for _, r := range rs {
			if r.Mode == base.Mode && r.MeterID == base.MeterID && r.SubscriptionItem == base.SubscriptionItem && r.PeriodStart.Equal(base.PeriodStart) {
				out = append(out, r)
			}
		}
	}
	return out
}
