package rules

import (
	"strings"
	"testing"

	"github.com/expr-lang/expr/builtin"

	"github.com/meterd/meterd/engine/fault"
)

func exprBuiltinNames() []string {
	var out []string
	for _, f := range builtin.Builtins {
		out = append(out, f.Name)
	}
	return out
}

// compileErr compiles and returns the single error, failing otherwise.
func compileErr(t *testing.T, d Definition) *fault.Error {
	t.Helper()
	_, err := Compile(d)
	es, ok := fault.AsList(err)
	if !ok || len(es) != 1 {
		t.Fatalf("Compile(%+v): want exactly one error, got %v", d, err)
	}
	return es[0]
}

func TestExpressionErrors(t *testing.T) {
	cases := []struct {
		field, src string
		agg        string
		code       string
		line, col  int
		msg        string // substring of the message
	}{
		// expr's messages, said in plain words with what to do.
		{"filter", `response.status ==`, "", CodeSyntax, 1, 18, `"==" needs a value after it`},
		{"filter", `response.status == 200 and`, "", CodeSyntax, 1, 26, `"and" needs a condition after it; finish the condition or remove "and"`},
		{"filter", "response.status == 200\n  or ", "", CodeSyntax, 2, 5, `"or" needs a condition after it`},
		{"filter", `response.status = 200`, "", CodeSyntax, 1, 17, `"=" is not a comparison; did you mean "=="?`},
		{"filter", `response.status === 200`, "", CodeSyntax, 1, 19, `"===" is not an operator; write "=="`},
		{"filter", `response.status == 200)`, "", CodeSyntax, 1, 23, `this ")" closes nothing; remove it`},
		{"filter", `(response.status == 200 or false`, "", CodeSyntax, 1, 32, `the "(" at column 1 is never closed; add ")"`},
		{"filter", `request.route startswith "/x"`, "", CodeSyntax, 1, 15, "unknown operator startswith; did you mean startsWith?"},
		{"filter", `response.status 200`, "", CodeSyntax, 1, 17, "an operator (==, and, or, ...) is missing before 200"},
		{"filter", `response.status == 200 and request.`, "", CodeSyntax, 1, 35, `a field name must follow "request."`},
		{"filter", `response.status ≠ 200`, "", CodeSyntax, 1, 17, `"≠" is not part of the language; did you mean !=?`},
		{"filter", `"unterminated`, "", CodeSyntax, 1, 14, "this string has no closing quote"},
		{"filter", `request.rout == "/x"`, "", CodeUnknownField, 1, 9, "unknown field request.rout; did you mean request.route?"},
		{"filter", `status == 200`, "", CodeUnknownField, 1, 1, "did you mean response.status?"},
		{"filter", `request.status == 200`, "", CodeUnknownField, 1, 9, "did you mean response.status?"},
		{"filter", `reqest.route == "/"`, "", CodeUnknownField, 1, 1, "did you mean request?"},
		{"filter", `body_size > 0`, "", CodeUnknownField, 1, 1, "did you mean request.body_size or response.body_size?"},
		{"filter", `Response.Status == 200`, "", CodeUnknownField, 1, 1, "did you mean response?"},
		{"filter", `zzzzzz == 1`, "", CodeUnknownField, 1, 1, "unknown field zzzzzz"},
		{"filter", "true and\n  request.rout == 1", "", CodeUnknownField, 2, 11, "request.rout"},
		{"filter", `"ü" == request.rout`, "", CodeUnknownField, 1, 16, "request.rout"}, // columns count characters
		{"filter", `flor(1.5) == 1`, "", CodeUnknownFunction, 1, 1, "unknown function flor; did you mean floor?"},
		{"filter", `response.status == "200"`, "", CodeType, 1, 17, `response.status is a number and "200" is a string, so "==" cannot compare them; remove the quotes: 200`},
		{"filter", `request.route == 5`, "", CodeType, 1, 15, `request.route is a string and 5 is a number, so "==" cannot compare them; did you mean "5", in quotes?`},
		{"filter", `response.status + "a" == 1`, "", CodeType, 1, 17, `so "+" cannot combine them`},
		{"filter", `not response.status`, "", CodeType, 1, 1, `"not" needs a bool (true or false), and response.status is a number`},
		{"filter", `response.status == 200 or 5`, "", CodeType, 1, 24, `"or" needs a bool (true or false) on each side, and 5 is a number`},
		{"filter", `lower(response.status) == "x"`, "", CodeType, 1, 16, "cannot use int as argument"},
		{"filter", `request.verb.x == 1`, "", CodeType, 1, 14, "request.verb is a string and has no field x"},
		{"filter", `response.status`, "", CodeNotBool, 1, 1, "got int"},
		{"filter", `nil`, "", CodeNotBool, 1, 1, "got nil"},
		{"filter", `"yes"`, "", CodeNotBool, 1, 1, "got string"},
		{"value", `request.route`, AggSum, CodeNotNumeric, 1, 1, "got string"},
		{"value", `response.status == 200`, AggMax, CodeNotNumeric, 1, 1, "got bool"},
		{"value", `true`, AggUnique, CodeType, 1, 1, "number or a string"},
		{"filter", `request.route matches "("`, "", CodeInvalidRegex, 1, 23, "missing closing )"},
		// The stores' RE2 refuses this program ("pattern too large").
		{"filter", `request.route matches "\\pL{1000}"`, "", CodeTooLarge, 1, 23, "too large for the event stores' regular expressions"},
		{"filter", `true and request.route matches "(?i)x" and request.host matches "[\\pL\\pN]{1,200}"`, "", CodeTooLarge, 1, 65, "the limit is 349525"},
		{"filter", `request.route matches request.host`, "", CodeForbidden, 1, 31, "constant string"},
		{"filter", `response.status in 200..299`, "", CodeForbidden, 1, 23, "range"},
		{"filter", `repeat("a", 1000000) == ""`, "", CodeForbidden, 1, 1, "repeat() is not allowed"},
		{"filter", `now() > 0`, "", CodeForbidden, 1, 1, "wall clock"},
		{"filter", `date("2024-01-01") > date("2023-01-01")`, "", CodeForbidden, 1, 1, "date() is not allowed"},
		{"filter", `all(metadata.arr, # > 1)`, "", CodeForbidden, 1, 1, "predicates"},
		{"filter", `count(metadata.arr, # > 1) > 0`, "", CodeForbidden, 1, 1, "aggregation: count"},
		{"filter", `let x = 1; x == 1`, "", CodeForbidden, 1, 5, "let is not allowed"},
		{"filter", `true; true`, "", CodeForbidden, 1, 1, "sequence"},
		{"filter", `$env.time > 0`, "", CodeForbidden, 1, 1, "$env"},
		{"filter", `metadata.arr[0] == 1`, "", CodeForbidden, 1, 13, "indexing an array"},
		{"filter", `request.route[0:2] == "/v"`, "", CodeForbidden, 1, 14, "slicing"},
		{"filter", `metadata[request.route] == 1`, "", CodeForbidden, 1, 9, "computed key"},
		{"filter", `metadata["a.b"] == 1`, "", CodeForbidden, 1, 9, "ambiguous"},
		{"filter", `company[""] == 1`, "", CodeForbidden, 1, 8, "ambiguous"},
		{"filter", `request.headers["X-Api-Key"] == "k"`, "", CodeInvalidValue, 1, 16, `request.headers["x-api-key"]`},
		{"filter", `(request.route | lower()) == "/x"`, "", CodeForbidden, 1, 18, "pipe"},
		{"filter", `"x" in metadata.arr`, "", CodeForbidden, 1, 17, "right side of in"},
		{"filter", `response.status in [200, response.status]`, "", CodeForbidden, 1, 35, "only constants"},
		{"filter", `[1, 2] == nil`, "", CodeForbidden, 1, 1, "array literal"},
		{"filter", `{a: 1}.a == 1`, "", CodeForbidden, 1, 8, "computed value"},
		{"filter", `metadata == nil`, "", CodeForbidden, 1, 1, "metadata is not a value"},
		{"filter", `len(request.headers) > 0`, "", CodeForbidden, 1, 13, "request.headers is not a value"},
		{"filter", `request == nil`, "", CodeForbidden, 1, 1, "request is not a value"},
		{"filter", `b"x" == nil`, "", CodeForbidden, 1, 1, "byte string"},
		{"filter", `string(1.5) == "1.5"`, "", CodeForbidden, 1, 1, "engines format floats differently"},
		{"filter", `string(response.body_size / 2) == "1"`, "", CodeForbidden, 1, 1, "engines format floats differently"},
		{"filter", `string(metadata.n ?? 1) == "1"`, "", CodeForbidden, 1, 1, "engines format floats differently"},
		{"filter", `split(request.route, "/") == nil`, "", CodeForbidden, 1, 1, "builds an array"},
		{"filter", `hasPrefix(request.route, "/v1")`, "", CodeForbidden, 1, 1, "startsWith"},
		{"filter", `int(1, 2) == 1`, "", CodeType, 1, 1, "too many arguments"},
		{"filter", `float() == 1`, "", CodeType, 1, 1, "not enough arguments"},
		{"filter", `trim("a", "b", "c") == ""`, "", CodeType, 1, 1, ""},
	}
	for _, c := range cases {
		d := Definition{Name: "m", Filter: "true", Aggregation: AggSum}
		if c.agg != "" {
			d.Aggregation = c.agg
		}
		if c.field == "filter" {
			d.Filter = c.src
		} else {
			d.Value = c.src
		}
		e := compileErr(t, d)
		if e.Field != c.field || e.Code != c.code || e.Line != c.line || e.Column != c.col || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s %q:\n got %s %s %d:%d %q\nwant %s %s %d:%d ~%q", c.field, c.src, e.Field, e.Code, e.Line, e.Column, e.Message, c.field, c.code, c.line, c.col, c.msg)
		}
		if e.Snippet == "" {
			t.Errorf("%q: no snippet", c.src)
		}
	}
}

func TestSnippet(t *testing.T) {
	e := compileErr(t, Definition{Name: "m", Filter: `response.stauts == 200`, Aggregation: AggCount})
	want := "response.stauts == 200\n         ^"
	if e.Snippet != want {
		t.Fatalf("snippet:\n%s\nwant:\n%s", e.Snippet, want)
	}
	if e.Error() != "filter:1:10: unknown field response.stauts; did you mean response.status?" {
		t.Fatalf("Error() = %q", e.Error())
	}
}

func TestLimits(t *testing.T) {
	cases := []struct {
		name, src string
		msg       string
	}{
		{"long source", strings.Repeat("true or ", 600) + "true", "bytes long"},
		{"million parens", strings.Repeat("(", 1_000_000) + "true" + strings.Repeat(")", 1_000_000), "bytes long"},
		{"deep parens", strings.Repeat("(", 40) + "true" + strings.Repeat(")", 40), "nested more than 32"},
		{"deep brackets", "response.status in " + strings.Repeat("[", 40) + "1" + strings.Repeat("]", 40), "nested more than 32"},
		{"many nodes", strings.Repeat("1 + ", 300) + "1 > 0", "more than 256 nodes"},
		{"unary chain", strings.Repeat("not ", 100) + "true", "nested more than 48 levels"},
		{"minus chain", strings.Repeat("-", 200) + "1 > 0", "nested more than 48 levels"},
	}
	for _, c := range cases {
		e := compileErr(t, Definition{Name: "m", Filter: c.src, Aggregation: AggCount})
		if e.Code != CodeTooLarge || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s: got %s %q", c.name, e.Code, e.Message)
		}
	}
	// Brackets inside strings and comments do not count.
	src := `request.route == "` + strings.Repeat("(", 100) + `" /* ` + strings.Repeat("[", 100) + ` */ or true`
	mustCompile(t, Definition{Filter: src, Aggregation: AggCount})
	// At the limit is fine.
	mustCompile(t, Definition{Filter: strings.Repeat("(", MaxNesting) + "true" + strings.Repeat(")", MaxNesting), Aggregation: AggCount})
}

func TestDefinitionErrors(t *testing.T) {
	ok := Definition{Name: "searches", Filter: "true", Aggregation: AggCount}
	cases := []struct {
		name  string
		edit  func(*Definition)
		field string
		code  string
		msg   string
	}{
		{"no name", func(d *Definition) { d.Name = "  " }, "name", CodeInvalidValue, "required"},
		{"long name", func(d *Definition) { d.Name = strings.Repeat("é", 201) }, "name", CodeTooLarge, "200"},
		{"control in name", func(d *Definition) { d.Name = "a\nb" }, "name", CodeInvalidValue, "control"},
		{"no filter", func(d *Definition) { d.Filter = " " }, "filter", CodeInvalidValue, "filter is required"},
		{"no aggregation", func(d *Definition) { d.Aggregation = "" }, "aggregation", CodeInvalidValue, "required: one of sum, count, max, min, unique"},
		{"bad aggregation", func(d *Definition) { d.Aggregation = "avg" }, "aggregation", CodeInvalidValue, `got "avg"`},
		{"bad group_by", func(d *Definition) { d.GroupBy = "team_id" }, "group_by", CodeInvalidValue, "company_id, user_id"},
		{"bad status", func(d *Definition) { d.Status = "deleted" }, "status", CodeInvalidValue, "active, inactive, archived"},
		{"rounding", func(d *Definition) { d.Rounding = "up" }, "rounding", CodeInvalidValue, "must be one of ceil, floor, round"},
		{"price id", func(d *Definition) { d.StripePriceID = "price 1" }, "stripe_price_id", CodeInvalidValue, "printable"},
		{"count with value", func(d *Definition) { d.Value = "metadata.tokens" }, "value", CodeInvalidValue, "takes no value"},
		{"unique without value", func(d *Definition) { d.Aggregation = AggUnique }, "value", CodeInvalidValue, "distinct"},
	}
	for _, c := range cases {
		d := ok
		c.edit(&d)
		e := compileErr(t, d)
		if e.Field != c.field || e.Code != c.code || !strings.Contains(e.Message, c.msg) || e.Line != 0 {
			t.Errorf("%s: got %s %s %q (line %d)", c.name, e.Field, e.Code, e.Message, e.Line)
		}
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	_, err := Compile(Definition{Filter: "request.rout == 1", Value: "request.verb", Aggregation: "avg"})
	es, ok := fault.AsList(err)
	if !ok {
		t.Fatalf("not a fault.List: %v", err)
	}
	var fields []string
	for _, e := range es {
		fields = append(fields, e.Field)
	}
	if got := strings.Join(fields, ","); got != "name,aggregation,filter,value" {
		t.Fatalf("fields = %s (%v)", got, err)
	}
}

func TestDefaults(t *testing.T) {
	m := mustCompile(t, Definition{Name: "n", Filter: "true", Aggregation: AggSum})
	if m.Def.Value != "1" || m.Def.GroupBy != GroupByCompany || m.Def.Status != StatusActive {
		t.Fatalf("defaults: %+v", m.Def)
	}
	if m.FilterTree == nil || m.ValueTree == nil || m.FilterTree.Node.Type().Kind().String() != "bool" {
		t.Fatalf("trees not kept or not typed")
	}
	env := &Env{CompanyID: "c", UserID: "u"}
	if m.GroupKey(env) != "c" {
		t.Fatal("group by company")
	}
	m = mustCompile(t, Definition{Name: "n", Filter: "true", Aggregation: AggCount, GroupBy: GroupByUser, Value: " 1 "})
	if m.GroupKey(env) != "u" {
		t.Fatal("group by user")
	}
	if m.Def.RoundingMode() != RoundCeil {
		t.Fatalf("default rounding %q, want ceil", m.Def.RoundingMode())
	}
	for _, r := range []string{RoundCeil, RoundFloor, RoundHalf} {
		m = mustCompile(t, Definition{Name: "n", Filter: "true", Aggregation: AggSum, Rounding: r})
		if m.Def.RoundingMode() != r {
			t.Fatalf("rounding %q kept as %q", r, m.Def.RoundingMode())
		}
	}
}

// Every expr builtin is either allowed or listed with a reason, so that
// no builtin slips in unreviewed when expr adds one.
func TestLanguageCoversBuiltins(t *testing.T) {
	for _, name := range exprBuiltinNames() {
		if !allowedBuiltins[name] && !allowedFunctions[name] && forbiddenReason[name] == "" {
			t.Errorf("expr builtin %s is not in Language", name)
		}
	}
	for _, c := range Language {
		if c.Note == "" || c.Kind == "" {
			t.Errorf("%s: missing kind or note", c.Name)
		}
	}
}
