package rules

import (
	"testing"

	"github.com/meterd/meterd/engine/fault"
)

// FuzzCompile: compiling any text never panics, every error is
// positioned, and a compiled meter evaluates without panicking.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`response.status == 200 and request.route startsWith "/v1/search"`,
		`metadata.tokens > 100 or response.status == 200`,
		`metadata.a?.b ?? 1`, `"k" in metadata`, `metadata.n in [1, -2.5, "x", nil]`,
		`request.headers["x-api-key"] matches "^k[0-9]+$"`, `len(metadata.u) == 1`,
		`int(metadata.s) % 7`, `float(metadata.s) / 0`, `string(response.status)`,
		`1 < metadata.n < 200`, `if metadata.t { 1 } else { 2 }`, `metadata.t ? 1 : 2`,
		`1..10`, `repeat("a", 9)`, `let x = 1; x`, `$env`, `all([1], # > 0)`, `((((1))))`,
		`metadata.arr[0]`, `"a" | upper()`, `b"x"`, `{a: 1}`, `/* ( */ true // [`,
		`9223372036854775807 + 1`, `-9223372036854775808`, `0x7fffffffffffffff`, "\"\\u00e9\"",
	} {
		f.Add(s, s)
	}
	env := testEnv()
	f.Fuzz(func(t *testing.T, filter, value string) {
		for _, agg := range []string{AggSum, AggUnique} {
			m, err := Compile(Definition{Name: "f", Filter: filter, Value: value, Aggregation: agg})
			if err != nil {
				es, ok := fault.AsList(err)
				if !ok || len(es) == 0 {
					t.Fatalf("error is not a fault.List: %v", err)
				}
				for _, e := range es {
					if e.Code == "" || e.Message == "" {
						t.Fatalf("incomplete error %+v", e)
					}
					if (e.Field == "filter" || e.Field == "value") && e.Code != CodeInvalidValue && (e.Line < 1 || e.Column < 1) {
						t.Fatalf("unpositioned error %+v", e)
					}
				}
				continue
			}
			m.Eval(env)
			m.Eval(&Env{})
		}
	})
}
