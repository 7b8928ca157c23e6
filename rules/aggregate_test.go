package rules

import (
	"math"
	"reflect"
	"testing"
)

func num(v float64) Result { return Result{Matched: true, Value: v} }
func text(s string) Result { return Result{Matched: true, Text: s, IsText: true} }
func valueErr() Result     { return Result{Matched: true, ValueError: true} }
func unmatched() Result    { return Result{} }
func row(g string, b int64, v float64, has bool, m, e int64) Row {
	return Row{Group: g, Bucket: b, Value: v, HasValue: has, Matched: m, ValueErrors: e}
}

type add struct {
	group  string
	bucket int64
	r      Result
}

// Two groups, two hour buckets, with value errors and unmatched calls.
var feed = []add{
	{"c1", 0, num(2)},
	{"c1", 0, num(math.Copysign(0, -1))},
	{"c1", 0, valueErr()},
	{"c1", 0, unmatched()},
	{"c1", 3600000, num(2)},
	{"c1", 3600000, num(5)},
	{"c2", 3600000, valueErr()},
	{"c2", 3600000, unmatched()},
	{"c3", 0, unmatched()}, // never matched: no row
}

func TestAggregations(t *testing.T) {
	cases := []struct {
		agg            string
		buckets, total []Row
	}{
		{AggCount,
			[]Row{row("c1", 0, 3, true, 3, 1), row("c1", 3600000, 2, true, 2, 0), row("c2", 3600000, 1, true, 1, 1)},
			[]Row{row("c1", 0, 5, true, 5, 1), row("c2", 0, 1, true, 1, 1)}},
		{AggSum,
			[]Row{row("c1", 0, 2, true, 3, 1), row("c1", 3600000, 7, true, 2, 0), row("c2", 3600000, 0, true, 1, 1)},
			[]Row{row("c1", 0, 9, true, 5, 1), row("c2", 0, 0, true, 1, 1)}},
		{AggMax,
			[]Row{row("c1", 0, 2, true, 3, 1), row("c1", 3600000, 5, true, 2, 0), row("c2", 3600000, 0, false, 1, 1)},
			[]Row{row("c1", 0, 5, true, 5, 1), row("c2", 0, 0, false, 1, 1)}},
		{AggMin,
			[]Row{row("c1", 0, 0, true, 3, 1), row("c1", 3600000, 2, true, 2, 0), row("c2", 3600000, 0, false, 1, 1)},
			[]Row{row("c1", 0, 0, true, 5, 1), row("c2", 0, 0, false, 1, 1)}},
		// Unique totals are distinct over the period: {2, 0, 5} = 3, not 2 + 2.
		{AggUnique,
			[]Row{row("c1", 0, 2, true, 3, 1), row("c1", 3600000, 2, true, 2, 0), row("c2", 3600000, 0, true, 1, 1)},
			[]Row{row("c1", 0, 3, true, 5, 1), row("c2", 0, 0, true, 1, 1)}},
	}
	for _, c := range cases {
		a := NewAggregator(c.agg)
		for _, f := range feed {
			a.Add(f.group, f.bucket, f.r)
		}
		if got := a.Buckets(); !reflect.DeepEqual(got, c.buckets) {
			t.Errorf("%s buckets:\n got %+v\nwant %+v", c.agg, got, c.buckets)
		}
		if got := a.Totals(); !reflect.DeepEqual(got, c.total) {
			t.Errorf("%s totals:\n got %+v\nwant %+v", c.agg, got, c.total)
		}
	}
}

func TestUniqueIdentity(t *testing.T) {
	a := NewAggregator(AggUnique)
	for _, r := range []Result{num(1), num(1.0), text("1"), num(0), num(math.Copysign(0, -1)), text(""), text("ü"), text("u")} {
		a.Add("g", 0, r)
	}
	// 1 | "1" | 0 (=-0) | "" | "ü" | "u"
	if got := a.Totals()[0].Value; got != 6 {
		t.Fatalf("distinct = %v, want 6", got)
	}
}

// The evaluator and the aggregator together over compiled meters.
func TestEvalAggregate(t *testing.T) {
	envs := []*Env{
		{CompanyID: "a", UserID: "u1", Response: Response{Status: 200}, Metadata: map[string]any{"tokens": 10.0}},
		{CompanyID: "a", UserID: "u2", Response: Response{Status: 200}, Metadata: map[string]any{"tokens": "12"}},
		{CompanyID: "a", UserID: "u1", Response: Response{Status: 500}, Metadata: map[string]any{"tokens": 99.0}},
		{CompanyID: "b", UserID: "u3", Response: Response{Status: 200}},
	}
	cases := []struct {
		def  Definition
		want []Row
	}{
		{Definition{Filter: "response.status == 200", Value: "metadata.tokens"},
			[]Row{row("a", 0, 10, true, 2, 1), row("b", 0, 0, true, 1, 1)}},
		{Definition{Filter: "response.status == 200", Value: "float(metadata.tokens ?? 0)"},
			[]Row{row("a", 0, 22, true, 2, 0), row("b", 0, 0, true, 1, 0)}},
		{Definition{Filter: "true", Value: "user_id", Aggregation: AggUnique},
			[]Row{row("a", 0, 2, true, 3, 0), row("b", 0, 1, true, 1, 0)}},
		{Definition{Filter: "response.status >= 500", Aggregation: AggCount, GroupBy: GroupByUser},
			[]Row{row("u1", 0, 1, true, 1, 0)}},
	}
	for _, c := range cases {
		m := mustCompile(t, c.def)
		a := NewAggregator(m.Def.Aggregation)
		for _, env := range envs {
			a.Add(m.GroupKey(env), 0, m.Eval(env))
		}
		if got := a.Totals(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v:\n got %+v\nwant %+v", c.def, got, c.want)
		}
	}
}
