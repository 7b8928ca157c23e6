// Package bench measures backtests on a store: the engine's SQL path,
// the VM path, and a hand-written SQL query computing the same answer,
// for a typical meter over eventgen traffic (meterd bench backtest).
package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/meterd/meterd/engine/backtest"
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
	Runs      int           `json:"runs"` // timed runs of SQL and hand-written (best counts); the VM runs once
	Load      time.Duration `json:"load_ns"`
	SQL       time.Duration `json:"sql_ns"`  // backtest.BacktestSQL
	VM        time.Duration `json:"vm_ns"`   // backtest.BacktestVM
	Hand      time.Duration `json:"hand_ns"` // the hand-written query
	Matched   int64         `json:"matched_events"`
	Total     float64       `json:"total"`
	Agree     bool          `json:"agree"` // SQL, VM and hand-written give the same answer
	Disagree  []string      `json:"disagreements,omitempty"`
	SkippedVM bool          `json:"skipped_vm,omitempty"`
}

// SQLSpeedup is VM time over SQL time (target: at least 20).
func (r Report) SQLSpeedup() float64 { return float64(r.VM) / float64(r.SQL) }

// SQLOverHand is SQL time over hand-written time (target: at most 1.5).
func (r Report) SQLOverHand() float64 { return float64(r.SQL) / float64(r.Hand) }

// Targets of issue 3.
const (
	TargetSpeedup  = 20.0
	TargetOverHand = 1.5
	DefaultEvents  = 10_000_000
	DefaultRuns    = 3
	agreeRelTol    = 1e-9
	typicalTop     = 10
)

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
	Runs   int  // timed runs of the SQL and hand-written queries, alternated; the best counts (default 3)
	// Progress, when set, is told what is happening (loading, timing).
	Progress func(format string, args ...any)
}

// RunBacktest loads n eventgen events over 30 days into st (when
// o.Load), then times the typical meter's backtest on each path and
// checks that the three answers agree.
func RunBacktest(ctx context.Context, st storage.Store, n int, o Options) (Report, error) {
	if o.Runs <= 0 {
		o.Runs = DefaultRuns
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	r := Report{Backend: st.Backend(), Events: n, SkippedVM: o.SkipVM, Runs: o.Runs}
	if o.Load {
		progress("loading %d events", n)
		start := time.Now()
		if err := Load(ctx, st, n, progress); err != nil {
			return r, err
		}
		r.Load = time.Since(start)
	}
	m, err := rules.Compile(Typical)
	if err != nil {
		return r, err
	}
	w := backtest.Window{From: From, To: To, Bucket: backtest.BucketHour, Top: typicalTop}

	var sqlRes *backtest.Result
	var hand handResult
	for i := range o.Runs {
		progress("sql and hand-written queries, run %d of %d", i+1, o.Runs)
		start := time.Now()
		if sqlRes, err = backtest.BacktestSQL(ctx, st, m, w); err != nil {
			return r, fmt.Errorf("sql: %w", err)
		}
		if d := time.Since(start); i == 0 || d < r.SQL {
			r.SQL = d
		}
		start = time.Now()
		if hand, err = handWritten(ctx, st); err != nil {
			return r, fmt.Errorf("hand-written: %w", err)
		}
		if d := time.Since(start); i == 0 || d < r.Hand {
			r.Hand = d
		}
	}
	r.Matched = sqlRes.MatchedEvents
	if sqlRes.Total != nil {
		r.Total = *sqlRes.Total
	}
	r.Disagree = append(r.Disagree, hand.disagreements(sqlRes)...)
	if !o.SkipVM {
		progress("vm")
		start := time.Now()
		vmRes, err := backtest.BacktestVM(ctx, st, m, w)
		if err != nil {
			return r, fmt.Errorf("vm: %w", err)
		}
		r.VM = time.Since(start)
		r.Disagree = append(r.Disagree, disagreements("vm", vmRes, sqlRes)...)
	}
	r.Agree = len(r.Disagree) == 0 && r.Matched > 0
	return r, nil
}

func add(p *float64, v float64) *float64 {
	if p != nil {
		v += *p
	}
	return &v
}

func closeTo(a, b float64) bool {
	return math.Abs(a-b) <= agreeRelTol*math.Max(math.Abs(a), math.Abs(b))
}

func fval(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// disagreements lists where result a (named what) differs from the SQL
// result b: counts, total, every bucket and the top groups.
func disagreements(what string, a, b *backtest.Result) []string {
	var d []string
	if a.ScannedEvents != b.ScannedEvents || a.MatchedEvents != b.MatchedEvents || a.ValueErrors != b.ValueErrors {
		d = append(d, fmt.Sprintf("%s: scanned/matched/value errors %d/%d/%d, sql %d/%d/%d", what,
			a.ScannedEvents, a.MatchedEvents, a.ValueErrors, b.ScannedEvents, b.MatchedEvents, b.ValueErrors))
	}
	if !closeTo(fval(a.Total), fval(b.Total)) {
		d = append(d, fmt.Sprintf("%s: total %v, sql %v", what, fval(a.Total), fval(b.Total)))
	}
	if len(a.Buckets) != len(b.Buckets) {
		d = append(d, fmt.Sprintf("%s: %d buckets, sql %d", what, len(a.Buckets), len(b.Buckets)))
	} else {
		for i := range a.Buckets {
			x, y := a.Buckets[i], b.Buckets[i]
			if !x.Start.Equal(y.Start) || x.Events != y.Events || !closeTo(fval(x.Value), fval(y.Value)) {
				d = append(d, fmt.Sprintf("%s: bucket %s: %v (%d events), sql %s: %v (%d events)", what,
					x.Start.Format(time.RFC3339), fval(x.Value), x.Events, y.Start.Format(time.RFC3339), fval(y.Value), y.Events))
				break
			}
		}
	}
	if len(a.Groups) != len(b.Groups) {
		d = append(d, fmt.Sprintf("%s: %d groups, sql %d", what, len(a.Groups), len(b.Groups)))
	} else {
		for i := range a.Groups {
			x, y := a.Groups[i], b.Groups[i]
			if x.Key != y.Key || x.Events != y.Events || !closeTo(fval(x.Value), fval(y.Value)) {
				d = append(d, fmt.Sprintf("%s: group %d: %q %v (%d events), sql %q %v (%d events)", what, i, x.Key, fval(x.Value), x.Events, y.Key, fval(y.Value), y.Events))
				break
			}
		}
	}
	return d
}

// Load inserts n eventgen events over [From, To) in batches, telling
// progress (when not nil) at every tenth.
func Load(ctx context.Context, st storage.Store, n int, progress func(format string, args ...any)) error {
	const batch = 50_000
	next := n / 10
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		// Each batch covers its share of the 30 days, in order.
		from := From.Add(time.Duration(float64(To.Sub(From)) * float64(i) / float64(n)))
		to := From.Add(time.Duration(float64(To.Sub(From)) * float64(i+k) / float64(n)))
		evs := eventgen.Generate(int64(i/batch+1), k, from, to)
		if _, err := st.Insert(ctx, evs); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if progress != nil && i+k >= next && i+k < n {
			progress("loaded %d events", i+k)
			next += n / 10
		}
	}
	return nil
}

type handResult struct {
	scanned, matched, errors int64
	total                    float64
	buckets                  map[int64]backtest.Bucket
	groups                   map[string]backtest.Group
}

// disagreements compares with the SQL result, as a Result: buckets in
// time order, the top groups as backtest.Result orders them.
func (h handResult) disagreements(sql *backtest.Result) []string {
	res := &backtest.Result{ScannedEvents: h.scanned, MatchedEvents: h.matched, ValueErrors: h.errors, Total: &h.total}
	for _, b := range h.buckets {
		res.Buckets = append(res.Buckets, b)
	}
	slices.SortFunc(res.Buckets, func(a, b backtest.Bucket) int { return a.Start.Compare(b.Start) })
	for _, g := range h.groups {
		res.Groups = append(res.Groups, g)
	}
	slices.SortFunc(res.Groups, func(a, b backtest.Group) int {
		return cmp.Or(-cmp.Compare(*a.Value, *b.Value), -cmp.Compare(a.Events, b.Events), cmp.Compare(a.Key, b.Key))
	})
	res.Groups = res.Groups[:min(len(res.Groups), typicalTop)]
	return disagreements("hand-written", res, sql)
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
  toInt64((SELECT count() FROM events WHERE time_ms >= %[1]d AND time_ms < %[2]d AND %[3]s))
FROM events
WHERE time_ms >= %[1]d AND time_ms < %[2]d AND %[3]s AND has_response AND status = 200 AND startsWith(route, '/v1/')
  AND meta_types[indexOf(meta_keys, 'region')] = 3 AND meta_strs[indexOf(meta_keys, 'region')] = 'eu-west'
GROUP BY b, company_id`, from, to, storage.LiveCondition(st))
	default:
		return handResult{}, fmt.Errorf("no hand-written query for %s", st.Backend())
	}
	rows, err := st.Query(ctx, strings.TrimSpace(q))
	if err != nil {
		return handResult{}, err
	}
	defer rows.Close()
	h := handResult{buckets: map[int64]backtest.Bucket{}, groups: map[string]backtest.Group{}}
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
		bk := h.buckets[b]
		bk.Start, bk.Value, bk.Events = time.UnixMilli(b).UTC(), add(bk.Value, v), bk.Events+n
		h.buckets[b] = bk
		gr := h.groups[g]
		gr.Key, gr.Value, gr.Events = g, add(gr.Value, v), gr.Events+n
		h.groups[g] = gr
	}
	return h, rows.Err()
}
