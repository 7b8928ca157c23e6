package backtest

import (
	"maps"
	"slices"
	"time"

	"github.com/meterd/meterd/rules"
)

// Rollup is the result of a backtest over w rolled up from its customers'
// values per hour (or part of an hour), as engine/hours keeps them: the
// buckets of w's width, the groups (w.Top of them, or all with
// w.AllGroups), the total, matched events and value errors. Counts and
// sums add up, max and min keep the largest or smallest value; unique
// values do not combine (callers query those). ScannedEvents, Engine and
// TookMs are the caller's.
func Rollup(agg string, w Window, gbs []GroupBucket) *Result {
	width := w.bucketMs()
	var total Sum
	buckets, groups := map[int64]*Sum{}, map[string]*Sum{}
	for _, gb := range gbs {
		ms := gb.Start.UnixMilli()
		b := ms - ms%width
		for _, a := range []*Sum{&total, get(buckets, b), get(groups, gb.Group)} {
			a.Add(agg, gb)
		}
	}
	res := &Result{Total: emptyTotal(agg), Buckets: []Bucket{}, Groups: []Group{}, MatchedEvents: total.Events, ValueErrors: total.Errors}
	if total.Events > 0 {
		res.Total = total.Value()
	}
	for _, b := range slices.Sorted(maps.Keys(buckets)) {
		a := buckets[b]
		res.Buckets = append(res.Buckets, Bucket{Start: time.UnixMilli(b).UTC(), Value: a.Value(), Events: a.Events})
	}
	for g, a := range groups {
		res.Groups = append(res.Groups, a.Group(g))
	}
	res.Groups = w.keepGroups(res.Groups)
	return res
}

// Sum folds the group buckets of one aggregation: counts and sums add up,
// max and min keep the largest or smallest value (a bucket whose values
// all failed has none); matched events and value errors add up.
type Sum struct {
	value          float64
	has            bool
	Events, Errors int64
}

func get[K comparable](m map[K]*Sum, k K) *Sum {
	a := m[k]
	if a == nil {
		a = &Sum{}
		m[k] = a
	}
	return a
}

// Add folds in one bucket of a meter aggregating by agg.
func (a *Sum) Add(agg string, gb GroupBucket) {
	a.Events += gb.Events
	a.Errors += gb.ValueErrors
	switch {
	case agg == rules.AggSum || agg == rules.AggCount:
		if gb.Value != nil {
			a.value += *gb.Value
		}
		a.has = true
	case gb.Value == nil:
	case !a.has, agg == rules.AggMax && *gb.Value > a.value, agg == rules.AggMin && *gb.Value < a.value:
		a.value, a.has = *gb.Value, true
	}
}

// Value is the folded value, nil when none.
func (a *Sum) Value() *float64 { return valuePtr(a.value, a.has) }

// Group is the folded value as group key's.
func (a *Sum) Group(key string) Group { return Group{Key: key, Value: a.Value(), Events: a.Events} }
