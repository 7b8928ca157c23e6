package rules

import (
	"math"
	"testing"
)

// testEnv is one call with every awkward kind of metadata value.
func testEnv() *Env {
	return &Env{
		Request: Request{
			Verb: "POST", Route: "/v1/search", URI: "https://api.example.com/v1/search?q=ü",
			Host: "api.example.com", IP: "203.0.113.7", BodySize: 512, APIVersion: "2024-01-01",
			Headers: map[string]string{"x-api-key": "k1", "content-type": "application/json"},
		},
		Response:   Response{Status: 200, BodySize: 2_000_000, Headers: map[string]string{"content-type": "application/json"}},
		DurationMs: 35, Time: 1735689600000, UserID: "u1", CompanyID: "c1", SessionToken: "s1", Weight: 3,
		Metadata: map[string]any{
			"s": "150", "n": 150.0, "neg": -7.0, "t": true, "nul": nil, "u": "ü",
			"obj": map[string]any{"b": 2.0, "c": map[string]any{"d": "x"}},
			"arr": []any{1.0, "x"}, "big": 1e300, "key with space": "yes",
		},
		Company: map[string]any{"plan": "pro", "seats": 10.0},
		User:    map[string]any{"tier": "gold"},
	}
}

func mustCompile(t testing.TB, d Definition) *Meter {
	t.Helper()
	if d.Name == "" {
		d.Name = "m"
	}
	if d.Aggregation == "" {
		d.Aggregation = AggSum
	}
	m, err := Compile(d)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", d, err)
	}
	return m
}

// Each case states the semantics docs/meters.md documents.
var filterCases = []struct {
	filter string
	want   bool
}{
	// Short-circuit, both orders: an error on the evaluated path makes the filter false.
	{`response.status == 200 or metadata.s > 100`, true},
	{`metadata.s > 100 or response.status == 200`, false},
	{`response.status != 200 and metadata.s > 100`, false},
	{`metadata.s > 100 and response.status == 200`, false},
	{`not (metadata.s > 100)`, false}, // negating an error is still an error
	{`true and metadata.s`, false},    // a non-bool result does not match
	{`true and metadata.missing`, false},
	{`metadata.missing and true`, false},
	// and/or return their right operand as is: it may not be a bool.
	{`(true and metadata.s) != false`, true},
	{`(false or metadata.missing) == nil`, true},
	{`not (true and metadata.s)`, false},
	{`metadata.t`, true},
	{`metadata.s`, false},
	{`metadata.missing`, false},
	{`metadata.missing ?? true`, true},
	{`metadata.nul ?? true`, true},
	{`metadata.missing ? true : true`, false},
	{`metadata.t ? true : false`, true},
	// nil and equality: == and != never fail.
	{`metadata.missing == nil`, true},
	{`metadata.nul == nil`, true},
	{`metadata.missing == metadata.nul`, true},
	{`nil != 1`, true},
	{`metadata.missing != 1`, true},
	{`metadata.missing > 1`, false},
	{`not (metadata.missing > 1)`, false},
	{`metadata.n == 150`, true}, // float64 from JSON equals the int 150
	{`metadata.s == 150`, false},
	{`metadata.s != 150`, true},
	{`metadata.s == "150"`, true},
	{`metadata.t == true`, true},
	{`metadata.arr == metadata.arr`, true},
	{`metadata.s < 200`, false}, // string < int fails
	{`metadata.s < "2"`, true},  // strings compare by bytes
	{`1 < metadata.n < 200`, true},
	{`1 < metadata.n < 100`, false},
	{`metadata.n <= 150 && metadata.n >= 150`, true},
	{`!(metadata.n > 150) || metadata.s > 1`, true},
	{`!metadata.missing`, false},
	// Arithmetic.
	{`7 / 2 == 3.5`, true},
	{`metadata.n / 4 == 37.5`, true},
	{`response.status / 0 > 1e308`, true}, // +Inf, no error
	{`metadata.n % 2 == 0`, false},        // % on a float fails
	{`int(metadata.n) % 7 == 3`, true},
	{`response.status % 0 == 0`, false}, // % 0 fails
	{`-7 % 3 == -1`, true},
	{`7 % -3 == 1`, true},
	{`9223372036854775807 + 1 < 0`, true}, // int wraps
	{`9223372036854775807 * 2 == -2`, true},
	{`2 ** 10 == 1024`, true},
	{`2 ^ 0.5 > 1.414 and 2 ^ 0.5 < 1.415`, true},
	{`metadata.t + 1 > 0`, false},
	{`-metadata.s < 0`, false},
	{`metadata.missing + 1 > 0`, false},
	// in.
	{`metadata.n in [150, 151]`, true},
	{`metadata.n in [150.0]`, true},
	{`metadata.s in [150]`, false},
	{`metadata.s in ["150", 1]`, true},
	{`metadata.missing in [nil, 1]`, true},
	{`response.status not in [500, 502]`, true},
	// Unoptimised: expr's optimiser would turn this list into a map
	// and fail on a float key; the reference gives false, no error.
	{`metadata.n not in ["a", "b"]`, true},
	{`"s" in metadata`, true},
	{`"nul" in metadata`, true}, // present with null
	{`"missing" in metadata`, false},
	{`"missing" not in metadata`, true},
	{`"x-api-key" in request.headers`, true},
	{`"x-api-key" in response.headers`, false},
	{`"plan" in company`, true},
	{`"tier" in user`, true},
	{`metadata.n in metadata`, false}, // a non-string key fails
	// Member access.
	{`metadata.obj.c.d == "x"`, true},
	{`metadata.obj["b"] == 2`, true},
	{`metadata["key with space"] == "yes"`, true},
	{`metadata.missing.b == nil`, false}, // reading a field of nil fails
	{`metadata.missing?.b == nil`, true},
	{`metadata.obj?.missing?.x == nil`, true},
	{`metadata.s.b == nil`, false},
	{`metadata.arr.b == nil`, false},
	{`request.headers["x-missing"] == ""`, true},
	{`request.headers["x-api-key"] == "k1"`, true},
	{`request.headers.host == ""`, true},
	{`company.plan == "pro" and user.tier == "gold"`, true},
	{`company.missing == nil`, true},
	// Strings: Unicode, RE2, nil-tolerant operators.
	{`len(metadata.u) == 1`, true},
	{`len("héllo") == 5`, true},
	{`len(metadata.arr) == 2`, true},
	{`len(metadata.obj) == 2`, true},
	{`len(metadata.n) == 1`, false},
	{`len(metadata.missing) == 0`, false},
	{`upper(metadata.u) == "Ü"`, true},
	{`lower("ÀB") == "àb"`, true},
	{`upper("ß") == "ß"`, true},
	{`lower(metadata.n) == "1"`, false},
	{`metadata.u matches "^.$"`, true},
	{`request.route matches "^/v1/"`, true},
	{`request.route matches "search"`, true}, // unanchored
	{`request.route matches "(?i)SEARCH"`, true},
	{`metadata.missing matches "x"`, false},
	{`not (metadata.missing matches "x")`, true}, // nil gives false, not an error
	{`not (metadata.n matches "1")`, false},      // a number fails
	{`metadata.missing contains "a"`, false},
	{`not (metadata.missing contains "a")`, true},
	{`not (metadata.n contains "1")`, false},
	{`request.route startsWith "/v1/" and request.verb == "POST"`, true},
	{`"é" startsWith "e"`, false},
	{`request.uri endsWith "ü"`, true},
	{`request.host contains metadata.missing`, false},
	// Builtins.
	{`trim("  a  ") == "a"`, true},
	{`trim("xxaxx", "x") == "a"`, true},
	{`trimPrefix(request.route, "/v1") == "/search"`, true},
	{`trimSuffix("a ") == "a"`, true},
	{`round(2.5) == 3 and round(-2.5) == -3`, true},
	{`ceil(1.2) == 2 and floor(-1.2) == -2`, true},
	{`abs(metadata.neg) == 7`, true},
	{`abs(metadata.s) == 150`, false},
	// Conversions (ours, not expr's).
	{`float("1.5") == 1.5`, true},
	{`float("-2e3") == -2000`, true},
	{`float(".5") == 0.5`, true},
	{`float(metadata.s) == 150`, true},
	{`float(" 1") == 1`, false},
	{`float("inf") > 0`, false},
	{`float("1_0") == 10`, false},
	{`float("1e400") > 0`, false},
	{`float(metadata.t) == 1`, false},
	{`int("+12") == 12`, true},
	{`int("-12") == -12`, true},
	{`int("1.0") == 1`, false},
	{`int("99999999999999999999") != 0`, false},
	{`int(-2.7) == -2`, true},
	{`int(metadata.big) != 0`, false},
	{`int(metadata.missing) == 0`, false},
	{`string(response.status) == "200"`, true},
	{`string(metadata.n) == "150"`, true},
	{`string(metadata.big) == "1e+300"`, true},
	{`string(metadata.t) == "true"`, true},
	{`string(metadata.s) == "150"`, true},
	{`string(metadata.arr) != ""`, false},
	{`string(metadata.missing) != ""`, false},
	// The rest of the environment.
	{`time >= 1735689600000 and duration_ms < 100 and weight == 3`, true},
	{`user_id == "u1" and company_id == "c1" and session_token == "s1"`, true},
	{`request.ip == "203.0.113.7" and request.api_version == "2024-01-01"`, true},
	{`request.body_size == 512 and response.body_size == 2000000`, true},
	{`if metadata.t { true } else { false }`, true},
}

func TestFilterSemantics(t *testing.T) {
	env := testEnv()
	for _, c := range filterCases {
		m := mustCompile(t, Definition{Filter: c.filter, Aggregation: AggCount})
		got := m.Eval(env)
		if got.Matched != c.want {
			t.Errorf("%s: matched = %v, want %v", c.filter, got.Matched, c.want)
		}
		if got.Matched && got.Value != 1 {
			t.Errorf("%s: count value = %v, want 1", c.filter, got.Value)
		}
	}
}

const bad = "error"

var valueCases = []struct {
	agg, value string
	want       any // float64, string (unique text), or bad
}{
	{AggSum, `metadata.n`, 150.0},
	{AggSum, `1`, 1.0},
	{AggSum, `response.body_size / 1e6`, 2.0},
	{AggSum, `metadata.n * weight`, 450.0},
	{AggSum, `float(metadata.s)`, 150.0},
	{AggSum, `metadata.missing ?? 0`, 0.0},
	{AggSum, `len(request.route)`, 10.0},
	{AggSum, `9223372036854775807 + 1`, -9223372036854775808.0},
	{AggSum, `-metadata.n`, -150.0},
	{AggSum, `metadata.s`, bad}, // no implicit conversion
	{AggSum, `metadata.missing`, bad},
	{AggSum, `metadata.nul`, bad},
	{AggSum, `metadata.t`, bad},
	{AggSum, `metadata.arr`, bad},
	{AggSum, `metadata.obj`, bad},
	{AggSum, `response.status / 0`, bad},         // +Inf
	{AggSum, `(response.status - 200) / 0`, bad}, // NaN
	{AggSum, `metadata.big * metadata.big`, bad}, // overflows to +Inf
	{AggSum, `response.status % 0`, bad},
	{AggMax, `metadata.n`, 150.0},
	{AggMin, `duration_ms`, 35.0},
	{AggUnique, `user_id`, "u1"},
	{AggUnique, `metadata.s`, "150"},
	{AggUnique, `metadata.n`, 150.0},
	{AggUnique, `metadata.t`, bad},
	{AggUnique, `metadata.missing`, bad},
	{AggUnique, `metadata.obj`, bad},
}

func TestValueSemantics(t *testing.T) {
	env := testEnv()
	for _, c := range valueCases {
		m := mustCompile(t, Definition{Filter: "true", Value: c.value, Aggregation: c.agg})
		got := m.Eval(env)
		if !got.Matched {
			t.Fatalf("%s: not matched", c.value)
		}
		var want Result
		switch w := c.want.(type) {
		case float64:
			want = Result{Matched: true, Value: w}
		case string:
			if w == bad {
				want = Result{Matched: true, ValueError: true}
			} else {
				want = Result{Matched: true, Text: w, IsText: true}
			}
		}
		if got != want {
			t.Errorf("%s %s: got %+v, want %+v", c.agg, c.value, got, want)
		}
	}
}

func TestValueNotEvaluatedWhenUnmatched(t *testing.T) {
	m := mustCompile(t, Definition{Filter: "response.status == 404", Value: "metadata.s"})
	if got := m.Eval(testEnv()); got != (Result{}) {
		t.Fatalf("got %+v, want the zero Result", got)
	}
}

// A call without a response reads status 0, body_size 0, no headers.
func TestNoResponse(t *testing.T) {
	env := &Env{Metadata: nil}
	m := mustCompile(t, Definition{Filter: `response.status == 0 and response.headers["content-type"] == "" and "x" not in metadata and metadata.x == nil`, Value: "response.body_size"})
	if got := m.Eval(env); got != (Result{Matched: true, Value: 0}) {
		t.Fatalf("got %+v", got)
	}
}

// A blocked call counts only for a meter whose filter reads blocked_by,
// in any way; the value, or a metadata key of that name, does not decide.
func TestBlockedCalls(t *testing.T) {
	cases := []struct {
		filter, value string
		counts        bool // CountsBlocked
		blocked, free bool // matches a call blocked by rule r1, and one not blocked
	}{
		{"true", "1", false, false, true},
		{`response.status == 200`, "1", false, false, true},
		{`blocked_by != ""`, "1", true, true, false},
		{`blocked_by == "r1"`, "1", true, true, false},
		{`true or blocked_by == ""`, "1", true, true, true},
		{`blocked_by == ""`, "1", true, false, true},
		{`len(blocked_by) >= 0`, "1", true, true, true},
		{`metadata.blocked_by == nil`, "1", false, false, true},
		{`"blocked_by" not in metadata`, "1", false, false, true},
		{"true", `len(blocked_by) + 1`, false, false, true},
	}
	for _, c := range cases {
		m := mustCompile(t, Definition{Filter: c.filter, Value: c.value})
		if m.CountsBlocked() != c.counts {
			t.Errorf("filter %s: CountsBlocked() = %v, want %v", c.filter, m.CountsBlocked(), c.counts)
		}
		blocked, free := testEnv(), testEnv()
		blocked.BlockedBy = "r1"
		if got := m.Eval(blocked).Matched; got != c.blocked {
			t.Errorf("filter %s, value %s: a blocked call matched = %v, want %v", c.filter, c.value, got, c.blocked)
		}
		if got := m.Eval(free).Matched; got != c.free {
			t.Errorf("filter %s, value %s: a call not blocked matched = %v, want %v", c.filter, c.value, got, c.free)
		}
	}
}

func TestEvalConcurrent(t *testing.T) {
	m := mustCompile(t, Definition{Filter: `metadata.n > 100`, Value: "metadata.n"})
	env := testEnv()
	done := make(chan Result)
	for range 4 {
		go func() {
			var r Result
			for range 1000 {
				r = m.Eval(env)
			}
			done <- r
		}()
	}
	for range 4 {
		if r := <-done; r.Value != 150 {
			t.Fatalf("got %+v", r)
		}
	}
}

func TestConversionsDirect(t *testing.T) {
	// Bounds of int(float): [-2^63, 2^63).
	if _, err := toInt(-9223372036854775808.0); err != nil {
		t.Errorf("int(-2^63): %v", err)
	}
	if _, err := toInt(9223372036854775808.0); err == nil {
		t.Error("int(2^63) should fail")
	}
	if _, err := toInt(math.NaN()); err == nil {
		t.Error("int(NaN) should fail")
	}
	for _, s := range []string{"", "+", "-", ".", "e1", "1e", "1e+", "1.2.3", "0x10", "NaN", "Infinity", " 1", "1 "} {
		if isDecimal(s) {
			t.Errorf("isDecimal(%q) = true", s)
		}
	}
	for _, s := range []string{"1", "-1", "+1.", ".5", "1.5e-3", "1E9", "007"} {
		if !isDecimal(s) {
			t.Errorf("isDecimal(%q) = false", s)
		}
	}
}
