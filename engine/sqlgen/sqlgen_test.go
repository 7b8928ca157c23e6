package sqlgen

import (
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/meterd/meterd/rules"
)

// The store-level checks of the translation are engine's differential and
// regression tests; these pin properties of the SQL text itself.

func meter(t *testing.T, filter, value, agg string) *rules.Meter {
	t.Helper()
	m, err := rules.Compile(rules.Definition{Name: "t", Filter: filter, Value: value, Aggregation: agg})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func query(t *testing.T, d Dialect, m *rules.Meter) string {
	t.Helper()
	p, err := Query(d, []Span{{Meter: m}}, Window{FromMs: 0, ToMs: 3600_000, BucketMs: 3600_000, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	return p.SQL
}

// ClickHouse 18.16 names a literal by its value: -0 would be one column
// with every 0 of the query, typed Int8.
func TestClickHouseNegativeZeroIsNotALiteral(t *testing.T) {
	neg := ClickHouse{}.Float(math.Copysign(0, -1))
	if regexp.MustCompile(`(^|[^0-9.])-0([^0-9.]|$)`).MatchString(neg) {
		t.Fatalf("Float(-0) = %s", neg)
	}
	sql := query(t, ClickHouse{}, meter(t, `request.body_size > -0.0`, "", rules.AggCount))
	if strings.Contains(sql, "(-0)") {
		t.Fatalf("a -0 literal in:\n%s", sql)
	}
}

// ClickHouse 18.16 folds <= and >= of constant strings wrongly: string
// comparisons never use them there.
func TestClickHouseStringComparisonsAvoidLeGe(t *testing.T) {
	sql := query(t, ClickHouse{}, meter(t, `"x" <= request.route and request.verb >= "G"`, "", rules.AggCount))
	if regexp.MustCompile(`'[^']*' *(<=|>=)|(<=|>=) *'`).MatchString(sql) {
		t.Fatalf("a string <= or >= in:\n%s", sql)
	}
	if d := (DuckDB{}).StrCmp("<=", "a", "b"); d != "(a <= b)" {
		t.Fatalf("DuckDB StrCmp = %s", d)
	}
}
