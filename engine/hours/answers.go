package hours

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
)

// Hour is one customer's value over an hour, or over the part of it in
// its window (backtest.GroupBucket without pointers: a cycle makes one per
// customer and hour, and the garbage collector need not scan them).
type Hour struct {
	Start    int64 // the hour's start, unix ms
	Value    float64
	HasValue bool
	Events   int64 // matched events
}

// Buckets is every customer's hours over its window (those with matched
// events; a partial hour starts at its hour, as backtest.Window.GroupBuckets
// gives them), by customer, in time order. The slices share one array:
// callers must not append to them.
func (c *Cache) Buckets(ctx context.Context, r Request) (map[string][]Hour, error) {
	ps, names, _, err := c.pieces(ctx, r)
	if err != nil {
		return nil, err
	}
	// Two passes over the values: count each customer's, then place them.
	at := make([]int, len(names)+1)
	keep := r.keeper(names)
	for _, p := range ps {
		for i, n := range p.idx {
			if keep(p, i) {
				at[n+1]++
			}
		}
	}
	for i := 1; i < len(at); i++ {
		at[i] += at[i-1]
	}
	all := make([]Hour, at[len(names)])
	out := map[string][]Hour{}
	for n, name := range names {
		if at[n+1] > at[n] {
			out[name] = all[at[n]:at[n+1]:at[n+1]]
		}
	}
	for _, p := range ps {
		start := span{p.FromMs, p.ToMs}.hour()
		for i, n := range p.idx {
			if keep(p, i) {
				v := &p.Values[i]
				all[at[n]] = Hour{Start: start, Value: v.Value, HasValue: v.HasValue, Events: v.Events}
				at[n]++
			}
		}
	}
	return out, nil
}

// keeper tells whether a piece's i-th value is in its customer's window:
// always without GroupFrom.
func (r Request) keeper(names []string) func(p *piece, i int) bool {
	if len(r.GroupFrom) == 0 {
		return func(*piece, int) bool { return true }
	}
	starts := make([]int64, len(names))
	for n, name := range names {
		starts[n] = r.start(name)
	}
	return func(p *piece, i int) bool { return r.belongs(starts[p.idx[i]], span{p.FromMs, p.ToMs}) }
}

// Totals is every customer's value over its window, as
// backtest.Window.AllGroups gives them (customers with matched events).
// Unique meters, whose values do not combine over hours, take one engine
// query over the window.
func (c *Cache) Totals(ctx context.Context, r Request) (map[string]backtest.Group, error) {
	var groups []backtest.Group
	if r.aggregation() == rules.AggUnique {
		vs, err := versions(r.Meter, r.From, r.To)
		if err != nil {
			return nil, err
		}
		res, err := backtest.Usage(ctx, c.store, vs, backtest.Window{From: r.From, To: r.To, Bucket: backtest.BucketDay, Top: 1,
			AllGroups: true, GroupFrom: r.GroupFrom})
		if err != nil {
			return nil, err
		}
		groups = res.Groups
	} else {
		ps, names, _, err := c.pieces(ctx, r)
		if err != nil {
			return nil, err
		}
		sums := make([]backtest.Sum, len(names))
		keep := r.keeper(names)
		for _, p := range ps {
			for i, n := range p.idx {
				if keep(p, i) {
					v := &p.Values[i]
					gb := backtest.GroupBucket{Events: v.Events, ValueErrors: v.Errors}
					if v.HasValue {
						gb.Value = &v.Value
					}
					sums[n].Add(r.aggregation(), gb)
				}
			}
		}
		for n := range sums {
			if sums[n].Events > 0 {
				groups = append(groups, sums[n].Group(names[n]))
			}
		}
	}
	out := make(map[string]backtest.Group, len(groups))
	for _, g := range groups {
		out[g.Key] = g
	}
	return out, nil
}

// Result is the backtest result of the meter over w (validated; its
// GroupFrom and Ranges are not used), as backtest.Usage gives it: one
// customer's with w.Group. Engine and Fallback tell what the queries this
// call ran used (sql when every piece was kept). Unique meters take one
// engine query over the window.
func (c *Cache) Result(ctx context.Context, m *registry.Meter, w backtest.Window, now time.Time) (*backtest.Result, error) {
	start := time.Now()
	r := Request{Meter: m, From: w.From, To: w.To, Now: now}
	agg := r.aggregation()
	if agg == rules.AggUnique {
		vs, err := versions(m, w.From, w.To)
		if err != nil {
			return nil, err
		}
		return backtest.Usage(ctx, c.store, vs, w)
	}
	gbs, fallback, err := c.groupBuckets(ctx, r)
	if err != nil {
		return nil, err
	}
	if w.Group != "" {
		var mine []backtest.GroupBucket
		for _, gb := range gbs {
			if gb.Group == w.Group {
				mine = append(mine, gb)
			}
		}
		gbs = mine
	}
	res := backtest.Rollup(agg, w, gbs)
	if res.ScannedEvents, err = backtest.Scanned(ctx, c.store, m.Latest().GroupBy, w); err != nil {
		return nil, err
	}
	res.Engine, res.Fallback = backtest.EngineSQL, fallback
	if fallback != "" {
		res.Engine = backtest.EngineVM
	}
	res.TookMs = time.Since(start).Milliseconds()
	return res, nil
}

// groupBuckets are the values of the pieces of every customer's window,
// in time order.
func (c *Cache) groupBuckets(ctx context.Context, r Request) ([]backtest.GroupBucket, string, error) {
	ps, names, fallback, err := c.pieces(ctx, r)
	if err != nil {
		return nil, "", err
	}
	keep := r.keeper(names)
	var out []backtest.GroupBucket
	for _, p := range ps {
		at := time.UnixMilli(span{p.FromMs, p.ToMs}.hour()).UTC()
		for i := range p.Values {
			if !keep(p, i) {
				continue
			}
			v := p.Values[i]
			gb := backtest.GroupBucket{Group: v.Customer, Start: at, Events: v.Events, ValueErrors: v.Errors}
			if v.HasValue {
				gb.Value = &v.Value
			}
			out = append(out, gb)
		}
	}
	return out, fallback, nil
}

// versions are the engine versions of m in force over [from, to).
func versions(m *registry.Meter, from, to time.Time) ([]backtest.Version, error) {
	spans, err := m.Spans(from, to)
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("hours: meter %s has no version in force over %s..%s", m.ID, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	vs := make([]backtest.Version, len(spans))
	for i, sp := range spans {
		vs[i] = backtest.Version{Meter: sp.Meter, From: sp.From}
	}
	return vs, nil
}
