package rules

import "testing"

func BenchmarkEval(b *testing.B) {
	m := mustCompile(b, Definition{
		Filter: `response.status == 200 and request.route startsWith "/v1/search" and company.plan in ["pro", "enterprise"]`,
		Value:  "metadata.n / 1000",
	})
	env := testEnv()
	b.ReportAllocs()
	for b.Loop() {
		if !m.Eval(env).Matched {
			b.Fatal("no match")
		}
	}
}

func BenchmarkEvalFilterError(b *testing.B) {
	m := mustCompile(b, Definition{Filter: `metadata.s > 100`, Aggregation: AggCount})
	env := testEnv()
	b.ReportAllocs()
	for b.Loop() {
		if m.Eval(env).Matched {
			b.Fatal("match")
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	d := Definition{Name: "m", Aggregation: AggSum,
		Filter: `response.status == 200 and request.route startsWith "/v1/search"`, Value: "metadata.tokens"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(d); err != nil {
			b.Fatal(err)
		}
	}
}
