package backtest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// Window.Group restricts a run to one billed customer: on every engine
// and store its buckets are that customer's alone, and its total is the
// customer's group value in the unrestricted run.
func TestWindowGroup(t *testing.T) {
	ctx := context.Background()
	s := quotedCustomerStores(t, 5)
	for _, def := range []rules.Definition{
		{Filter: `response.status == 200`, Aggregation: rules.AggCount},
		{Filter: `true`, Value: "request.body_size", Aggregation: rules.AggSum, GroupBy: rules.GroupByUser},
		{Filter: `true`, Value: "user_id", Aggregation: rules.AggUnique},
	} {
		m := compile(t, def)
		all, err := BacktestVM(ctx, s.duck, m, Window{From: genFrom, To: genTo, Bucket: BucketHour, Top: MaxTop})
		if err != nil {
			t.Fatal(err)
		}
		groupValue := map[string]float64{}
		for _, g := range all.Groups {
			groupValue[g.Key] = *g.Value
		}
		keys := []string{`o'brien "co"`, `o'brien`, all.Groups[0].Key, "nobody"}
		for _, key := range keys {
			if (m.Def.GroupBy == rules.GroupByUser) == (key == `o'brien "co"`) {
				continue // not a key of this meter's grouping
			}
			w := Window{From: genFrom, To: genTo, Bucket: BucketHour, Group: key}
			want, err := BacktestVM(ctx, s.duck, m, w)
			if err != nil {
				t.Fatal(err)
			}
			if *want.Total != groupValue[key] || (key == "nobody") != (want.MatchedEvents == 0) {
				t.Fatalf("%s group %q: VM total %v (%d events), the unrestricted run's group value %v",
					def.Aggregation, key, *want.Total, want.MatchedEvents, groupValue[key])
			}
			var bucketSum float64
			for _, b := range want.Buckets {
				bucketSum += *b.Value
			}
			if def.Aggregation != rules.AggUnique && bucketSum != *want.Total {
				t.Fatalf("%s group %q: buckets add up to %v, total %v", def.Aggregation, key, bucketSum, *want.Total)
			}
			for _, st := range []storage.Store{s.duck, s.ch} {
				if st == nil {
					continue
				}
				got, err := BacktestSQL(ctx, st, m, w)
				if err != nil {
					t.Fatalf("%s %s group %q: %v", st.Backend(), def.Aggregation, key, err)
				}
				if d := compareResults(got, want, tol{sum: true, total: 1e-6}); d != "" {
					t.Fatalf("%s %s group %q: %s", st.Backend(), def.Aggregation, key, d)
				}
			}
		}
	}
}

// quotedCustomerStores are the differential stores holding generated
// traffic where every seventh call's customer needs quoting in SQL.
func quotedCustomerStores(t *testing.T, seed int64) *diffStores {
	s := newDiffStores(t)
	evs := eventgen.Generate(seed, 3000, genFrom, genTo)
	for i := 0; i < len(evs); i += 7 {
		evs[i].CompanyID, evs[i].UserID = `o'brien "co"`, `o'brien`
	}
	insert(t, s.duck, evs)
	if s.ch != nil {
		insert(t, s.ch, evs)
	}
	return s
}

// Window.GroupFrom starts each listed customer's window at its own time,
// all customers in one query: on every engine and store, each customer's
// value is what a run over its own window gives (customers not listed
// from the window's start).
func TestWindowGroupFrom(t *testing.T) {
	ctx := context.Background()
	s := quotedCustomerStores(t, 7)
	span := genTo.Sub(genFrom)
	for _, def := range []rules.Definition{
		{Filter: `response.status == 200`, Aggregation: rules.AggCount},
		{Filter: `true`, Value: "request.body_size", Aggregation: rules.AggSum, GroupBy: rules.GroupByUser},
		{Filter: `true`, Value: "user_id", Aggregation: rules.AggUnique},
		{Filter: `true`, Value: "duration_ms", Aggregation: rules.AggMax},
	} {
		m := compile(t, def)
		all, err := BacktestVM(ctx, s.duck, m, Window{From: genFrom, To: genTo, Bucket: BucketDay, Top: MaxTop})
		if err != nil {
			t.Fatal(err)
		}
		starts := map[string]time.Time{}
		for i, g := range all.Groups { // every other customer starts later, by a growing, odd offset
			if i%2 == 0 {
				starts[g.Key] = genFrom.Add(span * time.Duration(i+1) / time.Duration(2*len(all.Groups)+1)).Add(1234 * time.Millisecond)
			}
		}
		starts[`o'brien "co"`], starts[`o'brien`] = genFrom.Add(span/3), genFrom.Add(span/3)
		w := Window{From: genFrom, To: genTo, Bucket: BucketDay, AllGroups: true, GroupFrom: starts}
		want := map[string]*float64{}
		for _, g := range all.Groups {
			if g.Key == "" {
				continue // Window.Group "" is every customer
			}
			from := genFrom
			if st, ok := starts[g.Key]; ok {
				from = st
			}
			one, err := BacktestVM(ctx, s.duck, m, Window{From: from, To: genTo, Bucket: BucketDay, Group: g.Key})
			if err != nil {
				t.Fatal(err)
			}
			if one.MatchedEvents > 0 {
				want[g.Key] = one.Total
			}
		}
		runs := map[string]func() (*Result, error){
			"vm": func() (*Result, error) { return BacktestVM(ctx, s.duck, m, w) },
		}
		for _, st := range []storage.Store{s.duck, s.ch} {
			if st != nil {
				runs[st.Backend()] = func() (*Result, error) { return BacktestSQL(ctx, st, m, w) }
			}
		}
		for name, run := range runs {
			res, err := run()
			if err != nil {
				t.Fatalf("%s %s: %v", name, def.Aggregation, err)
			}
			got := map[string]*float64{}
			for _, g := range res.Groups {
				if g.Events > 0 && g.Key != "" {
					got[g.Key] = g.Value
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%s %s: %d customers with events, want %d", name, def.Aggregation, len(got), len(want))
			}
			for k, v := range want {
				if got[k] == nil || math.Abs(*got[k]-*v) > 1e-6*math.Max(1, math.Abs(*v)) {
					t.Fatalf("%s %s customer %q: %v, its own window gives %v", name, def.Aggregation, k, got[k], *v)
				}
			}
		}
	}
}
