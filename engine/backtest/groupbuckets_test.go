package backtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// Window.GroupBuckets gives every group's buckets in one run: SQL on
// each store agrees with the VM; each group's buckets are those of a run
// restricted to it (Window.Group); the rest of the result is unchanged;
// and for count and sum they add up to the group and bucket values.
func TestWindowGroupBuckets(t *testing.T) {
	ctx := context.Background()
	s := quotedCustomerStores(t, 11)
	mid := genFrom.Add(30*time.Hour + 17*time.Minute)
	for _, vs := range [][]rules.Definition{
		{{Filter: `response.status == 200`, Aggregation: rules.AggCount}},
		{{Filter: `true`, Value: "request.body_size", Aggregation: rules.AggSum, GroupBy: rules.GroupByUser}},
		{{Filter: `true`, Value: "user_id", Aggregation: rules.AggUnique}},
		{{Filter: `true`, Value: "request.body_size", Aggregation: rules.AggMax}},
		// Two versions: the second from the middle of an hour.
		{{Filter: `response.status < 300`, Value: "request.body_size", Aggregation: rules.AggSum},
			{Filter: `response.status >= 300`, Value: "response.body_size", Aggregation: rules.AggSum}},
	} {
		versions := []Version{{Meter: compile(t, vs[0])}}
		if len(vs) > 1 {
			versions = append(versions, Version{Meter: compile(t, vs[1]), From: mid})
		}
		name := fmt.Sprintf("%s/%d versions", vs[0].Aggregation, len(vs))
		w := Window{From: genFrom.Add(90 * time.Minute), To: genTo, Bucket: BucketHour, Top: MaxTop, GroupBuckets: true}
		want, err := Run(ctx, s.duck, versions, w, VM)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.GroupBuckets) < 2*len(want.Buckets) {
			t.Fatalf("%s: only %d group buckets for %d buckets", name, len(want.GroupBuckets), len(want.Buckets))
		}
		plain := w
		plain.GroupBuckets = false
		for _, st := range []storage.Store{s.duck, s.ch} {
			if st == nil {
				continue
			}
			got, err := Run(ctx, st, versions, w, SQL)
			if err != nil {
				t.Fatalf("%s %s: %v", st.Backend(), name, err)
			}
			tl := tol{sum: true, total: 1e-6}
			if d := compareResults(got, want, tl); d != "" {
				t.Fatalf("%s %s: %s", st.Backend(), name, d)
			}
			if d := compareGroupBuckets(got.GroupBuckets, want.GroupBuckets); d != "" {
				t.Fatalf("%s %s: group buckets: %s", st.Backend(), name, d)
			}
			without, err := Run(ctx, st, versions, plain, SQL)
			if err != nil {
				t.Fatal(err)
			}
			if d := compareResults(without, got, tl); d != "" || without.GroupBuckets != nil {
				t.Fatalf("%s %s: GroupBuckets changed the rest of the result: %s", st.Backend(), name, d)
			}
		}
		// Each group's buckets are those of a run restricted to it.
		byGroup := map[string][]GroupBucket{}
		for _, gb := range want.GroupBuckets {
			byGroup[gb.Group] = append(byGroup[gb.Group], gb)
		}
		keys := []string{want.Groups[0].Key, want.Groups[len(want.Groups)-1].Key, `o'brien`, `o'brien "co"`}
		for _, key := range keys {
			if _, ok := byGroup[key]; !ok {
				continue
			}
			one := w
			one.Group, one.GroupBuckets = key, false
			res, err := Run(ctx, s.duck, versions, one, VM)
			if err != nil {
				t.Fatal(err)
			}
			var asGroup []GroupBucket
			for _, b := range res.Buckets {
				asGroup = append(asGroup, GroupBucket{Group: key, Start: b.Start, Value: b.Value, Events: b.Events})
			}
			if d := compareGroupBuckets(byGroup[key], asGroup); d != "" {
				t.Fatalf("%s group %q: %s", name, key, d)
			}
		}
		// Additive aggregations add up both ways.
		if a := vs[0].Aggregation; a == rules.AggCount || a == rules.AggSum {
			perGroup, perBucket := map[string]float64{}, map[int64]float64{}
			for _, gb := range want.GroupBuckets {
				perGroup[gb.Group] += *gb.Value
				perBucket[gb.Start.UnixMilli()] += *gb.Value
			}
			for _, g := range want.Groups {
				if perGroup[g.Key] != *g.Value {
					t.Fatalf("%s group %q: buckets add up to %v, group value %v", name, g.Key, perGroup[g.Key], *g.Value)
				}
			}
			for _, b := range want.Buckets {
				if perBucket[b.Start.UnixMilli()] != *b.Value {
					t.Fatalf("%s bucket %s: groups add up to %v, bucket value %v", name, b.Start, perBucket[b.Start.UnixMilli()], *b.Value)
				}
			}
		}
	}
}

// compareGroupBuckets lists the differences (values exactly: the sums
// here are of integers).
func compareGroupBuckets(got, want []GroupBucket) string {
	key := func(gb GroupBucket) string { return fmt.Sprintf("%q@%s", gb.Group, gb.Start.Format(time.RFC3339)) }
	g := map[string]GroupBucket{}
	for _, gb := range got {
		g[key(gb)] = gb
	}
	if len(g) != len(got) {
		return "a (group, bucket) is listed twice"
	}
	for i, w := range want {
		x, ok := g[key(w)]
		delete(g, key(w))
		if !ok || x.Events != w.Events || !sameValue(x.Value, w.Value, 0, false) {
			return fmt.Sprintf("%s: got %s (%d events), want %s (%d events)", key(w), fmtValue(x.Value), x.Events, fmtValue(w.Value), w.Events)
		}
		if i < len(got) && key(got[i]) != key(w) {
			return fmt.Sprintf("not in order: %s where %s", key(got[i]), key(w))
		}
	}
	for k := range g {
		return k + ": got one, want none"
	}
	return ""
}
