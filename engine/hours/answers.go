package hours

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/engine"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
)

// Buckets is every customer's hour buckets over its window (the pieces
// with matched events; a partial hour's bucket starts at its hour, as
// engine.Window.GroupBuckets gives them), by customer, in time order.
func (c *Cache) Buckets(ctx context.Context, r Request) (map[string][]engine.GroupBucket, error) {
	gbs, _, err := c.groupBuckets(ctx, r)
	if err != nil {
		return nil, err
	}
	out := map[string][]engine.GroupBucket{}
	for _, gb := range gbs {
		out[gb.Group] = append(out[gb.Group], gb)
	}
	return out, nil
}

// Totals is every customer's value over its window, as
// engine.Window.AllGroups gives them (customers with matched events).
// Unique meters, whose values do not combine over hours, take one engine
// query over the window.
func (c *Cache) Totals(ctx context.Context, r Request) (map[string]engine.Group, error) {
	var groups []engine.Group
	if r.aggregation() == rules.AggUnique {
		vs, err := versions(r.Meter, r.From, r.To)
		if err != nil {
			return nil, err
		}
		res, err := engine.Usage(ctx, c.store, vs, engine.Window{From: r.From, To: r.To, Bucket: engine.BucketDay, Top: 1,
			AllGroups: true, GroupFrom: r.GroupFrom})
		if err != nil {
			return nil, err
		}
		groups = res.Groups
	} else {
		gbs, _, err := c.groupBuckets(ctx, r)
		if err != nil {
			return nil, err
		}
		groups = engine.Rollup(r.aggregation(), engine.Window{Bucket: engine.BucketDay, AllGroups: true}, gbs).Groups
	}
	out := make(map[string]engine.Group, len(groups))
	for _, g := range groups {
		out[g.Key] = g
	}
	return out, nil
}

// Result is the backtest result of the meter over w (validated; its
// GroupFrom and Ranges are not used), as engine.Usage gives it: one
// customer's with w.Group. Engine and Fallback tell what the queries this
// call ran used (sql when every piece was kept). Unique meters take one
// engine query over the window.
func (c *Cache) Result(ctx context.Context, m *registry.Meter, w engine.Window, now time.Time) (*engine.Result, error) {
	start := time.Now()
	r := Request{Meter: m, From: w.From, To: w.To, Now: now}
	agg := r.aggregation()
	if agg == rules.AggUnique {
		vs, err := versions(m, w.From, w.To)
		if err != nil {
			return nil, err
		}
		return engine.Usage(ctx, c.store, vs, w)
	}
	gbs, fallback, err := c.groupBuckets(ctx, r)
	if err != nil {
		return nil, err
	}
	if w.Group != "" {
		var mine []engine.GroupBucket
		for _, gb := range gbs {
			if gb.Group == w.Group {
				mine = append(mine, gb)
			}
		}
		gbs = mine
	}
	res := engine.Rollup(agg, w, gbs)
	if res.ScannedEvents, err = engine.Scanned(ctx, c.store, m.Latest().GroupBy, w); err != nil {
		return nil, err
	}
	res.Engine, res.Fallback = engine.EngineSQL, fallback
	if fallback != "" {
		res.Engine = engine.EngineVM
	}
	res.TookMs = time.Since(start).Milliseconds()
	return res, nil
}

// groupBuckets are the values of the pieces of every customer's window,
// in time order.
func (c *Cache) groupBuckets(ctx context.Context, r Request) ([]engine.GroupBucket, string, error) {
	ps, fallback, err := c.pieces(ctx, r)
	if err != nil {
		return nil, "", err
	}
	var out []engine.GroupBucket
	for _, p := range ps {
		s := span{p.FromMs, p.ToMs}
		at := time.UnixMilli(s.hour()).UTC()
		for _, v := range p.Values {
			if len(r.GroupFrom) > 0 && !r.belongs(r.start(v.Customer), s) {
				continue
			}
			gb := engine.GroupBucket{Group: v.Customer, Start: at, Events: v.Events, ValueErrors: v.Errors}
			if v.HasValue {
				x := v.Value
				gb.Value = &x
			}
			out = append(out, gb)
		}
	}
	return out, fallback, nil
}

// versions are the engine versions of m in force over [from, to).
func versions(m *registry.Meter, from, to time.Time) ([]engine.Version, error) {
	spans, err := m.Spans(from, to)
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("hours: meter %s has no version in force over %s..%s", m.ID, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	vs := make([]engine.Version, len(spans))
	for i, sp := range spans {
		vs[i] = engine.Version{Meter: sp.Meter, From: sp.From}
	}
	return vs, nil
}
