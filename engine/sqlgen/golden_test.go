package sqlgen

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meterd/meterd/rules"
)

var updateGolden = flag.Bool("update", false, "rewrite the expected SQL in testdata/ (go test ./engine/sqlgen -run TestGoldenSQL -update)")

// goldenMeters are the translations a change to the SQL is read on in
// review: typical meters, and each construct whose SQL is not obvious.
var goldenMeters = []struct {
	name string
	def  rules.Definition
	w    Window
}{
	{"count_search_calls", rules.Definition{Filter: `response.status == 200 and request.route startsWith "/v1/search"`, Aggregation: rules.AggCount}, Window{}},
	{"sum_metadata_tokens", rules.Definition{Filter: `metadata.plan == "pro"`, Value: `float(metadata.tokens)`, Aggregation: rules.AggSum}, Window{}},
	{"sum_body_megabytes", rules.Definition{Filter: `true`, Value: `response.body_size / 1e6`, Aggregation: rules.AggSum}, Window{}},
	{"max_duration_by_user", rules.Definition{Filter: `request.verb in ["GET", "POST"]`, Value: `duration_ms`, Aggregation: rules.AggMax, GroupBy: rules.GroupByUser}, Window{}},
	{"unique_users", rules.Definition{Filter: `(company.plan ?? "free") != "free"`, Value: `user_id`, Aggregation: rules.AggUnique}, Window{}},
	{"matches_and_headers", rules.Definition{Filter: `request.route matches "^/v1/(search|lookup)$" and request.headers["x-api-key"] != ""`, Aggregation: rules.AggCount}, Window{}},
	{"integer_arithmetic", rules.Definition{Filter: `response.status % 100 == 4 or -request.body_size < 0`, Value: `request.body_size * 2 + 1`, Aggregation: rules.AggSum}, Window{}},
	{"strings", rules.Definition{Filter: `lower(trim(metadata.region ?? "")) contains "eu" and len(request.route) > 3`, Aggregation: rules.AggCount}, Window{}},
	{"counts_blocked_calls", rules.Definition{Filter: `blocked_by != ""`, Aggregation: rules.AggCount}, Window{}},
	{"one_customer_live_rows", rules.Definition{Filter: `true`, Aggregation: rules.AggCount}, Window{Group: "acme", Live: "copy NOT IN (SELECT copy FROM `db`.event_losers_local)"}},
	{"customer_buckets", rules.Definition{Filter: `true`, Value: `weight`, Aggregation: rules.AggSum}, Window{GroupBuckets: true}},
	{"periods_per_customer", rules.Definition{Filter: `true`, Aggregation: rules.AggCount}, Window{GroupFromMs: map[string]int64{"acme": 1800_000, "o'brien": 2700_000}}},
}

// TestGoldenSQL pins the SQL each dialect is given for goldenMeters
// (testdata/DIALECT/NAME.sql): a change to the translation shows in review
// as a change to these files.
func TestGoldenSQL(t *testing.T) {
	for _, d := range []Dialect{DuckDB{}, ClickHouse{}} {
		for _, g := range goldenMeters {
			g.def.Name = g.name
			m, err := rules.Compile(g.def)
			if err != nil {
				t.Fatalf("%s: %v", g.name, err)
			}
			w := g.w
			w.FromMs, w.ToMs, w.BucketMs, w.Limit = 0, 7200_000, 3600_000, 10
			p, err := Query(d, []Span{{Meter: m}}, w)
			if err != nil {
				t.Fatalf("%s %s: %v", d.Name(), g.name, err)
			}
			path := filepath.Join("testdata", d.Name(), g.name+".sql")
			got := p.SQL + "\n"
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (write it with -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s: the SQL differs from %s (review the change, then go test ./engine/sqlgen -run TestGoldenSQL -update):\n%s",
					g.name, path, firstDifference(string(want), got))
			}
		}
	}
}

// firstDifference shows the first line where want and got differ.
func firstDifference(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n want %s\n  got %s", i+1, w, g)
		}
	}
	return ""
}
