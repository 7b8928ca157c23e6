package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/storage"
)

// ErrNotConfigured is returned by a cycle before Stripe settings exist.
var ErrNotConfigured = errors.New("billing: Stripe is not configured (PUT /v1/billing/stripe)")

// DefaultInterval is the time between billing cycles unless configured
// (METERD_BILLING_INTERVAL).
const DefaultInterval = time.Minute

// Worker reports usage to Stripe in cycles (docs/billing.md):
//
//  1. resend every intent (a pending ledger entry without outcome) exactly
//     as written, so a crash between writing it and learning Stripe's
//     answer costs nothing: the idempotency key (and a meter event's
//     identifier) make the repeat harmless; a key that holds a definite
//     5xx is renewed first (see send);
//  2. fold the Stripe events into customers and subscriptions;
//  3. for every active meter bound to a price and every subscription item
//     with that price, compute the customer's usage per hour of the
//     period with the backtest engine and report what Stripe lacks.
type Worker struct {
	Store    storage.Store
	Now      func() time.Time // time.Now by default
	Logger   *slog.Logger
	Retry    Retry
	Interval time.Duration // between cycles; DefaultInterval by default
	Timeout  time.Duration // per Stripe request; 30 s by default
	// Grace is how long after a period's end meter events still count
	// for it (Stripe's invoice grace period, 1 h by default).
	Grace time.Duration
	// Clock is what pacing, backoff and the pause between cycles wait on
	// (the wall clock by default; tests inject a virtual one).
	Clock Clock
	// Hours keeps usage per closed hour (engine/hours), so that a cycle
	// recomputes only the hours that changed; nil: one of the worker's own.
	// The process's other users of the store (the API, governance) should
	// share it.
	Hours *hours.Cache
	// Recompute computes every period over all its events in each cycle
	// instead (the reference 'meterd bench billing' and tests compare
	// with).
	Recompute bool
	// ID names this worker among the workers sharing the store (replicas
	// of 'meterd serve', a 'meterd billing' next to them): Run marks it
	// alive and only the oldest live worker runs cycles. Empty: the start
	// time, host and process, so that IDs sort by age.
	ID string
	// Metrics records the cycles, the reports and the Stripe requests
	// (nil: not recorded).
	Metrics *metrics.Set
	// Sealer opens the Stripe secrets in the settings (METERD_SECRET_KEY);
	// nil when they are stored in plain text.
	Sealer *Sealer

	limiter *Limiter
	rate    float64
}

// Stats counts what one cycle did.
type Stats struct {
	Sent, Failed, Rejected, Skipped, Flagged, Replayed, QueryErrors, Unmapped int
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now().UTC()
	}
	return time.Now().UTC()
}

func (w *Worker) clock() Clock {
	if w.Clock != nil {
		return w.Clock
	}
	return wallClock{}
}

func (w *Worker) log() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Run runs cycles until ctx ends, while this worker leads (see leads).
// Errors are logged, never fatal: an outage delays reports until a later
// cycle.
func (w *Worker) Run(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	if w.ID == "" {
		w.ID = newWorkerID(w.now())
	}
	w.pruneMarks(ctx)
	beats, stop := context.WithCancel(ctx)
	beating := make(chan struct{})
	go func() { defer close(beating); w.beat(beats, interval) }()
	defer func() { // let another worker lead at once
		stop()
		<-beating
		retire, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Store.Retire(retire, w.ID); err != nil {
			w.log().Error("billing: cannot retire this worker's mark", "err", err)
		}
	}()
	leader := ""
	for {
		lead, who, err := w.leads(ctx, interval)
		switch {
		case err != nil && ctx.Err() == nil:
			w.log().Error("billing: cannot tell which worker leads; running the cycle", "err", err)
		case who != leader:
			leader = who
			if lead {
				w.log().Info("billing: this worker runs the cycles", "worker", w.ID)
			} else {
				w.log().Info("billing: standby; another worker runs the cycles", "worker", w.ID, "leader", who)
			}
		}
		w.Metrics.BillingLeader(lead, w.now())
		if lead {
			w.runCycle(ctx)
		}
		if err := w.clock().Sleep(ctx, interval); err != nil {
			return nil
		}
	}
}

func (w *Worker) runCycle(ctx context.Context) {
	st, err := w.Cycle(ctx)
	switch {
	case errors.Is(err, ErrNotConfigured):
	case err != nil && ctx.Err() == nil:
		w.log().Error("billing cycle failed", "err", err)
	case err == nil:
		w.log().Info("billing cycle", "sent", st.Sent, "failed", st.Failed, "rejected", st.Rejected,
			"flagged", st.Flagged, "replayed", st.Replayed, "query_errors", st.QueryErrors, "unmapped", st.Unmapped)
	}
}

// liveFor is how many intervals a worker's last mark keeps it live: a
// stopped leader is replaced within that, and a slow store or a long
// cycle (the marks come from their own goroutine) does not lose the lead.
const liveFor = 3

// beat marks the worker alive every half interval until ctx ends.
func (w *Worker) beat(ctx context.Context, interval time.Duration) {
	for {
		if err := w.Store.Beat(ctx, w.ID, w.now()); err != nil && ctx.Err() == nil {
			w.log().Error("billing: cannot mark this worker alive", "err", err)
		}
		if err := w.clock().Sleep(ctx, interval/2); err != nil {
			return
		}
	}
}

// staleMark is how old a mark must be for pruneMarks to remove it.
const staleMark = 24 * time.Hour

// pruneMarks removes the marks of workers not seen for a day: a process
// that crashed leaves its mark behind.
func (w *Worker) pruneMarks(ctx context.Context) {
	all, err := w.Store.LiveWorkers(ctx, time.Time{})
	if err != nil {
		return // the next start prunes
	}
	for _, b := range all {
		if b.At.Before(w.now().Add(-staleMark)) {
			if err := w.Store.Retire(ctx, b.Worker); err != nil {
				w.log().Error("billing: cannot remove a stale worker mark", "worker", b.Worker, "err", err)
			}
		}
	}
}

// leads says whether this worker is the oldest live one on the store,
// the one that runs the cycles, and names that one. Two workers may
// overlap for a cycle while one starts or stops; that is safe (idempotency
// keys, meter event identifiers), one leader just avoids doing it all
// twice. Without an answer from the store the worker runs the cycle.
func (w *Worker) leads(ctx context.Context, interval time.Duration) (bool, string, error) {
	now := w.now()
	if err := w.Store.Beat(ctx, w.ID, now); err != nil {
		return true, w.ID, err
	}
	live, err := LiveWorkers(ctx, w.Store, now, interval)
	if err != nil || len(live) == 0 {
		return true, w.ID, err
	}
	return live[0].Worker == w.ID, live[0].Worker, nil
}

// LiveWorkers lists the workers live on st at now, oldest (the leader)
// first, for workers whose cycles are interval apart.
func LiveWorkers(ctx context.Context, st storage.Store, now time.Time, interval time.Duration) ([]storage.WorkerBeat, error) {
	return st.LiveWorkers(ctx, now.Add(-liveFor*interval))
}

// newWorkerID is the start time (sortable), host and process id.
func newWorkerID(start time.Time) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%s/%d", start.UTC().Format("20060102T150405.000000Z"), host, os.Getpid())
}

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

type meterInfo struct {
	eventName, customerKey, valueKey string
	err                              error
	temporary                        bool
}

// Cycle runs one reporting cycle.
func (w *Worker) Cycle(ctx context.Context) (Stats, error) {
	start, began := w.now(), time.Now()
	st, err := w.reportAll(ctx)
	if ctx.Err() == nil { // a cycle cut short by a shutdown is no failure
		w.Metrics.BillingCycle(w.now, start, time.Since(began), err, !errors.Is(err, ErrNotConfigured))
	}
	return st, err
}

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
	reports, err := LoadReports(ctx, w.Store, c.now.Add(-60*24*time.Hour))
	if err != nil {
		return c.stats, err
	}
	c.ledger = foldLedger(reports)
	if err := c.replay(ctx); err != nil {
		return c.stats, err
	}
	evs, err := w.Store.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamStripeEvents})
	if err != nil {
		return c.stats, err
	}
	state := stripestate.Fold(evs)
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
				if !p.End.After(c.now.Add(-35*24*time.Hour)) || !p.Start.Before(c.now) {
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

// unit is one reportable quantity: a bucket (additive meters) or the
// whole period (max, min, unique).
type unit struct {
	at      time.Time
	value   float64
	qty     int64 // this unit's share of the rounded running total
	cum     int64 // the rounded running total through this unit
	version int
	closed  bool // the bucket's hour (or the period) has ended
}

// usage computes the units of one customer for one period with the
// backtest engine (the same SQL as GET /v1/meters/{id}/usage).
func (c *cycle) usage(ctx context.Context, m *registry.Meter, p stripestate.Period, key string) ([]unit, string, error) {
	to := p.End
	if c.now.Before(to) {
		to = c.now
	}
	spans, err := c.spansOf(m, p.Start, to)
	if err != nil || len(spans) == 0 {
		return nil, "", err
	}
	vs := make([]backtest.Version, len(spans))
	for i, sp := range spans {
		vs[i] = backtest.Version{Meter: sp.Meter, From: sp.From}
	}
	def := spans[len(spans)-1].Meter.Def
	versionAt := func(t time.Time) int {
		v := spans[0].Version
		for _, sp := range spans {
			if !t.Before(sp.From) {
				v = sp.Version
			}
		}
		return v
	}
	var us []unit
	switch def.Aggregation {
	case rules.AggSum, rules.AggCount:
		buckets, err := c.customerBuckets(ctx, m, vs, p.Start, to, key)
		if err != nil {
			return nil, "", err
		}
		us = make([]unit, 0, len(buckets))
		for _, b := range buckets {
			start := time.UnixMilli(b.Start).UTC()
			at := start
			if at.Before(p.Start) {
				at = p.Start
			}
			var v float64
			if b.HasValue {
				v = b.Value
			}
			us = append(us, unit{at: at, value: v, version: versionAt(at), closed: !start.Add(time.Hour).After(c.now) || !p.End.After(c.now)})
		}
	default: // not additive over buckets: the period's value, at its start
		g, err := c.customerTotal(ctx, m, vs, p.Start, to, key)
		if err != nil {
			return nil, "", err
		}
		var v float64
		if g.Value != nil {
			v = *g.Value
		}
		us = append(us, unit{at: p.Start, value: v, version: spans[len(spans)-1].Version, closed: true})
	}
	values := make([]float64, len(us))
	for i := range us {
		values[i] = us[i].value
	}
	qty, cum := runningQuantities(values, def.RoundingMode())
	for i := range us {
		us[i].qty, us[i].cum = qty[i], cum[i]
	}
	return us, def.Aggregation, nil
}

// customerBuckets is one customer's hour buckets of a meter over
// [from, to). Every customer of the meter whose subscription shares the
// period is computed at once, once per cycle: from the hours kept
// (engine/hours: only the hours that changed are queried), or with
// Recompute by one query over the period (backtest.Window.GroupBuckets). A
// cycle costs that per meter and distinct period, not per customer. A
// failed computation fails each of them.
func (c *cycle) customerBuckets(ctx context.Context, m *registry.Meter, vs []backtest.Version, from, to time.Time, key string) ([]hours.Hour, error) {
	return perCustomer(ctx, c.buckets, m.ID, from, to, key, func() (map[string][]hours.Hour, error) {
		if !c.w.Recompute {
			return c.w.Hours.Buckets(ctx, hours.Request{Meter: m, From: from, To: to, Now: c.now, Round: c.round})
		}
		res, err := backtest.Usage(ctx, c.w.Store, vs, backtest.Window{From: from, To: to, Bucket: backtest.BucketHour, Top: 1, GroupBuckets: true})
		if err != nil {
			return nil, err
		}
		by := map[string][]hours.Hour{}
		for _, gb := range res.GroupBuckets { // by group, then time
			h := hours.Hour{Start: gb.Start.UnixMilli(), HasValue: gb.Value != nil, Events: gb.Events}
			if gb.Value != nil {
				h.Value = *gb.Value
			}
			by[gb.Group] = append(by[gb.Group], h)
		}
		return by, nil
	})
}

// customerTotal is one customer's value of a meter over [from, to): for
// max, min and unique, which do not add up over hours. Like
// customerBuckets, every customer's value at once (max and min combine
// the hours kept; unique counts distinct values over the period, one
// query, backtest.Window.AllGroups); a customer without events has no
// value.
func (c *cycle) customerTotal(ctx context.Context, m *registry.Meter, vs []backtest.Version, from, to time.Time, key string) (backtest.Group, error) {
	return perCustomer(ctx, c.totals, m.ID, from, to, key, func() (map[string]backtest.Group, error) {
		if !c.w.Recompute {
			return c.w.Hours.Totals(ctx, hours.Request{Meter: m, From: from, To: to, Now: c.now, Round: c.round})
		}
		res, err := backtest.Usage(ctx, c.w.Store, vs, backtest.Window{From: from, To: to, Bucket: backtest.BucketDay, Top: 1, AllGroups: true})
		if err != nil {
			return nil, err
		}
		by := map[string]backtest.Group{}
		for _, g := range res.Groups {
			by[g.Key] = g
		}
		return by, nil
	})
}

// byCustomer is one query's answer by customer, or its error.
type byCustomer[V any] struct {
	by  map[string]V
	err error
}

// perCustomer answers key's share of the query for (meter, from, to),
// running query once per cycle (an answer cut short by ctx is not kept).
func perCustomer[V any](ctx context.Context, cache map[string]byCustomer[V], meterID string, from, to time.Time, key string,
	query func() (map[string]V, error)) (V, error) {
	k := fmt.Sprintf("%s|%d|%d", meterID, from.UnixMilli(), to.UnixMilli())
	b, ok := cache[k]
	if !ok {
		b.by, b.err = query()
		if ctx.Err() == nil {
			cache[k] = b
		}
	}
	return b.by[key], b.err
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
