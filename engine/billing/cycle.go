package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v76/client"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
)

// cycle is one cycle's context.
type cycle struct {
	w        *Worker
	api      *client.API
	settings Settings
	ledger   *ledger
	stats    Stats
	now      time.Time
	meters   map[string]meterInfo                  // Stripe billing meter per price
	blocked  map[string]bool                       // see blockKey
	buckets  map[string]byCustomer[[]hours.Hour]   // see customerBuckets
	totals   map[string]byCustomer[backtest.Group] // see customerTotal
	spans    map[string][]registry.Span            // see spansOf
	round    uint64                                // the cycle's hours.Request.Round
}

// newCycle is a cycle at now, without Stripe (Cycle adds it).
func (w *Worker) newCycle(now time.Time) *cycle {
	return &cycle{w: w, now: now.UTC(), meters: map[string]meterInfo{}, blocked: map[string]bool{},
		buckets: map[string]byCustomer[[]hours.Hour]{}, totals: map[string]byCustomer[backtest.Group]{}, spans: map[string][]registry.Span{},
		round: hours.NewRound()}
}

// spansOf is m.Spans(from, to), compiled once per cycle: every customer
// of a period shares them.
func (c *cycle) spansOf(m *registry.Meter, from, to time.Time) ([]registry.Span, error) {
	k := fmt.Sprintf("%s|%d|%d", m.ID, from.UnixMilli(), to.UnixMilli())
	if sp, ok := c.spans[k]; ok {
		return sp, nil
	}
	sp, err := m.Spans(from, to)
	if err == nil {
		c.spans[k] = sp
	}
	return sp, err
}

// periodsChecked is how long after its end a period is still checked:
// its usage compared with what Stripe has, what Stripe lacks listed.
// Stripe takes no meter event more than 35 days old, and meterd refuses
// events more than 30 days old by default (--max-event-age): after that,
// nothing of the period can be sent and no new usage arrives for it.
const periodsChecked = 35 * 24 * time.Hour

// ledgerLookback is how far back a cycle reads the ledger: every report
// of every period still checked, the first of them written as the
// period's first hour closed, up to a month (31 days) before its end.
// A longer period (a yearly price) is compared with its reports of that
// window only (docs/billing.md).
const ledgerLookback = periodsChecked + 31*24*time.Hour

// reportAll is a cycle's work.
func (w *Worker) reportAll(ctx context.Context) (Stats, error) {
	s, err := LoadSettings(ctx, w.Store, w.Sealer)
	if err != nil {
		return Stats{}, err
	}
	if s == nil || s.APIKey == "" {
		return Stats{}, ErrNotConfigured
	}
	if w.Hours == nil {
		w.Hours = hours.New(w.Store)
	}
	if w.limiter == nil || w.rate != s.RateLimit {
		w.limiter, w.rate = NewLimiter(s.RateLimit, w.clock()), s.RateLimit
	}
	c := w.newCycle(w.now())
	c.api, c.settings = NewObservedAPI(*s, w.Timeout, w.Metrics), *s
	reports, err := LoadReports(ctx, w.Store, c.now.Add(-ledgerLookback))
	if err != nil {
		return c.stats, err
	}
	c.ledger = foldLedger(reports)
	if err := c.replay(ctx); err != nil {
		return c.stats, err
	}
	state, err := stripestate.Load(ctx, w.Store)
	if err != nil {
		return c.stats, err
	}
	meters, err := registry.New(w.Store, nil).List(ctx)
	if err != nil {
		return c.stats, err
	}
	byPrice := map[string]*registry.Meter{}
	for i := len(meters) - 1; i >= 0; i-- { // oldest first: the first meter bound to a price keeps it
		m := meters[i]
		price := m.Latest().StripePriceID
		if m.Status != rules.StatusActive || price == "" {
			continue
		}
		if prev, dup := byPrice[price]; dup {
			w.log().Warn("two active meters bound to one price: only the older one reports", "price", price, "meter", prev.ID, "ignored", m.ID)
			continue
		}
		byPrice[price] = m
	}
	for _, sub := range state.SortedSubscriptions() {
		for _, item := range sub.Items {
			m := byPrice[item.PriceID]
			if m == nil {
				continue
			}
			key := state.BillingKey(sub, s.CustomerIDSource)
			if key == "" {
				c.stats.Unmapped++
				continue
			}
			for _, p := range sub.Periods {
				if !p.End.After(c.now.Add(-periodsChecked)) || !p.Start.Before(c.now) {
					continue
				}
				if err := c.report(ctx, m, sub, item, p, key); err != nil {
					if ctx.Err() != nil {
						return c.stats, ctx.Err()
					}
					return c.stats, err
				}
			}
		}
	}
	return c.stats, nil
}

// report brings one (meter, item, period) up to date, or lists what can
// no longer be sent (docs/billing.md, "Which subscriptions are billed").
func (c *cycle) report(ctx context.Context, m *registry.Meter, sub *stripestate.Subscription, item stripestate.Item, p stripestate.Period, key string) error {
	// A subscription's usage is what its customer used in its period
	// until it ended: later usage is no part of it (the customer may be
	// on another subscription by then).
	measured := p
	end, ended := sub.Ended()
	if ended && end.Before(p.End) {
		if !end.After(p.Start) {
			return nil
		}
		measured.End = end
	}
	var hold unsent
	switch {
	case ended && p.End.After(end):
		hold = unsent{StatusNotBilled, "meterd-notbilled-", fmt.Sprintf("before subscription %s ended (%s at %s): Stripe no longer bills it",
			sub.ID, sub.Status, end.Format(time.RFC3339))}
	case ended || !c.open(sub, p):
		hold = unsent{StatusLate, "meterd-late-", "after the period closed"}
	case !sub.Active():
		return nil // paused, unpaid, incomplete: held, sent once it is billed again, listed if it ends
	}
	us, _, err := c.usage(ctx, m, measured, key)
	if err != nil {
		// No report of a bucket whose query failed: the next cycle retries.
		c.stats.QueryErrors++
		c.w.log().Error("billing: usage query failed; nothing reported for it", "meter", m.ID, "customer", key, "err", err)
		return nil
	}
	base := Report{Mode: c.settings.Mode, MeterID: m.ID, PriceID: item.PriceID, Customer: key, StripeCustomer: sub.Customer,
		Subscription: sub.ID, SubscriptionItem: item.ID, PeriodStart: p.Start, PeriodEnd: p.End}
	if c.settings.Mode == ModeUsageRecords {
		return c.reportUsageRecords(ctx, base, us, hold)
	}
	return c.reportMeterEvents(ctx, base, us, hold)
}

// open reports whether Stripe still takes usage of period p: usage
// records while p is the subscription's current period, meter events
// until the invoice's grace after p ends.
func (c *cycle) open(sub *stripestate.Subscription, p stripestate.Period) bool {
	if c.settings.Mode == ModeUsageRecords {
		return p == sub.Current && c.now.Before(p.End)
	}
	return c.now.Before(p.End.Add(c.grace()))
}

// unsent is why usage is listed in the ledger instead of sent (its zero
// value sends): the status, the prefix of a meter-event listing's key (a
// usage record's listing keeps its request's key) and the reason for its
// note.
type unsent struct{ status, prefix, why string }

func (u unsent) note(measured, had int64) string {
	return fmt.Sprintf("measured %d %s; Stripe has %d", measured, u.why, had)
}

func (c *cycle) grace() time.Duration {
	if c.w.Grace > 0 {
		return c.w.Grace
	}
	return time.Hour
}
