package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/storage/clickhouse"
	"github.com/meterd/meterd/storage/duckdb"
)

// TestRunBacktestDuckDB runs the comparison on a small store: the three
// paths must agree (timings are reported, not asserted).
func TestRunBacktestDuckDB(t *testing.T) {
	ctx := context.Background()
	st, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "bench.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := RunBacktest(ctx, st, 20_000, Options{Load: true, Runs: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if !r.Agree || r.Matched == 0 {
		t.Fatalf("paths disagree or nothing matched: %+v", r)
	}
}

// BenchmarkBacktestDuckDB: METERD_BENCH_EVENTS events (default 1M) in a
// DuckDB file.
func BenchmarkBacktestDuckDB(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("METERD_BENCH_EVENTS")); err == nil {
		n = v
	}
	ctx := context.Background()
	st, err := duckdb.Open(ctx, filepath.Join(b.TempDir(), "bench.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := RunBacktest(ctx, st, n, Options{Load: true, Runs: 3})
	if err != nil {
		b.Fatal(err)
	}
	b.Log(r)
	b.ReportMetric(float64(r.SQL.Milliseconds()), "sql-ms")
	b.ReportMetric(float64(r.Hand.Milliseconds()), "hand-ms")
	b.ReportMetric(float64(r.VM.Milliseconds()), "vm-ms")
}

// BenchmarkBacktestClickHouse: the same on METERD_TEST_CLICKHOUSE (a
// fresh database, dropped afterwards).
func BenchmarkBacktestClickHouse(b *testing.B) {
	dsn := os.Getenv("METERD_TEST_CLICKHOUSE")
	if dsn == "" {
		b.Skip("METERD_TEST_CLICKHOUSE not set")
	}
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("METERD_BENCH_EVENTS")); err == nil {
		n = v
	}
	ctx := context.Background()
	db := "meterd_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	st, err := clickhouse.Open(ctx, strings.TrimSuffix(dsn, "/")+"/"+db)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		st.Conn().Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
		st.Close()
	}()
	r, err := RunBacktest(ctx, st, n, Options{Load: true, Runs: 3, SkipVM: os.Getenv("METERD_BENCH_SKIP_VM") != ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Log(r)
	b.ReportMetric(float64(r.SQL.Milliseconds()), "sql-ms")
	b.ReportMetric(float64(r.Hand.Milliseconds()), "hand-ms")
	b.ReportMetric(float64(r.VM.Milliseconds()), "vm-ms")
}
