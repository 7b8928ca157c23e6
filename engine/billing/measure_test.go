package billing_test

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/storage/eventgen"
)

// A cycle's cost follows the events that arrived since the last one: the
// second cycle recomputes only the hour of a late event and the open one
// (per meter, in one query), and bills what a full recompute of the period
// bills. On DuckDB, whose change marks are exact (ClickHouse's run a
// margin behind: docs/architecture.md).
func TestCycleRecomputesOnlyChangedHours(t *testing.T) {
	ctx := context.Background()
	st, _ := stores(t)["duckdb"](t)
	now := time.Date(2026, 11, 20, 10, 40, 0, 0, time.UTC)
	reg := registry.New(st, func() time.Time { return now })
	var meters []*registry.Meter
	for _, d := range []rules.Definition{
		{Name: "calls", Filter: `response.status < 400`, Aggregation: rules.AggCount, GroupBy: rules.GroupByCompany},
		{Name: "largest", Filter: `true`, Value: "request.body_size", Aggregation: rules.AggMax, GroupBy: rules.GroupByCompany},
	} {
		m, err := reg.Create(ctx, d, "", "test")
		if err != nil {
			t.Fatal(err)
		}
		meters = append(meters, m)
	}
	start := now.Add(-5*24*time.Hour + 23*time.Minute + 7*time.Second)
	periods := map[string]stripestate.Period{}
	for i := range eventgen.Companies {
		periods["company-"+strconv.Itoa(i)] = stripestate.Period{Start: start, End: start.Add(30 * 24 * time.Hour)}
	}
	if _, err := st.Insert(ctx, eventgen.Generate(1, 5000, start.Add(-time.Hour), now)); err != nil {
		t.Fatal(err)
	}
	w := &billing.Worker{Store: st, Hours: hours.New(st)}
	if _, err := w.Measure(ctx, now, meters, periods); err != nil {
		t.Fatal(err)
	}
	first := w.Hours.Stats()
	now = now.Add(time.Minute)
	if _, err := st.Insert(ctx, eventgen.Generate(2, 4, start.Add(50*time.Hour), start.Add(50*time.Hour+time.Minute))); err != nil {
		t.Fatal(err)
	}
	got, err := w.Measure(ctx, now, meters, periods)
	if err != nil {
		t.Fatal(err)
	}
	if s := w.Hours.Stats(); s.Pieces-first.Pieces != 2*2 || s.Queries-first.Queries != 2 {
		t.Fatalf("the second cycle computed %d pieces in %d queries, want 2 per meter (the late event's hour, the open one) in one query each",
			s.Pieces-first.Pieces, s.Queries-first.Queries)
	}
	want, err := (&billing.Worker{Store: st, Recompute: true}).Measure(ctx, now, meters, periods)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("billed from the hours kept:\n%v\nfull recompute:\n%v", got, want)
	}
}
