package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
)

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
