package backtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// blockedCalls are 8 calls in two hours: c1 made 4 that were served and 2
// that rules r1 and r2 blocked, c2 one of each; the blocked ones were
// answered 402/429 by the agent.
func blockedCalls() []storage.Event {
	type call struct {
		company, rule string
		status        int32
		meta          string
	}
	calls := []call{
		{"c1", "", 200, `{"x":{"y":1}}`}, {"c1", "", 200, `{}`}, {"c1", "r1", 402, `{"x.y":1}`}, {"c1", "", 500, `{}`},
		{"c2", "r1", 402, `{"x.y":1}`}, {"c1", "", 201, `{}`}, {"c1", "r2", 429, `{}`}, {"c2", "", 200, `{}`},
	}
	var evs []storage.Event
	for i, c := range calls {
		at := genFrom.Add(time.Duration(i) * 15 * time.Minute)
		id := fmt.Sprintf("blocked-test-%d", i)
		evs = append(evs, storage.Event{ID: id, ExternalID: id, Format: storage.FormatMoesif, Time: at, ReceivedAt: at,
			Verb: "GET", URI: "/v1/search", Route: "/v1/search", CompanyID: c.company, Weight: 1,
			HasResponse: true, ResponseTime: at, Status: c.status, Metadata: c.meta, BlockedBy: c.rule})
	}
	return evs
}

// A meter does not count blocked calls unless its filter reads blocked_by;
// every engine on every store says so alike, for one version or two, for
// a whole window, one customer (Window.Group) and every customer's
// buckets (Window.GroupBuckets, what billing reads).
func TestBlockedCallsCountOnlyWhenTheFilterReadsBlockedBy(t *testing.T) {
	ctx := context.Background()
	s := newDiffStores(t)
	evs := blockedCalls()
	insert(t, s.duck, evs)
	if s.ch != nil {
		insert(t, s.ch, evs)
	}
	split := genFrom.Add(time.Hour) // the second version counts calls 4 to 7
	cases := []struct {
		name     string
		versions []rules.Definition
		c1, c2   float64 // each customer's value
	}{
		{"every call, by default", []rules.Definition{{Filter: "true", Aggregation: rules.AggCount}}, 4, 1},
		{"failed calls, by default", []rules.Definition{{Filter: "response.status >= 400", Value: "response.status", Aggregation: rules.AggSum}}, 500, 0},
		{"blocked calls", []rules.Definition{{Filter: `blocked_by != ""`, Aggregation: rules.AggCount}}, 2, 1},
		{"one rule's", []rules.Definition{{Filter: `blocked_by == "r1"`, Aggregation: rules.AggCount}}, 1, 1},
		{"every call, blocked or not", []rules.Definition{{Filter: `true or blocked_by == ""`, Aggregation: rules.AggCount}}, 6, 2},
		{"served calls, said", []rules.Definition{{Filter: `blocked_by == ""`, Aggregation: rules.AggCount}}, 4, 1},
		{"the rules, by default", []rules.Definition{{Filter: "true", Value: "blocked_by", Aggregation: rules.AggUnique}}, 1, 1},
		{"the rules", []rules.Definition{{Filter: `blocked_by != ""`, Value: "blocked_by", Aggregation: rules.AggUnique}}, 2, 1},
		{"a nested key, by default", []rules.Definition{{Filter: "metadata.x.y == 1", Aggregation: rules.AggCount}}, 1, 0},
		{"then blocked calls too", []rules.Definition{
			{Filter: "true", Aggregation: rules.AggCount},
			{Filter: `blocked_by == "" or blocked_by != ""`, Aggregation: rules.AggCount}}, 3 + 2, 0 + 2},
		{"then no blocked call", []rules.Definition{
			{Filter: `blocked_by == "" or blocked_by != ""`, Aggregation: rules.AggCount},
			{Filter: "true", Aggregation: rules.AggCount}}, 4 + 1, 0 + 1},
	}
	for _, c := range cases {
		var vs []Version
		for i, d := range c.versions {
			v := Version{Meter: compile(t, d)}
			if i > 0 {
				v.From = split
			}
			vs = append(vs, v)
		}
		want := map[string]float64{"c1": c.c1, "c2": c.c2}
		for _, st := range []storage.Store{s.duck, s.ch} {
			if st == nil {
				continue
			}
			for _, e := range []Engine{VM, SQL} {
				at := fmt.Sprintf("%s: %s on %s", c.name, e, st.Backend())
				w := Window{From: genFrom, To: genFrom.Add(2 * time.Hour), Bucket: BucketHour, Top: MaxTop, GroupBuckets: true}
				res, err := Run(ctx, st, vs, w, e)
				if err != nil {
					t.Fatalf("%s: %v", at, err)
				}
				if res.ScannedEvents != int64(len(evs)) {
					t.Errorf("%s: %d scanned events, want %d (blocked calls are in the window)", at, res.ScannedEvents, len(evs))
				}
				got := map[string]float64{"c1": 0, "c2": 0}
				for _, g := range res.Groups {
					got[g.Key] = *g.Value
				}
				inBuckets := map[string]float64{"c1": 0, "c2": 0}
				for _, b := range res.GroupBuckets {
					inBuckets[b.Group] += *b.Value
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: groups %v, want %v", at, got, want)
				}
				if vs[0].Meter.Def.Aggregation != rules.AggUnique && fmt.Sprint(inBuckets) != fmt.Sprint(want) {
					t.Errorf("%s: group buckets add up to %v, want %v", at, inBuckets, want)
				}
				for key, v := range want {
					w.Group, w.GroupBuckets = key, false
					one, err := Run(ctx, st, vs, w, e)
					if err != nil {
						t.Fatalf("%s, group %s: %v", at, key, err)
					}
					if *one.Total != v {
						t.Errorf("%s, group %s: total %v, want %v", at, key, *one.Total, v)
					}
				}
			}
		}
	}
}
