package backtest

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/sqlgen"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// The largest matches patterns that validation accepts compile in both
// stores' RE2 and answer as the VM: re2.ProgramSize never lets through a
// program RE2 refuses ("pattern too large", which was a 503), end-anchored
// ones included (RE2 also compiles those backwards, on half the budget).
func TestLargestAcceptedPatternsRunAsSQL(t *testing.T) {
	ctx := context.Background()
	s := newDiffStores(t)
	w := patternEvents(t, s, time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), "/v1/search", "/"+strings.Repeat("é", 120), "/"+strings.Repeat("Straße", 200), "/"+strings.Repeat("Ǆ9_", 400))
	for _, class := range []string{`\pL`, `\p{Lu}`, `[\pL\pN_-]`, `(?i)ǆ`, `.`} {
		for _, end := range []string{"", "$"} {
			// n: the most copies accepted (Go's regexp allows 1000).
			n := sort.Search(1000, func(i int) bool { return !accepted(class, i+1, end) })
			if n < 1 {
				t.Fatalf("%s: not even one copy is accepted", class)
			}
			if n < 1000 && !strings.Contains(compileErrOf(class, n+1, end), "too large") {
				t.Errorf("%s{%d}%s: refused, but not as too large: %s", class, n+1, end, compileErrOf(class, n+1, end))
			}
			m := compile(t, patternMeter(class, n, end))
			s.check(t, ctx, m.Def.Filter, []Version{{Meter: m}}, w, true)
		}
	}
}

func patternMeter(class string, n int, end string) rules.Definition {
	pattern := class + "{1," + strconv.Itoa(n) + "}" + end
	return rules.Definition{Name: "p", Filter: "request.route matches " + strconv.Quote(pattern), Aggregation: rules.AggCount}
}

func accepted(class string, n int, end string) bool { return compileErrOf(class, n, end) == "" }

func compileErrOf(class string, n int, end string) string {
	if _, err := rules.Compile(patternMeter(class, n, end)); err != nil {
		return err.Error()
	}
	return ""
}

// patternEvents stores a call per route in both stores, a minute apart
// from at, and returns the hour holding them.
func patternEvents(t *testing.T, s *diffStores, at time.Time, routes ...string) Window {
	var evs []storage.Event
	for i, route := range routes {
		evs = append(evs, regEvent{route: route}.event(at.Format("pat-20060102-")+strconv.Itoa(i), at.Add(time.Duration(i)*time.Minute)))
	}
	insert(t, s.duck, evs)
	if s.ch != nil {
		insert(t, s.ch, evs)
	}
	return Window{From: at, To: at.Add(time.Hour), Bucket: BucketHour}
}

// What SQL cannot run in a store runs on the VM there, and Backtest says
// why: a query longer than ClickHouse parses (max_query_size, 256 KiB;
// DuckDB has no limit), and a pattern too large for RE2 in a version
// saved before validation checked its size.
func TestStoreLimitsFallBackToVM(t *testing.T) {
	ctx := context.Background()
	s := newDiffStores(t)
	w := patternEvents(t, s, time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC), "/api/1", "/v1/search", "/é/7")
	// 30 patterns of 10 KB each once normalised (\pL is 650 ranges).
	var clauses []string
	for i := range 30 {
		clauses = append(clauses, `request.route matches "\\pL/`+strconv.Itoa(i)+`"`)
	}
	long := compile(t, rules.Definition{Filter: strings.Join(clauses, " or "), Aggregation: rules.AggCount})
	saved, err := rules.CompileSaved(rules.Definition{Name: "old", Filter: `request.route matches "\\pL{1000}" or request.route matches "^/api"`, Aggregation: rules.AggCount})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Compile(saved.Def); err == nil {
		t.Fatal("validation accepts \\pL{1000}")
	}
	for _, c := range []struct {
		m        *rules.Meter
		backend  string // where SQL cannot run it
		fallback string
	}{
		{long, "clickhouse", "more than clickhouse parses (262144)"},
		{saved, "duckdb", "the pattern is too large for the stores' RE2"},
		{saved, "clickhouse", "the pattern is too large for the stores' RE2"},
	} {
		st := map[string]storage.Store{"duckdb": s.duck, "clickhouse": s.ch}[c.backend]
		if st == nil {
			continue
		}
		want, err := BacktestVM(ctx, st, c.m, w)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Backtest(ctx, st, c.m, w)
		if err != nil {
			t.Fatalf("%s: %v", c.backend, err)
		}
		if got.Engine != EngineVM || !strings.Contains(got.Fallback, c.fallback) || want.MatchedEvents == 0 || compareResults(got, want, tol{}) != "" {
			t.Errorf("%s: engine %s, fallback %q, matched %d (VM %d); want the VM, saying %q", c.backend, got.Engine, got.Fallback, got.MatchedEvents, want.MatchedEvents, c.fallback)
		}
		var un *sqlgen.ErrUntranslatable
		if _, err := BacktestSQL(ctx, st, c.m, w); !errors.As(err, &un) {
			t.Errorf("%s: engine sql: %v, want ErrUntranslatable", c.backend, err)
		}
	}
	// DuckDB runs the long query as SQL.
	if got, err := Backtest(ctx, s.duck, long, w); err != nil || got.Engine != EngineSQL || got.MatchedEvents != 2 {
		t.Errorf("duckdb: %v, %+v", err, got)
	}
}
