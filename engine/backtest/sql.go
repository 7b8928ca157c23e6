package backtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meterd/meterd/engine/sqlgen"
	"github.com/meterd/meterd/storage"
)

var errNoDialect = errors.New("engine: no SQL dialect for this store")

// plan translates the versions for the store's dialect.
func plan(st storage.Store, vs []Version, w Window) (sqlgen.Dialect, *sqlgen.Plan, error) {
	d, ok := sqlgen.DialectFor(st.Backend())
	if !ok {
		return nil, nil, fmt.Errorf("%w (%s)", errNoDialect, st.Backend())
	}
	spans := make([]sqlgen.Span, len(vs))
	for i, v := range vs {
		spans[i] = sqlgen.Span{Meter: v.Meter, FromMs: v.From.UnixMilli()}
	}
	p, err := sqlgen.Query(d, spans, sqlgen.Window{
		FromMs: w.From.UnixMilli(), ToMs: w.To.UnixMilli(), BucketMs: w.bucketMs(),
		Limit: w.rowLimit(), Group: w.Group, GroupBuckets: w.GroupBuckets, GroupFromMs: w.groupFromMs(), Ranges: w.Ranges,
		Live: storage.LiveCondition(st),
	})
	return d, p, err
}

// runSQL runs the backtest as one query (see sqlgen.Plan for its rows).
func runSQL(ctx context.Context, st storage.Store, vs []Version, w Window) (*Result, error) {
	_, p, err := plan(st, vs, w)
	if err != nil {
		return nil, err
	}
	rows, err := st.Query(ctx, p.SQL)
	if err != nil {
		return nil, fmt.Errorf("engine: backtest query: %w", err)
	}
	defer rows.Close()
	agg := vs[0].Meter.Def.Aggregation
	res := &Result{Engine: EngineSQL, Total: emptyTotal(agg), Buckets: []Bucket{}, Groups: []Group{}}
	var unc, uncMask int64
	sawRow := false
	for rows.Next() {
		var set, bucket, events, errs, has, uncertain, mask, scanned int64
		var grp string
		var value float64
		if err := rows.Scan(&set, &bucket, &grp, &events, &errs, &value, &has, &uncertain, &mask, &scanned); err != nil {
			return nil, fmt.Errorf("engine: backtest row: %w", err)
		}
		sawRow = true
		res.ScannedEvents = scanned
		switch set {
		case 0:
			unc, uncMask = uncertain, mask
			res.MatchedEvents, res.ValueErrors = events, errs
			if events > 0 {
				res.Total = valuePtr(value, has != 0)
			}
		case 1:
			if events > 0 {
				res.Buckets = append(res.Buckets, Bucket{Start: time.UnixMilli(bucket).UTC(), Value: valuePtr(value, has != 0), Events: events})
			}
		case 2:
			if events > 0 {
				res.Groups = append(res.Groups, Group{Key: grp, Value: valuePtr(value, has != 0), Events: events})
			}
		case 3:
			if events > 0 {
				res.GroupBuckets = append(res.GroupBuckets, GroupBucket{Group: grp, Start: time.UnixMilli(bucket).UTC(), Value: valuePtr(value, has != 0), Events: events, ValueErrors: errs})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("engine: backtest query: %w", err)
	}
	if unc > 0 {
		var why []string
		for i, r := range p.Uncertain {
			if uncMask&(1<<i) != 0 {
				why = append(why, r)
			}
		}
		return nil, &ErrUncertain{Events: unc, Reasons: why}
	}
	if !sawRow { // nothing matched (ClickHouse then returns no row)
		if res.ScannedEvents, err = countEvents(ctx, st, p.CountSQL); err != nil {
			return nil, err
		}
	}
	sortBuckets(res.Buckets)
	sortGroupBuckets(res.GroupBuckets)
	res.Groups = w.keepGroups(res.Groups)
	return res, nil
}

func countEvents(ctx context.Context, st storage.Store, query string) (int64, error) {
	rows, err := st.Query(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("engine: count query: %w", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return n, rows.Err()
}

// Scanned counts the events a backtest over w of a meter grouping by
// groupBy scans (Result.ScannedEvents).
func Scanned(ctx context.Context, st storage.Store, groupBy string, w Window) (int64, error) {
	d, ok := sqlgen.DialectFor(st.Backend())
	if !ok {
		return 0, fmt.Errorf("%w (%s)", errNoDialect, st.Backend())
	}
	return countEvents(ctx, st, sqlgen.CountQuery(d, groupBy, sqlgen.Window{
		FromMs: w.From.UnixMilli(), ToMs: w.To.UnixMilli(), Group: w.Group, Ranges: w.Ranges, Live: storage.LiveCondition(st)}))
}
