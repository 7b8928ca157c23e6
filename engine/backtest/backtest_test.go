package backtest

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/duckdb"
	"github.com/meterd/meterd/storage/eventgen"
)

var (
	genFrom = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	genTo   = genFrom.Add(3 * 24 * time.Hour)
)

func openDuck(t testing.TB) *duckdb.Store {
	t.Helper()
	s, err := duckdb.Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func insert(t testing.TB, st storage.Store, events []storage.Event) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), 5000)
		if _, err := st.Insert(context.Background(), events[:n]); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
}

func compile(t testing.TB, d rules.Definition) *rules.Meter {
	t.Helper()
	if d.Name == "" {
		d.Name = "m"
	}
	m, err := rules.Compile(d)
	if err != nil {
		t.Fatalf("compile %+v: %v", d, err)
	}
	return m
}

func TestSimpleMeterSQLMatchesVM(t *testing.T) {
	st := openDuck(t)
	insert(t, st, eventgen.Generate(1, 5000, genFrom, genTo))
	m := compile(t, rules.Definition{
		Filter:      `response.status == 200 and request.route startsWith "/v1/"`,
		Value:       "metadata.tokens",
		Aggregation: rules.AggSum,
	})
	w := Window{From: genFrom, To: genTo, Bucket: BucketHour, Top: 100}
	ctx := context.Background()
	got, err := BacktestSQL(ctx, st, m, w)
	if err != nil {
		t.Fatal(err)
	}
	want, err := BacktestVM(ctx, st, m, w)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	t.Logf("sql: %.400s", g)
	t.Logf("vm:  %.400s", wj)
	if got.MatchedEvents != want.MatchedEvents || got.ValueErrors != want.ValueErrors || got.ScannedEvents != want.ScannedEvents {
		t.Fatalf("sql %d/%d/%d, vm %d/%d/%d", got.MatchedEvents, got.ValueErrors, got.ScannedEvents, want.MatchedEvents, want.ValueErrors, want.ScannedEvents)
	}
}

func TestWindowValidate(t *testing.T) {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		w     Window
		field string
	}{
		{Window{To: from, Bucket: BucketHour}, "from"},
		{Window{From: from, Bucket: BucketHour}, "to"},
		{Window{From: from, To: from, Bucket: BucketHour}, "to"},
		{Window{From: from, To: from.Add(401 * 24 * time.Hour), Bucket: BucketHour}, "from"},
		{Window{From: from, To: from.Add(time.Hour)}, "bucket"},
		{Window{From: from, To: from.Add(time.Hour), Bucket: "week"}, "bucket"},
		{Window{From: from, To: from.Add(time.Hour), Bucket: BucketDay, Top: 1001}, "top"},
		{Window{From: from, To: from.Add(time.Hour), Bucket: BucketDay, Top: -1}, "top"},
		{Window{From: time.Unix(-1, 0), To: from, Bucket: BucketDay}, "from"},
	}
	for _, c := range cases {
		err := c.w.Validate()
		we, ok := err.(*fault.Error)
		if !ok || we.Code != CodeInvalidWindow || we.Field != c.field {
			t.Errorf("%+v: got %v, want an error on %s", c.w, err, c.field)
		}
	}
	w := Window{From: from, To: from.Add(400 * 24 * time.Hour), Bucket: BucketHour}
	if err := w.Validate(); err != nil || w.Top != DefaultTop {
		t.Fatalf("valid window: %v, top %d", err, w.Top)
	}
	if n := w.buckets(); n != 9600 {
		t.Fatalf("buckets = %d, want 9600", n)
	}
}

// Auto falls back to the VM for an untranslatable meter and says why;
// the answer is the VM's.
func TestFallbackToVM(t *testing.T) {
	st := openDuck(t)
	insert(t, st, eventgen.Generate(2, 500, genFrom, genTo))
	m := compile(t, rules.Definition{Filter: "response.status == 200", Value: "request.body_size ** 3", Aggregation: rules.AggSum})
	w := Window{From: genFrom, To: genTo, Bucket: BucketDay}
	ctx := context.Background()
	if _, err := BacktestSQL(ctx, st, m, w); err == nil {
		t.Fatal("BacktestSQL of ** 3 should fail")
	}
	got, err := Backtest(ctx, st, m, w)
	if err != nil {
		t.Fatal(err)
	}
	if got.Engine != EngineVM || got.Fallback == "" {
		t.Fatalf("engine %q, fallback %q", got.Engine, got.Fallback)
	}
	want, _ := BacktestVM(ctx, st, m, w)
	if got.MatchedEvents != want.MatchedEvents || *got.Total != *want.Total || got.MatchedEvents == 0 {
		t.Fatalf("got %d/%v, want %d/%v", got.MatchedEvents, *got.Total, want.MatchedEvents, *want.Total)
	}

	// Uncertain rows: lower() of non-ASCII text (eventgen's models).
	m = compile(t, rules.Definition{Filter: `lower(metadata.model) == "tiny-ü"`, Aggregation: rules.AggCount})
	got, err = Backtest(ctx, st, m, w)
	if err != nil {
		t.Fatal(err)
	}
	if got.Engine != EngineVM || got.Fallback == "" || got.MatchedEvents == 0 {
		t.Fatalf("engine %q, fallback %q, matched %d", got.Engine, got.Fallback, got.MatchedEvents)
	}
	// A typical meter runs as SQL.
	m = compile(t, rules.Definition{Filter: `response.status == 200`, Value: "metadata.tokens", Aggregation: rules.AggSum})
	if got, err = Backtest(ctx, st, m, w); err != nil || got.Engine != EngineSQL || got.Fallback != "" {
		t.Fatalf("engine %q, fallback %q, err %v", got.Engine, got.Fallback, err)
	}
}

// Usage applies each version to the events of its span, in one query.
func TestUsageVersions(t *testing.T) {
	ctx := context.Background()
	s := newDiffStores(t)
	evs := eventgen.Generate(3, 2000, genFrom, genTo)
	insert(t, s.duck, evs)
	if s.ch != nil {
		insert(t, s.ch, evs)
	}
	v1 := compile(t, rules.Definition{Filter: `response.status == 200`, Value: "metadata.tokens", Aggregation: rules.AggSum})
	v2 := compile(t, rules.Definition{Filter: `request.route startsWith "/v1/"`, Value: "request.body_size", Aggregation: rules.AggSum})
	split := genFrom.Add(36*time.Hour + 17*time.Minute)
	vs := []Version{{Meter: v1}, {Meter: v2, From: split}}
	w := Window{From: genFrom, To: genTo, Bucket: BucketHour, Top: MaxTop}
	want, err := Run(ctx, s.duck, vs, w, VM)
	if err != nil {
		t.Fatal(err)
	}
	// The VM's answer is the two windows' answers added up.
	a, _ := BacktestVM(ctx, s.duck, v1, Window{From: genFrom, To: split, Bucket: BucketHour})
	b, _ := BacktestVM(ctx, s.duck, v2, Window{From: split, To: genTo, Bucket: BucketHour})
	if want.MatchedEvents != a.MatchedEvents+b.MatchedEvents || math.Abs(*want.Total-(*a.Total+*b.Total)) > 1e-6 {
		t.Fatalf("versions: %d/%v, parts %d+%d / %v+%v", want.MatchedEvents, *want.Total, a.MatchedEvents, b.MatchedEvents, *a.Total, *b.Total)
	}
	tl := tol{sum: true, total: math.Inf(1)} // sums compared loosely here; exactness is the differential test's
	for _, st := range []storage.Store{s.duck, s.ch} {
		if st == nil {
			continue
		}
		got, err := Run(ctx, st, vs, w, SQL)
		if err != nil {
			t.Fatal(err)
		}
		if got.MatchedEvents != want.MatchedEvents || got.ValueErrors != want.ValueErrors || len(got.Buckets) != len(want.Buckets) || len(got.Groups) != len(want.Groups) {
			t.Fatalf("%s: %s", st.Backend(), compareResults(got, want, tl))
		}
		if math.Abs(*got.Total-*want.Total) > 1e-9*math.Abs(*want.Total) {
			t.Fatalf("%s: total %v, want %v", st.Backend(), *got.Total, *want.Total)
		}
	}
	// Versions must keep aggregation and group_by.
	v3 := compile(t, rules.Definition{Filter: `true`, Aggregation: rules.AggCount})
	if _, err := Usage(ctx, s.duck, []Version{{Meter: v1}, {Meter: v3, From: split}}, w); err == nil {
		t.Fatal("versions with different aggregations should fail")
	}
}

// The JSON shape of the API.
func TestResultJSON(t *testing.T) {
	v := 2.5
	r := Result{Buckets: []Bucket{{Start: genFrom, Value: &v, Events: 2}}, Groups: []Group{{Key: "", Value: nil, Events: 1}},
		Total: &v, MatchedEvents: 2, ScannedEvents: 3, ValueErrors: 1, Engine: EngineSQL, TookMs: 4}
	b, _ := json.Marshal(r)
	want := `{"buckets":[{"start":"2025-01-01T00:00:00Z","value":2.5,"events":2}],"groups":[{"key":"","value":null,"events":1}],"total":2.5,"matched_events":2,"scanned_events":3,"value_errors":1,"engine":"sql","took_ms":4}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

// AllGroups lists every customer, not only the Top, each with the value a
// backtest restricted to that customer gives, on every store and the VM.
func TestAllGroups(t *testing.T) {
	s := newDiffStores(t)
	evs := eventgen.Generate(3, 4000, genFrom, genTo)
	ctx := context.Background()
	for _, agg := range []struct{ agg, value string }{{rules.AggUnique, "user_id"}, {rules.AggMax, "metadata.tokens ?? 0"}, {rules.AggSum, "1"}} {
		m := compile(t, rules.Definition{Filter: `user_id != ""`, Value: agg.value, Aggregation: agg.agg})
		vs := []Version{{Meter: m, From: genFrom}}
		for _, st := range []storage.Store{s.duck, s.ch} {
			if st == nil {
				continue
			}
			if agg.agg == rules.AggUnique { // once per store
				insert(t, st, evs)
			}
			for _, e := range []Engine{SQL, VM} {
				res, err := Run(ctx, st, vs, Window{From: genFrom, To: genTo, Bucket: BucketDay, Top: 3, AllGroups: true}, e)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Groups) != eventgen.Companies {
					t.Fatalf("%s %s %s: %d groups, want all %d", agg.agg, st.Backend(), e, len(res.Groups), eventgen.Companies)
				}
				for _, g := range res.Groups {
					one, err := Run(ctx, st, vs, Window{From: genFrom, To: genTo, Bucket: BucketDay, Group: g.Key}, e)
					if err != nil {
						t.Fatal(err)
					}
					if fmtValue(one.Total) != fmtValue(g.Value) || one.MatchedEvents != g.Events {
						t.Errorf("%s %s %s: group %s is %s (%d events), alone %s (%d events)", agg.agg, st.Backend(), e,
							g.Key, fmtValue(g.Value), g.Events, fmtValue(one.Total), one.MatchedEvents)
					}
				}
			}
		}
	}
}
