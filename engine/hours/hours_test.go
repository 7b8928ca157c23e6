package hours_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
	"github.com/meterd/meterd/storage/eventgen"
	"github.com/meterd/meterd/storage/storetest"
)

var ctx = context.Background()

// testStores opens a fresh DuckDB store and, where configured, a fresh
// ClickHouse database and a fresh database on the ClickHouse cluster.
func testStores(t *testing.T) map[string]func(t *testing.T) storage.Store {
	open := func(t *testing.T, dsn string) storage.Store {
		st, err := backends.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	out := map[string]func(t *testing.T) storage.Store{
		"duckdb": func(t *testing.T) storage.Store { return open(t, "duckdb://"+t.TempDir()+"/h.duckdb") },
	}
	if storetest.ClickHouseDSN(t) != "" {
		out["clickhouse"] = func(t *testing.T) storage.Store { return open(t, storetest.FreshClickHouseDSN(t, "meterd_hours")) }
	}
	if storetest.ClickHouseClusterDSN(t) != "" {
		out["cluster"] = func(t *testing.T) storage.Store { return open(t, storetest.FreshClusterDSN(t, "meterd_hours_cluster")) }
	}
	return out
}

// The meters of the differential test: every aggregation that combines
// over hours, each with a second version that counts otherwise. Sums add
// integers, so that every answer must be equal to the last bit.
var meters = []struct{ v1, v2 registry.Spec }{
	{registry.Spec{Filter: `request.route startsWith "/v1/"`, Value: "request.body_size", Aggregation: rules.AggSum, GroupBy: rules.GroupByCompany},
		registry.Spec{Filter: `response.status == 200`, Value: "response.body_size", Aggregation: rules.AggSum, GroupBy: rules.GroupByCompany}},
	{registry.Spec{Filter: `response.status == 200`, Aggregation: rules.AggCount, GroupBy: rules.GroupByCompany},
		registry.Spec{Filter: `response.status >= 400`, Aggregation: rules.AggCount, GroupBy: rules.GroupByCompany}},
	{registry.Spec{Filter: `request.verb == "POST"`, Value: "metadata.tokens", Aggregation: rules.AggMax, GroupBy: rules.GroupByCompany},
		registry.Spec{Filter: `request.verb == "GET"`, Value: "metadata.tokens", Aggregation: rules.AggMax, GroupBy: rules.GroupByCompany}},
	{registry.Spec{Filter: `true`, Value: "metadata.tokens", Aggregation: rules.AggMin, GroupBy: rules.GroupByUser},
		registry.Spec{Filter: `response.status < 300`, Value: "request.body_size", Aggregation: rules.AggMin, GroupBy: rules.GroupByUser}},
}

// TestCacheMatchesFullRecompute is the differential test: events arrive in
// random order over simulated hours (late ones, duplicates retried with
// other times), meters get new versions, and after each round every
// answer from the hours kept equals one engine query over the whole
// window: billing's hour buckets of a current and a past period (which
// start and end inside an hour), governance's per-customer totals from
// each customer's own start, and the API's results (hourly and daily, a
// window starting inside an hour). Two caches share the store, as two
// processes would.
func TestCacheMatchesFullRecompute(t *testing.T) {
	for name, open := range testStores(t) {
		t.Run(name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			if s := os.Getenv("METERD_HOURS_SEED"); s != "" {
				seed, _ = strconv.ParseUint(s, 10, 64)
			}
			t.Logf("seed %d (METERD_HOURS_SEED=%[1]d reproduces it)", seed)
			differential(t, open(t), seed)
		})
	}
}

func differential(t *testing.T, st storage.Store, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	now := time.Date(2026, 6, 10, 5, 0, 0, 0, time.UTC)
	reg := registry.New(st, func() time.Time { return now })
	var ids []string
	for i, m := range meters {
		d := rules.Definition{Name: fmt.Sprintf("m%d", i), Filter: m.v1.Filter, Value: m.v1.Value, Aggregation: m.v1.Aggregation, GroupBy: m.v1.GroupBy}
		cm, err := reg.Create(ctx, d, "", "test")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cm.ID)
	}
	period := now.Add(-50*time.Hour + 17*time.Minute + 23*time.Second) // Stripe periods start at any second
	past := period.Add(-31*time.Hour - 41*time.Minute)
	caches := []*hours.Cache{hours.New(st), hours.New(st)}
	var stored []storage.Event
	for r := range 10 {
		now = now.Add(time.Duration(20+rng.IntN(50)) * time.Minute)
		stored = append(stored, ingest(t, st, rng, uint64(seed)+uint64(r), now, past, stored)...)
		if r%3 == 1 { // a new version of a meter, from now or a little later
			i := rng.IntN(len(meters))
			m, err := reg.Get(ctx, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			spec := meters[i].v2
			if len(m.Versions)%2 == 0 {
				spec = meters[i].v1
			}
			if _, err := reg.AddVersion(ctx, ids[i], spec, now.Add(time.Duration(rng.IntN(90))*time.Minute), "test"); err != nil {
				t.Fatal(err)
			}
		}
		c := caches[rng.IntN(2)]
		round := hours.NewRound()
		starts := map[string]time.Time{}
		for i := range eventgen.Companies {
			if rng.IntN(2) == 0 {
				starts["company-"+strconv.Itoa(i)] = period.Add(time.Duration(rng.Int64N(int64(now.Sub(period)))))
			}
		}
		for u := range 30 {
			starts["user-"+strconv.Itoa(u)] = period.Add(time.Duration(rng.Int64N(int64(now.Sub(period)))))
		}
		for _, id := range ids {
			m, err := reg.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			where := fmt.Sprintf("round %d, meter %s (%s, %d versions)", r, m.Name, m.Latest().Aggregation, len(m.Versions))
			checkBuckets(t, c, m, period, now, now, round, where+", current period")
			checkBuckets(t, c, m, past, period, now, round, where+", past period")
			checkTotals(t, c, m, period, now, starts, where)
			from := period.Add(time.Duration(rng.Int64N(int64(now.Sub(period)))))
			bucket := []string{backtest.BucketHour, backtest.BucketDay}[rng.IntN(2)]
			checkResult(t, c, m, backtest.Window{From: from, To: now.Add(time.Hour), Bucket: bucket, Top: 5}, now, where)
			checkResult(t, c, m, backtest.Window{From: past, To: now, Bucket: backtest.BucketHour, Top: 3, Group: "company-3"}, now, where+", one customer")
		}
	}
}

// ingest stores a round's events in random order and batches: new ones
// from the last half hour, late ones from any hour since the past period
// began, and retries of stored ones (some with another time: duplicates
// all the same).
func ingest(t *testing.T, st storage.Store, rng *rand.Rand, seed uint64, now, since time.Time, stored []storage.Event) []storage.Event {
	t.Helper()
	fresh := eventgen.Generate(int64(seed), 40+rng.IntN(40), now.Add(-30*time.Minute), now)
	for range 1 + rng.IntN(3) {
		at := since.Add(time.Duration(rng.Int64N(int64(now.Sub(since)))))
		late := eventgen.Generate(int64(seed)<<8+int64(rng.IntN(200)), 1+rng.IntN(8), at, at.Add(10*time.Minute))
		for i := range late {
			late[i].ID += "-late"
		}
		fresh = append(fresh, late...)
	}
	batch := append([]storage.Event(nil), fresh...)
	for range min(len(stored), rng.IntN(10)) {
		e := stored[rng.IntN(len(stored))]
		if rng.IntN(2) == 0 {
			e.Time = now.Add(-time.Duration(rng.IntN(100)) * time.Hour)
		}
		batch = append(batch, e)
	}
	rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	for len(batch) > 0 {
		n := min(len(batch), 1+rng.IntN(40))
		for i := range batch[:n] {
			batch[i].ReceivedAt = time.Now().UTC().Truncate(time.Millisecond)
		}
		if _, err := st.Insert(ctx, batch[:n]); err != nil {
			t.Fatal(err)
		}
		batch = batch[n:]
	}
	return fresh
}

// usage is the full recompute: the meter's versions over [from, to) in
// one engine query.
func usage(t *testing.T, st storage.Store, m *registry.Meter, w backtest.Window) *backtest.Result {
	t.Helper()
	spans, err := m.Spans(w.From, w.To)
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]backtest.Version, len(spans))
	for i, sp := range spans {
		vs[i] = backtest.Version{Meter: sp.Meter, From: sp.From}
	}
	res, err := backtest.Usage(ctx, st, vs, w)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkBuckets compares billing's buckets; requests of one round (not 0)
// share what changed, as a billing cycle's meters do.
func checkBuckets(t *testing.T, c *hours.Cache, m *registry.Meter, from, to, now time.Time, round uint64, where string) {
	t.Helper()
	if a := m.Latest().Aggregation; a != rules.AggSum && a != rules.AggCount {
		return // billing reports max and min per period (checkTotals)
	}
	got, err := c.Buckets(ctx, hours.Request{Meter: m, From: from, To: to, Now: now, Round: round})
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	res := usage(t, c.Store(), m, backtest.Window{From: from, To: to, Bucket: backtest.BucketHour, Top: 1, GroupBuckets: true})
	want := map[string][]hours.Hour{}
	for _, gb := range res.GroupBuckets {
		h := hours.Hour{Start: gb.Start.UnixMilli(), HasValue: gb.Value != nil, Events: gb.Events}
		if gb.Value != nil {
			h.Value = *gb.Value
		}
		want[gb.Group] = append(want[gb.Group], h)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: hour buckets differ from a full recompute:\n%s", where, diffMaps(got, want))
	}
}

func checkTotals(t *testing.T, c *hours.Cache, m *registry.Meter, from, now time.Time, starts map[string]time.Time, where string) {
	t.Helper()
	for _, gf := range []map[string]time.Time{nil, starts} {
		got, err := c.Totals(ctx, hours.Request{Meter: m, From: from, To: now, GroupFrom: gf, Now: now})
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		res := usage(t, c.Store(), m, backtest.Window{From: from, To: now, Bucket: backtest.BucketDay, Top: 1, AllGroups: true, GroupFrom: gf})
		want := map[string]backtest.Group{}
		for _, g := range res.Groups {
			want[g.Key] = g
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: totals (own starts: %v) differ from a full recompute:\n%s", where, gf != nil, diffMaps(got, want))
		}
	}
}

func checkResult(t *testing.T, c *hours.Cache, m *registry.Meter, w backtest.Window, now time.Time, where string) {
	t.Helper()
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Result(ctx, m, w, now)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	want := usage(t, c.Store(), m, w)
	for _, r := range []*backtest.Result{got, want} {
		r.Engine, r.Fallback, r.TookMs = "", "", 0
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: result over %s..%s by %s differs from a full recompute:\n%s", where, w.From, w.To, w.Bucket, diff(got, want))
	}
}

func diff(got, want any) string {
	return fmt.Sprintf(" got %s\nwant %s", show(got), show(want))
}

// diffMaps lists the keys whose values differ.
func diffMaps[V any](got, want map[string]V) string {
	var out string
	for k, w := range want {
		if g, ok := got[k]; !ok || !reflect.DeepEqual(g, w) {
			out += fmt.Sprintf("%q:\n%s\n", k, diff(g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out += fmt.Sprintf("%q: got %s, want none\n", k, show(g))
		}
	}
	return out
}

// show prints values behind pointers too.
func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A version taking effect inside hours already kept makes them stale from
// its effective_from on. The registry accepts no effective_from in the
// past, so this happens when the hours were computed by a process whose
// clock runs ahead of the one that added the version (here the reader's
// now is four hours ahead).
func TestNewVersionRecomputesTheHoursItCovers(t *testing.T) {
	for name, open := range testStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			now := time.Date(2026, 6, 10, 5, 0, 0, 0, time.UTC)
			reg := registry.New(st, func() time.Time { return now })
			v := meters[0]
			m, err := reg.Create(ctx, rules.Definition{Name: "m", Filter: v.v1.Filter, Value: v.v1.Value, Aggregation: v.v1.Aggregation, GroupBy: v.v1.GroupBy}, "", "test")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Insert(ctx, eventgen.Generate(1, 400, now.Add(-2*time.Hour), now.Add(3*time.Hour))); err != nil {
				t.Fatal(err)
			}
			c := hours.New(st)
			ahead := now.Add(4 * time.Hour)
			checkBuckets(t, c, m, now.Add(-2*time.Hour), ahead, ahead, 0, "before the version")
			if m, err = reg.AddVersion(ctx, m.ID, v.v2, now.Add(90*time.Minute), "test"); err != nil {
				t.Fatal(err)
			}
			checkBuckets(t, c, m, now.Add(-2*time.Hour), ahead, ahead, 0, "after the version")
		})
	}
}

// A steady-state request costs the hours that changed, not the window's
// history: after a first request computed every hour, the next one with a
// late event and new ones computes only the late event's hour and the open
// one, in one query. On DuckDB: ClickHouse's marks run its change margin
// behind, so there every hour inserted in the last minutes counts as
// changed (docs/architecture.md).
func TestSteadyStateComputesOnlyChangedHours(t *testing.T) {
	st := testStores(t)["duckdb"](t)
	now := time.Date(2026, 6, 10, 5, 30, 0, 0, time.UTC)
	reg := registry.New(st, func() time.Time { return now })
	v := meters[0].v1
	m, err := reg.Create(ctx, rules.Definition{Name: "m", Filter: v.Filter, Value: v.Value, Aggregation: v.Aggregation, GroupBy: v.GroupBy}, "", "test")
	if err != nil {
		t.Fatal(err)
	}
	from := now.Add(-72*time.Hour + 17*time.Minute + 23*time.Second)
	if _, err := st.Insert(ctx, eventgen.Generate(1, 2000, from, now)); err != nil {
		t.Fatal(err)
	}
	c := hours.New(st)
	checkBuckets(t, c, m, from, now, now, 0, "first")
	first := c.Stats()
	if first.Pieces != 73 || first.Queries != 1 {
		t.Fatalf("first request: %+v, want the 73 pieces of the window in one query", first)
	}
	now = now.Add(10 * time.Minute)
	late := eventgen.Generate(2, 3, from.Add(30*time.Hour), from.Add(30*time.Hour+time.Minute))
	fresh := eventgen.Generate(3, 5, now.Add(-5*time.Minute), now)
	if _, err := st.Insert(ctx, append(late, fresh...)); err != nil {
		t.Fatal(err)
	}
	checkBuckets(t, c, m, from, now, now, 0, "steady")
	if got := c.Stats(); got.Pieces-first.Pieces != 2 || got.Queries-first.Queries != 1 {
		t.Fatalf("steady-state request computed %d pieces in %d queries, want 2 (the late event's hour, the open one) in 1",
			got.Pieces-first.Pieces, got.Queries-first.Queries)
	}
}
