package engine

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
	var total acc
	buckets, groups := map[int64]*acc{}, map[string]*acc{}
	for _, gb := range gbs {
		ms := gb.Start.UnixMilli()
		b := ms - ms%width
		for _, a := range []*acc{&total, get(buckets, b), get(groups, gb.Group)} {
			a.add(agg, gb)
		}
	}
	res := &Result{Total: emptyTotal(agg), Buckets: []Bucket{}, Groups: []Group{}, MatchedEvents: total.events, ValueErrors: total.errs}
	if total.events > 0 {
		res.Total = valuePtr(total.value, total.has)
	}
	for _, b := range slices.Sorted(maps.Keys(buckets)) {
		a := buckets[b]
		res.Buckets = append(res.Buckets, Bucket{Start: time.UnixMilli(b).UTC(), Value: valuePtr(a.value, a.has), Events: a.events})
	}
	for g, a := range groups {
		res.Groups = append(res.Groups, Group{Key: g, Value: valuePtr(a.value, a.has), Events: a.events})
	}
	res.Groups = w.keepGroups(res.Groups)
	return res
}

// acc folds group buckets of one aggregation.
type acc struct {
	value        float64
	has          bool
	events, errs int64
}

func get[K comparable](m map[K]*acc, k K) *acc {
	a := m[k]
	if a == nil {
		a = &acc{}
		m[k] = a
	}
	return a
}

func (a *acc) add(agg string, gb GroupBucket) {
	a.events += gb.Events
	a.errs += gb.ValueErrors
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
