// Package bench measures backtests on a store: the engine's SQL path,
// the VM path, and a hand-written SQL query computing the same answer,
// for a typical meter over eventgen traffic (meterd bench backtest).
package bench

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meterd/meterd/engine"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// The typical meter: a filter on status, route prefix and a metadata key;
// the sum of a metadata value; hourly buckets over 30 days; by company.
var Typical = rules.Definition{
	Name:        "tokens on /v1",
	Filter:      `response.status == 200 and request.route startsWith "/v1/" and metadata.region == "eu-west"`,
	Value:       "metadata.tokens",
	Aggregation: rules.AggSum,
	GroupBy:     rules.GroupByCompany,
}

// Span of the generated traffic and of the backtest window.
var (
	From = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	To   = From.Add(30 * 24 * time.Hour)
)

// Report is one run's figures.
type Report struct {
	Backend   string        `json:"backend"`
	Events    int           `json:"events"`
	Load      time.Duration `json:"load_ns"`
	SQL       time.Duration `json:"sql_ns"`  // engine.BacktestSQL
	VM        time.Duration `json:"vm_ns"`   // engine.BacktestVM
	Hand      time.Duration `json:"hand_ns"` // the hand-written query
	Matched   int64         `json:"matched_events"`
	Agree     bool          `json:"agree"` // SQL, VM and hand-written give the same totals
	SkippedVM bool          `json:"skipped_vm,omitempty"`
}

// VMOverHand and the other ratios.
func (r Report) SQLSpeedup() float64  { return float64(r.VM) / float64(r.SQL) }
func (r Report) SQLOverHand() float64 { return float64(r.SQL) / float64(r.Hand) }

func (r Report) String() string {
	s := fmt.Sprintf("%s, %d events (loaded in %s): sql %s, hand-written %s (sql/hand %.2f)",
		r.Backend, r.Events, r.Load.Round(time.Millisecond), r.SQL.Round(time.Millisecond), r.Hand.Round(time.Millisecond), r.SQLOverHand())
	if !r.SkippedVM {
		s += fmt.Sprintf(", vm %s (vm/sql %.1fx)", r.VM.Round(time.Millisecond), r.SQLSpeedup())
	}
	return s + fmt.Sprintf(", matched %d, agree %v", r.Matched, r.Agree)
}

// Options of RunBacktest.
type Options struct {
	Load   bool // generate and insert the events first (into an empty store)
	SkipVM bool // the VM takes minutes at 10M events
	Runs   int  // timed runs of each query; the best counts (default 3)
}

// RunBacktest loads n eventgen events over 30 days into st (when
// o.Load), then times the typical meter's backtest on each path.
func RunBacktest(ctx context.Context, st storage.Store, n int, o Options) (Report, error) {
	r := Report{Backend: st.Backend(), Events: n, SkippedVM: o.SkipVM}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Load {
		start := time.Now()
		if err := Load(ctx, st, n); err != nil {
			return r, err
		}
		r.Load = time.Since(start)
	}
	m, err := rules.Compile(Typical)
	if err != nil {
		return r, err
	}
	w := engine.Window{From: From, To: To, Bucket: engine.BucketHour, Top: 10}

	var sqlRes *engine.Result
	r.SQL, err = best(o.Runs, func() error {
		sqlRes, err = engine.BacktestSQL(ctx, st, m, w)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("sql: %w", err)
	}
	var hand handResult
	r.Hand, err = best(o.Runs, func() error {
		hand, err = handWritten(ctx, st)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("hand-written: %w", err)
	}
	r.Matched = sqlRes.MatchedEvents
	r.Agree = hand.matched == sqlRes.MatchedEvents && hand.errors == sqlRes.ValueErrors &&
		hand.scanned == sqlRes.ScannedEvents && close(hand.total, *sqlRes.Total) && len(hand.buckets) == len(sqlRes.Buckets)
	if !o.SkipVM {
		var vmRes *engine.Result
		r.VM, err = best(1, func() error {
			vmRes, err = engine.BacktestVM(ctx, st, m, w)
			return err
		})
		if err != nil {
			return r, fmt.Errorf("vm: %w", err)
		}
		r.Agree = r.Agree && vmRes.MatchedEvents == sqlRes.MatchedEvents && vmRes.ValueErrors == sqlRes.ValueErrors &&
			close(*vmRes.Total, *sqlRes.Total)
	}
	return r, nil
}

func close(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func best(runs int, f func() error) (time.Duration, error) {
	var min time.Duration
	for i := range runs {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		if d := time.Since(start); i == 0 || d < min {
			min = d
		}
	}
	return min, nil
}

// Load inserts n eventgen events over [From, To) in batches.
func Load(ctx context.Context, st storage.Store, n int) error {
	const batch = 50_000
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		// Each batch covers its share of the 30 days, in order.
		from := From.Add(time.Duration(float64(To.Sub(From)) * float64(i) / float64(n)))
		to := From.Add(time.Duration(float64(To.Sub(From)) * float64(i+k) / float64(n)))
		evs := eventgen.Generate(int64(i/batch+1), k, from, to)
		if _, err := st.Insert(ctx, evs); err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	return nil
}

type handResult struct {
	scanned, matched, errors int64
	total                    float64
	buckets                  map[int64]float64
	groups                   map[string]float64
}

// handWritten is the query a person would write for the typical meter:
// one GROUP BY (hour, company) over the filtered rows, rolled up in Go.
func handWritten(ctx context.Context, st storage.Store) (handResult, error) {
	var q string
	from, to := From.UnixMilli(), To.UnixMilli()
	switch st.Backend() {
	case "duckdb":
		q = fmt.Sprintf(`SELECT b, company_id, CAST(count(*) AS BIGINT), CAST(count(*) FILTER (WHERE t <> 2) AS BIGINT),
  coalesce(sum(v) FILTER (WHERE t = 2), 0), (SELECT count(*) FROM events WHERE time_ms >= %[1]d AND time_ms < %[2]d)
FROM (SELECT time_ms - time_ms %% 3600000 AS b, company_id,
    coalesce(meta_types[list_position(meta_keys, 'tokens')], 0) AS t, coalesce(meta_nums[list_position(meta_keys, 'tokens')], 0) AS v
  FROM events
  WHERE time_ms >= %[1]d AND time_ms < %[2]d AND has_response AND status = 200 AND starts_with(route, '/v1/')
    AND meta_types[list_position(meta_keys, 'region')] = 3 AND meta_strs[list_position(meta_keys, 'region')] = 'eu-west')
GROUP BY b, company_id`, from, to)
	case "clickhouse":
		q = fmt.Sprintf(`SELECT toInt64(time_ms - time_ms %% 3600000) AS b, company_id, toInt64(count()),
  toInt64(countIf((meta_types[indexOf(meta_keys, 'tokens')] AS t) != 2)), sumIf(meta_nums[indexOf(meta_keys, 'tokens')], t = 2),
  toInt64((SELECT count() FROM events WHERE time_ms >= %[1]d AND time_ms < %[2]d))
FROM events
WHERE time_ms >= %[1]d AND time_ms < %[2]d AND has_response AND status = 200 AND startsWith(route, '/v1/')
  AND meta_types[indexOf(meta_keys, 'region')] = 3 AND meta_strs[indexOf(meta_keys, 'region')] = 'eu-west'
GROUP BY b, company_id`, from, to)
	default:
		return handResult{}, fmt.Errorf("no hand-written query for %s", st.Backend())
	}
	rows, err := st.Query(ctx, strings.TrimSpace(q))
	if err != nil {
		return handResult{}, err
	}
	defer rows.Close()
	h := handResult{buckets: map[int64]float64{}, groups: map[string]float64{}}
	for rows.Next() {
		var b, n, e, scanned int64
		var g string
		var v float64
		if err := rows.Scan(&b, &g, &n, &e, &v, &scanned); err != nil {
			return h, err
		}
		h.scanned = scanned
		h.matched += n
		h.errors += e
		h.total += v
		h.buckets[b] += v
		h.groups[g] += v
	}
	return h, rows.Err()
}
