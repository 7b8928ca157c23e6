package backtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/sqlgen"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// The differential test: random events and random meters, run as SQL on
// DuckDB, as SQL on ClickHouse (when METERD_TEST_CLICKHOUSE is set; CI
// requires it) and on the VM (the reference, over the DuckDB store's
// events). They must agree on scanned and matched events, value errors,
// every bucket, every group and the total (sums within 1e-9 of the sum of
// the absolute values added; everything else exactly).
//
// A case is 10 to 50 events and 8 meters generated from one seed (plus the
// first two as two versions of one meter, switching mid-window); case i of
// a run with base seed S has the seed S+i and the time slot i (its events'
// times). Which cases run:
//
//   - always (and only these when CI=true): the fixed cases, fixedCases
//     of them from fixedSeed. They must cover the language: every
//     construct of requiredCoverage (coverage_test.go) compared with the
//     VM on every store, or the test fails. About a minute and a half on
//     both stores on the reference machine.
//   - outside CI, METERD_DIFF_RANDOM more cases (default 30) from a base
//     seed taken from the clock, to keep hunting.
//   - METERD_DIFF_SEED=S instead runs METERD_DIFF_CASES cases (default 300)
//     from base seed S, or with METERD_DIFF_CASE=i only case i.
//
// Each run uses fresh stores; a failure prints the command that
// reproduces it exactly.

// diffStores holds the stores of one test run. Each case writes its events
// into its own time range, so one database serves every case.
type diffStores struct {
	duck  storage.Store
	ch    storage.Store // nil without ClickHouse
	stats *diffStats
}

type diffStats struct {
	mu             sync.Mutex
	cases, meters  int
	rejected       int // by rules.Compile
	compared       map[string]int
	untranslatable map[string]int
	uncertain      map[string]int
	covered        map[string]map[string]int // backend → construct → meters compared
}

func newDiffStores(t testing.TB) *diffStores {
	s := &diffStores{duck: openDuck(t), stats: &diffStats{compared: map[string]int{}, untranslatable: map[string]int{}, uncertain: map[string]int{},
		covered: map[string]map[string]int{}}}
	if ch := openClickHouse(t); ch != nil {
		s.ch = ch
	}
	return s
}

func (s *diffStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("cases %d, meters %d (rejected by Compile %d), compared %v, untranslatable %v, uncertain %v",
		s.cases, s.meters, s.rejected, s.compared, s.untranslatable, s.uncertain)
}

// diffCase is one data set and meters over it.
type diffCase struct {
	name   string
	base   time.Time
	span   time.Duration
	events []storage.Event
	defs   []rules.Definition
}

// caseBase gives every case its own hour-aligned range: 3 days each.
func caseBase(i int) time.Time {
	return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 72 * time.Hour)
}

func randomCase(seed uint64, slot int) diffCase {
	r := rand.New(rand.NewPCG(seed, 0x646966))
	base := caseBase(slot)
	span := time.Duration(1+r.IntN(48)) * time.Hour
	eg := &eventGen{r: r, base: base, span: span, weird: r.IntN(5) == 0}
	c := diffCase{name: "seed " + strconv.FormatUint(seed, 10), base: base, span: span, events: eg.events(10 + r.IntN(40))}
	xg := &exprGen{r: r, used: map[string]int{}}
	for range 8 {
		c.defs = append(c.defs, xg.meter())
	}
	return c
}

// run inserts the case's events and checks every meter.
func (s *diffStores) run(t *testing.T, c diffCase) {
	t.Helper()
	ctx := context.Background()
	insert(t, s.duck, c.events)
	if s.ch != nil {
		insert(t, s.ch, c.events)
	}
	s.stats.mu.Lock()
	s.stats.cases++
	s.stats.mu.Unlock()
	bucket := BucketHour
	switch {
	case c.span > 30*time.Hour:
		bucket = BucketDay
	case c.span <= 4*time.Hour:
		bucket = BucketMinute
	}
	// The window starts mid-bucket sometimes, to cover partial buckets.
	w := Window{From: c.base.Add(-time.Duration(len(c.events)%2) * 30 * time.Minute), To: c.base.Add(c.span), Bucket: bucket, Top: MaxTop}
	var compiled []*rules.Meter
	for _, d := range c.defs {
		s.stats.mu.Lock()
		s.stats.meters++
		s.stats.mu.Unlock()
		m, err := rules.Compile(d)
		if err != nil {
			s.stats.mu.Lock()
			s.stats.rejected++
			s.stats.mu.Unlock()
			continue
		}
		compiled = append(compiled, m)
		s.cover(s.check(t, ctx, c.name, []Version{{Meter: m}}, w, false), constructs(m))
	}
	// Two versions in one query: the first two meters (the second made
	// to share the first's aggregation and group_by), the second taking
	// effect mid-window at a millisecond that is no bucket boundary.
	if len(compiled) >= 2 {
		d0, d1 := compiled[0].Def, compiled[1].Def
		d1.Aggregation, d1.GroupBy = d0.Aggregation, d0.GroupBy
		if d0.Aggregation == rules.AggCount {
			d1.Value = ""
		}
		if m1, err := rules.Compile(d1); err == nil {
			split := c.base.Add(c.span/2 + 1234567*time.Microsecond).Truncate(time.Millisecond)
			vs := []Version{{Meter: compiled[0]}, {Meter: m1, From: split}}
			covered := append(constructs(compiled[0]), "two versions")
			if compiled[0].CountsBlocked() != m1.CountsBlocked() {
				covered = append(covered, "two versions, one counting blocked calls")
			}
			s.cover(s.check(t, ctx, c.name+" (two versions)", vs, w, false), covered)
		}
	}
}

// cover counts the constructs of a meter compared on the backends.
func (s *diffStores) cover(backends, constructs []string) {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	for _, b := range backends {
		if s.stats.covered[b] == nil {
			s.stats.covered[b] = map[string]int{}
		}
		for _, k := range constructs {
			s.stats.covered[b][k]++
		}
	}
}

// backends names the stores in s.
func (s *diffStores) backends() []string {
	b := []string{s.duck.Backend()}
	if s.ch != nil {
		b = append(b, s.ch.Backend())
	}
	return b
}

// check compares the SQL engines with the VM for one meter and returns
// the backends whose SQL answered and agreed. With requireSQL, an
// untranslatable or uncertain meter is a failure too.
func (s *diffStores) check(t *testing.T, ctx context.Context, name string, vs []Version, w Window, requireSQL bool) []string {
	t.Helper()
	want, err := Run(ctx, s.duck, vs, w, VM)
	if err != nil {
		t.Fatalf("%s: vm: %v", name, err)
	}
	tol, err := tolerances(ctx, s.duck, vs, w)
	if err != nil {
		t.Fatal(err)
	}
	var agreed []string
	for _, st := range []storage.Store{s.duck, s.ch} {
		if st == nil {
			continue
		}
		got, err := Run(ctx, st, vs, w, SQL)
		var un *sqlgen.ErrUntranslatable
		var unc *ErrUncertain
		if requireSQL && (errors.As(err, &un) || errors.As(err, &unc)) {
			t.Errorf("%s: %s: the SQL path must answer: %v", name, st.Backend(), err)
			continue
		}
		switch {
		case errors.As(err, &un):
			s.count(s.stats.untranslatable, un.Construct)
			continue
		case errors.As(err, &unc):
			for _, why := range unc.Reasons {
				s.count(s.stats.uncertain, st.Backend()+": "+why)
			}
			continue
		case err != nil:
			t.Errorf("%s: %s: %s: %v", name, st.Backend(), describe(vs), err)
			continue
		}
		s.count(s.stats.compared, st.Backend())
		if diff := compareResults(got, want, tol); diff != "" {
			var sqlText string
			for _, v := range vs {
				x, _ := sqlgen.Explain(mustDialect(st.Backend()), v.Meter)
				sqlText += x
			}
			t.Errorf("%s: %s disagrees with the VM\n%s\n%s\nper-event SQL:\n%s",
				name, st.Backend(), describe(vs), diff, truncate(sqlText, 3000))
			continue
		}
		agreed = append(agreed, st.Backend())
	}
	return agreed
}

func (s *diffStores) count(m map[string]int, k string) {
	s.stats.mu.Lock()
	m[k]++
	s.stats.mu.Unlock()
}

func mustDialect(backend string) sqlgen.Dialect {
	d, _ := sqlgen.DialectFor(backend)
	return d
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// tol holds, per bucket, group and for the total, the sum of the absolute
// values a sum meter added: floating-point sums in another order differ by
// at most a few ulps of it.
type tol struct {
	sum     bool
	buckets map[int64]float64
	groups  map[string]float64
	total   float64
}

func tolerances(ctx context.Context, st storage.Store, vs []Version, w Window) (tol, error) {
	tl := tol{sum: vs[0].Meter.Def.Aggregation == rules.AggSum, buckets: map[int64]float64{}, groups: map[string]float64{}}
	width := w.bucketMs()
	err := st.ScanEvents(ctx, storage.EventFilter{From: w.From, To: w.To}, func(e *storage.Event) error {
		env, err := rules.EnvFromEvent(*e)
		if err != nil {
			return err
		}
		m := versionAt(vs, e.Time.UnixMilli())
		r := m.Eval(&env)
		if !r.Matched || r.ValueError {
			return nil
		}
		a := math.Abs(r.Value)
		ms := e.Time.UnixMilli()
		tl.buckets[ms-ms%width] += a
		tl.groups[m.GroupKey(&env)] += a
		tl.total += a
		return nil
	})
	return tl, err
}

// describe names the meter versions for a failure message.
func describe(vs []Version) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			fmt.Fprintf(&b, "\nfrom %s: ", v.From.UTC().Format(time.RFC3339Nano))
		}
		d := v.Meter.Def
		fmt.Fprintf(&b, "filter: %s\nvalue:  %s (%s, %s)", d.Filter, d.Value, d.Aggregation, d.GroupBy)
	}
	return b.String()
}

func sameValue(got, want *float64, scale float64, sum bool) bool {
	switch {
	case got == nil || want == nil:
		return got == nil && want == nil
	case *got == *want:
		return true
	case !sum:
		return false
	case math.IsInf(scale, 0) || math.IsNaN(scale):
		return true // the terms overflow: any order gives another answer
	}
	return math.Abs(*got-*want) <= 1e-9*scale
}

func fmtValue(v *float64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// compareResults returns "" when got agrees with want, else the
// differences.
func compareResults(got, want *Result, tl tol) string {
	var d []string
	if got.ScannedEvents != want.ScannedEvents || got.MatchedEvents != want.MatchedEvents || got.ValueErrors != want.ValueErrors {
		d = append(d, fmt.Sprintf("scanned/matched/value errors: got %d/%d/%d, want %d/%d/%d",
			got.ScannedEvents, got.MatchedEvents, got.ValueErrors, want.ScannedEvents, want.MatchedEvents, want.ValueErrors))
	}
	if !sameValue(got.Total, want.Total, tl.total, tl.sum) {
		d = append(d, fmt.Sprintf("total: got %s, want %s", fmtValue(got.Total), fmtValue(want.Total)))
	}
	gb := map[int64]Bucket{}
	for _, b := range got.Buckets {
		gb[b.Start.UnixMilli()] = b
	}
	for _, b := range want.Buckets {
		ms := b.Start.UnixMilli()
		g, ok := gb[ms]
		delete(gb, ms)
		if !ok || g.Events != b.Events || !sameValue(g.Value, b.Value, tl.buckets[ms], tl.sum) {
			d = append(d, fmt.Sprintf("bucket %s: got %s (%d events), want %s (%d events)", b.Start.Format(time.RFC3339), fmtValue(g.Value), g.Events, fmtValue(b.Value), b.Events))
		}
	}
	for ms, g := range gb {
		d = append(d, fmt.Sprintf("bucket %s: got %s (%d events), want none", time.UnixMilli(ms).UTC().Format(time.RFC3339), fmtValue(g.Value), g.Events))
	}
	gg := map[string]Group{}
	for _, g := range got.Groups {
		gg[g.Key] = g
	}
	for _, w := range want.Groups {
		g, ok := gg[w.Key]
		delete(gg, w.Key)
		if !ok || g.Events != w.Events || !sameValue(g.Value, w.Value, tl.groups[w.Key], tl.sum) {
			d = append(d, fmt.Sprintf("group %q: got %s (%d events), want %s (%d events)", w.Key, fmtValue(g.Value), g.Events, fmtValue(w.Value), w.Events))
		}
	}
	for k, g := range gg {
		d = append(d, fmt.Sprintf("group %q: got %s (%d events), want none", k, fmtValue(g.Value), g.Events))
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// The fixed cases (see the top of this file). 200 cases cover every
// required construct on both stores; changing the generators changes what
// they cover, which the coverage check then tells.
const (
	fixedSeed  = 20250101
	fixedCases = 200
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

func TestDifferential(t *testing.T) {
	if v := os.Getenv("METERD_DIFF_SEED"); v != "" {
		base, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("METERD_DIFF_SEED=%q: %v", v, err)
		}
		first, n := 0, envInt("METERD_DIFF_CASES", 300)
		if i, err := strconv.Atoi(os.Getenv("METERD_DIFF_CASE")); err == nil {
			first, n = i, 1
		}
		runCases(t, base, first, n)
		return
	}
	t.Run("fixed", func(t *testing.T) {
		s := runCases(t, fixedSeed, 0, fixedCases)
		if t.Failed() {
			return
		}
		t.Logf("least compared constructs: %s", leastCovered(s.stats.covered, s.backends(), 8))
		if miss := missingCoverage(s.stats.covered, s.backends()); len(miss) > 0 {
			t.Errorf("the fixed cases never compared these constructs with the VM (raise fixedCases or change fixedSeed):\n%s", joinLines(miss))
		}
	})
	// The same cases on a ClickHouse cluster of two shards, where every
	// query goes through Distributed tables.
	t.Run("cluster", func(t *testing.T) {
		cl := openCluster(t)
		if cl == nil {
			t.Skip("METERD_TEST_CLICKHOUSE_CLUSTER not set")
		}
		s := newDiffStores(t)
		s.ch = cl
		runCasesOn(t, s, fixedSeed, 0, fixedCases)
	})
	if os.Getenv("CI") == "true" {
		return
	}
	if n := envInt("METERD_DIFF_RANDOM", 30); n > 0 {
		t.Run("random", func(t *testing.T) {
			runCases(t, uint64(time.Now().UnixNano()), 0, n)
		})
	}
}

// runCases runs cases first..first+n-1 of base seed base on fresh stores,
// stopping at the first that fails, and tells how to reproduce it.
func runCases(t *testing.T, base uint64, first, n int) *diffStores {
	return runCasesOn(t, newDiffStores(t), base, first, n)
}

func runCasesOn(t *testing.T, s *diffStores, base uint64, first, n int) *diffStores {
	t.Logf("cases %d..%d of METERD_DIFF_SEED=%d on %v", first, first+n-1, base, s.backends())
	for i := first; i < first+n; i++ {
		s.run(t, randomCase(base+uint64(i), i))
		if t.Failed() {
			t.Logf("case %d failed; reproduce it with\n  METERD_DIFF_SEED=%d METERD_DIFF_CASE=%d METERD_TEST_CLICKHOUSE=%s go test -count=1 -run 'TestDifferential$' ./engine/backtest/",
				i, base, i, os.Getenv("METERD_TEST_CLICKHOUSE"))
			break
		}
	}
	t.Log(s.stats)
	return s
}

// FuzzDifferential runs the same comparison on fuzzer-chosen seeds, each
// on fresh stores in time slot 0 (so METERD_DIFF_SEED=seed
// METERD_DIFF_CASE=0 reproduces one too):
// go test -run '^$' -fuzz FuzzDifferential ./engine
func FuzzDifferential(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(seed)
	}
	clickhouseDSN(f) // fails early in CI without ClickHouse
	f.Fuzz(func(t *testing.T, seed uint64) {
		s := newDiffStores(t)
		s.run(t, randomCase(seed, 0))
		if t.Failed() {
			t.Logf("reproduce with METERD_DIFF_SEED=%d METERD_DIFF_CASE=0", seed)
		}
	})
}
