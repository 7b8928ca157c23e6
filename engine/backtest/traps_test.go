package backtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/sqlgen"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// trapEvent is one call with every awkward kind of metadata value (the
// event of rules' semantics tests, stored).
func trapEvent(at time.Time) storage.Event {
	return storage.Event{
		ID: "trap-" + at.Format("20060102150405"), Format: storage.FormatMoesif, Time: at, ReceivedAt: at,
		Verb: "POST", Route: "/v1/search", URI: "https://api.example.com/v1/search?q=ü", Host: "api.example.com",
		IP: "203.0.113.7", APIVersion: "2024-01-01", RequestSize: 512,
		RequestHeaders: map[string]string{"x-api-key": "k1", "content-type": "application/json"},
		HasResponse:    true, Status: 200, ResponseSize: 2_000_000, ResponseTime: at.Add(35 * time.Millisecond),
		ResponseHeaders: map[string]string{"content-type": "application/json"},
		DurationMs:      35, UserID: "u1", CompanyID: "c1", SessionToken: "s1", Weight: 3,
		Metadata: `{"s":"150","n":150,"neg":-7,"t":true,"nul":null,"u":"ü","obj":{"b":2,"c":{"d":"x"}},` +
			`"arr":[1,"x"],"big":1e300,"key with space":"yes"}`,
		CompanyTraits: `{"plan":"pro","seats":10}`,
		UserTraits:    `{"tier":"gold"}`,
	}
}

// The traps of rules/doc.go and docs/meters.md, with the documented
// answer for trapEvent.
var trapFilters = []struct {
	filter string
	want   bool
}{
	// Short-circuit, both orders.
	{`response.status == 200 or metadata.s > 100`, true},
	{`metadata.s > 100 or response.status == 200`, false},
	{`response.status != 200 and metadata.s > 100`, false},
	{`not (metadata.s > 100)`, false},
	{`true and metadata.s`, false},
	// and/or return their right operand as is.
	{`(true and metadata.s) != false`, true},
	{`(false or metadata.missing) == nil`, true},
	{`not (true and metadata.s)`, false},
	{`metadata.t`, true},
	{`metadata.missing ?? true`, true},
	{`metadata.nul ?? true`, true},
	{`metadata.missing ? true : true`, false},
	// == and != never fail; int and float compare as float64.
	{`metadata.missing == nil`, true},
	{`metadata.missing == metadata.nul`, true},
	{`nil != 1`, true},
	{`metadata.missing != 1`, true},
	{`metadata.n == 150`, true},
	{`metadata.s == 150`, false},
	{`metadata.s != 150`, true},
	{`metadata.arr == metadata.arr`, true},
	{`metadata.obj != metadata.arr`, true},
	{`metadata.s < 200`, false},
	{`metadata.s < "2"`, true},
	{`1 < metadata.n < 200`, true},
	{`!metadata.missing`, false},
	// Arithmetic.
	{`7 / 2 == 3.5`, true},
	{`response.status / 0 > 1e308`, true},
	{`(response.status - 200) / 0 != (response.status - 200) / 0`, true}, // NaN
	{`metadata.n % 2 == 0`, false},
	{`int(metadata.n) % 7 == 3`, true},
	{`response.status % 0 == 0`, false},
	{`-7 % 3 == -1`, true},
	{`9223372036854775807 + 1 < 0`, true},
	{`9223372036854775807 * 2 == -2`, true},
	{`-(-9223372036854775807 - 1) < 0`, true},
	{`2 ** 2 == 4`, true},
	{`metadata.t + 1 > 0`, false},
	{`metadata.missing + 1 > 0`, false},
	// in.
	{`metadata.n in [150, 151]`, true},
	{`metadata.s in [150]`, false},
	{`metadata.missing in [nil, 1]`, true},
	{`metadata.n not in ["a", "b"]`, true},
	{`"nul" in metadata`, true},
	{`"missing" not in metadata`, true},
	{`"x-api-key" in request.headers`, true},
	{`"x-api-key" in response.headers`, false},
	{`"plan" in company`, true},
	{`"obj.b" in metadata`, false}, // a nested key is not a key of metadata
	{`metadata.n in metadata`, false},
	{`not (metadata.n in metadata)`, false}, // a non-string key fails
	// Member access.
	{`metadata.obj.c.d == "x"`, true},
	{`metadata["key with space"] == "yes"`, true},
	{`metadata.missing.b == nil`, false},
	{`metadata.missing?.b == nil`, true},
	{`metadata.obj?.missing?.x == nil`, true},
	{`metadata.s.b == nil`, false},
	{`request.headers["x-missing"] == ""`, true},
	{`response.headers?.["x"] == ""`, true},
	{`company.plan == "pro" and user.tier == "gold"`, true},
	// Strings.
	{`len(metadata.u) == 1`, true},
	{`len(metadata.arr) == 2 and len(metadata.obj) == 2`, true},
	{`len(metadata.n) == 1`, false},
	{`metadata.u matches "^.$"`, true},
	{`request.route matches "search"`, true},
	{`request.route matches "(?i)SEARCH"`, true},
	{`not (metadata.missing matches "x")`, true},
	{`not (metadata.n matches "1")`, false},
	{`not (metadata.missing contains "a")`, true},
	{`not (metadata.n contains "1")`, false},
	{`"é" startsWith "e"`, false},
	{`request.uri endsWith "ü"`, true},
	{`trim("  a  ") == "a" and trim("xxaxx", "x") == "a"`, true},
	{`trimPrefix(request.route, "/v1") == "/search"`, true},
	{`round(2.5) == 3 and round(-2.5) == -3 and round(0.49999999999999994) == 0`, true},
	{`abs(metadata.neg) == 7`, true},
	// Conversions.
	{`float(metadata.s) == 150 and float("-2e3") == -2000`, true},
	{`float(" 1") == 1`, false},
	{`int("-12") == -12 and int(-2.7) == -2`, true},
	{`int("99999999999999999999") != 0`, false},
	{`int(metadata.big) != 0`, false},
	{`string(metadata.big) == "1e+300" and string(metadata.t) == "true"`, true},
	{`string(metadata.arr) != ""`, false},
}

func TestTraps(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)
	stores := trapStores(t, at)
	w := Window{From: at.Add(-time.Hour), To: at.Add(time.Hour), Bucket: BucketHour}
	for _, c := range trapFilters {
		m := compile(t, rules.Definition{Filter: c.filter, Aggregation: rules.AggCount})
		want := int64(0)
		if c.want {
			want = 1
		}
		vm, err := BacktestVM(ctx, stores[0], m, w)
		if err != nil {
			t.Fatal(err)
		}
		if vm.MatchedEvents != want {
			t.Errorf("vm: %s: matched %d, want %d", c.filter, vm.MatchedEvents, want)
		}
		for _, st := range stores {
			got, err := BacktestSQL(ctx, st, m, w)
			var un *sqlgen.ErrUntranslatable
			if errors.As(err, &un) {
				t.Errorf("%s: %s: %v", st.Backend(), c.filter, err)
				continue
			}
			if err != nil {
				t.Fatalf("%s: %s: %v", st.Backend(), c.filter, err)
			}
			if got.MatchedEvents != want {
				t.Errorf("%s: %s: matched %d, want %d", st.Backend(), c.filter, got.MatchedEvents, want)
			}
		}
	}
}

// Values: a value error is counted and adds nothing.
var trapValues = []struct {
	agg, value string
	want       any // float64, or "error"
}{
	{rules.AggSum, `metadata.n`, 150.0},
	{rules.AggSum, `response.body_size / 1e6`, 2.0},
	{rules.AggSum, `metadata.n * weight`, 450.0},
	{rules.AggSum, `float(metadata.s)`, 150.0},
	{rules.AggSum, `metadata.missing ?? 0`, 0.0},
	{rules.AggSum, `len(request.route)`, 10.0},
	{rules.AggSum, `9223372036854775807 + 1`, -9223372036854775808.0},
	{rules.AggSum, `metadata.s`, "error"},
	{rules.AggSum, `metadata.nul`, "error"},
	{rules.AggSum, `metadata.t`, "error"},
	{rules.AggSum, `metadata.arr`, "error"},
	{rules.AggSum, `response.status / 0`, "error"},
	{rules.AggSum, `(response.status - 200) / 0`, "error"},
	{rules.AggSum, `metadata.big * metadata.big`, "error"},
	{rules.AggMax, `metadata.n`, 150.0},
	{rules.AggMin, `duration_ms`, 35.0},
	{rules.AggMax, `metadata.s`, "error"},
	{rules.AggUnique, `user_id`, 1.0},
	{rules.AggUnique, `metadata.s`, 1.0},
	{rules.AggUnique, `metadata.t`, "error"},
}

func TestTrapValues(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2023, 6, 2, 12, 0, 0, 0, time.UTC)
	stores := trapStores(t, at)
	w := Window{From: at.Add(-time.Hour), To: at.Add(time.Hour), Bucket: BucketDay}
	for _, c := range trapValues {
		m := compile(t, rules.Definition{Filter: "true", Value: c.value, Aggregation: c.agg})
		check := func(engine string, r *Result) {
			if r.MatchedEvents != 1 {
				t.Errorf("%s: %s %s: matched %d", engine, c.agg, c.value, r.MatchedEvents)
				return
			}
			if c.want == "error" {
				if r.ValueErrors != 1 {
					t.Errorf("%s: %s %s: value errors %d, want 1", engine, c.agg, c.value, r.ValueErrors)
				}
				return
			}
			if r.ValueErrors != 0 || r.Total == nil || *r.Total != c.want.(float64) {
				t.Errorf("%s: %s %s: total %v (value errors %d), want %v", engine, c.agg, c.value, fmtValue(r.Total), r.ValueErrors, c.want)
			}
		}
		vm, err := BacktestVM(ctx, stores[0], m, w)
		if err != nil {
			t.Fatal(err)
		}
		check("vm", vm)
		for _, st := range stores {
			got, err := BacktestSQL(ctx, st, m, w)
			if err != nil {
				t.Fatalf("%s: %s: %v", st.Backend(), c.value, err)
			}
			check(st.Backend(), got)
		}
	}
}

// trapStores are a DuckDB store and, where configured, a ClickHouse one,
// each holding the trap event at at.
func trapStores(t *testing.T, at time.Time) []storage.Store {
	stores := []storage.Store{openDuck(t)}
	if ch := openClickHouse(t); ch != nil {
		stores = append(stores, ch)
	}
	for _, st := range stores {
		insert(t, st, []storage.Event{trapEvent(at)})
	}
	return stores
}
