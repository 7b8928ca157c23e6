package backtest

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// runVM is the reference: every event of the window through the meter's
// VM program (rules.Meter.Eval) and rules.Aggregator, once per group (for
// groups) and once over all groups (for buckets and the total).
func runVM(ctx context.Context, st storage.Store, vs []Version, w Window) (*Result, error) {
	agg := vs[0].Meter.Def.Aggregation
	byGroup := rules.NewAggregator(agg)
	byBucket := rules.NewAggregator(agg)
	var byGroupBucket *rules.Aggregator
	if w.GroupBuckets {
		byGroupBucket = rules.NewAggregator(agg)
	}
	width := w.bucketMs()
	var scanned int64
	starts := w.groupFromMs()
	f := storage.EventFilter{From: w.From, To: w.To}
	if w.Group != "" && vs[0].Meter.Def.GroupBy == rules.GroupByUser {
		f.UserID = w.Group
	} else if w.Group != "" {
		f.CompanyID = w.Group
	}
	err := st.ScanEvents(ctx, f, func(e *storage.Event) error {
		if !w.inRanges(e.Time.UnixMilli()) {
			return nil
		}
		scanned++
		if scanned%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		env, err := rules.EnvFromEvent(*e)
		if err != nil {
			return fmt.Errorf("engine: event %s: %w", e.ID, err)
		}
		ms := e.Time.UnixMilli()
		m := versionAt(vs, ms)
		g := m.GroupKey(&env)
		if start, ok := starts[g]; ok && ms < start {
			return nil // before its group's own window
		}
		r := m.Eval(&env)
		byGroup.Add(g, 0, r)
		byBucket.Add("", ms-ms%width, r)
		if byGroupBucket != nil {
			byGroupBucket.Add(g, ms-ms%width, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &Result{Engine: EngineVM, ScannedEvents: scanned, Total: emptyTotal(agg), Buckets: []Bucket{}, Groups: []Group{}}
	for _, row := range byBucket.Totals() {
		res.Total = valuePtr(row.Value, row.HasValue)
		res.MatchedEvents, res.ValueErrors = row.Matched, row.ValueErrors
	}
	for _, row := range byBucket.Buckets() {
		res.Buckets = append(res.Buckets, Bucket{Start: time.UnixMilli(row.Bucket).UTC(), Value: valuePtr(row.Value, row.HasValue), Events: row.Matched})
	}
	sortBuckets(res.Buckets)
	for _, row := range byGroup.Totals() {
		res.Groups = append(res.Groups, Group{Key: row.Group, Value: valuePtr(row.Value, row.HasValue), Events: row.Matched})
	}
	res.Groups = w.keepGroups(res.Groups)
	if byGroupBucket != nil {
		for _, row := range byGroupBucket.Buckets() {
			res.GroupBuckets = append(res.GroupBuckets, GroupBucket{Group: row.Group, Start: time.UnixMilli(row.Bucket).UTC(), Value: valuePtr(row.Value, row.HasValue), Events: row.Matched, ValueErrors: row.ValueErrors})
		}
		sortGroupBuckets(res.GroupBuckets)
	}
	return res, nil
}
