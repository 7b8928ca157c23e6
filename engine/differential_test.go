package engine

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
// METERD_DIFF_CASES sets the number of random cases (default 300).

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
}

func newDiffStores(t testing.TB) *diffStores {
	s := &diffStores{duck: openDuck(t), stats: &diffStats{compared: map[string]int{}, untranslatable: map[string]int{}, uncertain: map[string]int{}}}
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
	if c.span > 30*time.Hour {
		bucket = BucketDay
	}
	// The window starts mid-bucket sometimes, to cover partial buckets.
	w := Window{From: c.base.Add(-time.Duration(len(c.events)%2) * 30 * time.Minute), To: c.base.Add(c.span), Bucket: bucket, Top: MaxTop}
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
		s.check(t, ctx, c.name, m, w, false)
	}
}

// check compares the SQL engines with the VM for one meter. With
// requireSQL, an untranslatable or uncertain meter is a failure too.
func (s *diffStores) check(t *testing.T, ctx context.Context, name string, m *rules.Meter, w Window, requireSQL bool) bool {
	t.Helper()
	want, err := BacktestVM(ctx, s.duck, m, w)
	if err != nil {
		t.Fatalf("%s: vm: %v", name, err)
	}
	tol, err := tolerances(ctx, s.duck, m, w)
	if err != nil {
		t.Fatal(err)
	}
	ok := true
	for _, st := range []storage.Store{s.duck, s.ch} {
		if st == nil {
			continue
		}
		got, err := BacktestSQL(ctx, st, m, w)
		var un *sqlgen.ErrUntranslatable
		var unc *ErrUncertain
		if requireSQL && (errors.As(err, &un) || errors.As(err, &unc)) {
			t.Errorf("%s: %s: the SQL path must answer: %v", name, st.Backend(), err)
			ok = false
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
			t.Errorf("%s: %s: filter %q value %q (%s): %v", name, st.Backend(), m.Def.Filter, m.Def.Value, m.Def.Aggregation, err)
			ok = false
			continue
		}
		s.count(s.stats.compared, st.Backend())
		if diff := compareResults(got, want, tol); diff != "" {
			sqlText, _ := sqlgen.Explain(mustDialect(st.Backend()), m)
			t.Errorf("%s: %s disagrees with the VM\nfilter: %s\nvalue:  %s (%s, %s)\n%s\nper-event SQL:\n%s",
				name, st.Backend(), m.Def.Filter, m.Def.Value, m.Def.Aggregation, m.Def.GroupBy, diff, truncate(sqlText, 3000))
			ok = false
		}
	}
	return ok
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

func tolerances(ctx context.Context, st storage.Store, m *rules.Meter, w Window) (tol, error) {
	tl := tol{sum: m.Def.Aggregation == rules.AggSum, buckets: map[int64]float64{}, groups: map[string]float64{}}
	width := w.bucketMs()
	err := st.ScanEvents(ctx, storage.EventFilter{From: w.From, To: w.To}, func(e *storage.Event) error {
		env, err := rules.EnvFromEvent(*e)
		if err != nil {
			return err
		}
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

func diffCases() int {
	if n, err := strconv.Atoi(os.Getenv("METERD_DIFF_CASES")); err == nil && n > 0 {
		return n
	}
	return 300
}

func TestDifferential(t *testing.T) {
	s := newDiffStores(t)
	n := diffCases()
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("METERD_DIFF_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("METERD_DIFF_SEED=%d", seed)
	for i := range n {
		c := randomCase(seed+uint64(i), i)
		s.run(t, c)
		if t.Failed() {
			t.Logf("failing case: METERD_DIFF_SEED=%d case %d (seed %d)", seed, i, seed+uint64(i))
			break
		}
	}
	t.Log(s.stats)
}

// FuzzDifferential runs the same comparison on fuzzer-chosen seeds:
// go test -run '^$' -fuzz FuzzDifferential ./engine
func FuzzDifferential(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(seed)
	}
	s := newDiffStores(f)
	slot := 0
	f.Fuzz(func(t *testing.T, seed uint64) {
		slot++ // each case in its own time range
		s.run(t, randomCase(seed, slot))
	})
}
