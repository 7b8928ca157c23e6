package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/storage/storetest"
)

// clickhouseDSN is the test server; the test skips without one (CI must
// have one).
func clickhouseDSN(tb testing.TB) string {
	dsn := storetest.ClickHouseDSN(tb)
	if dsn == "" {
		tb.Skip("METERD_TEST_CLICKHOUSE not set")
	}
	return dsn
}

// The comparison on a small store of each kind: the three paths must
// agree, bucket by bucket and group by group (timings are reported, not
// asserted).
func TestRunBacktest(t *testing.T) {
	for _, dsn := range []string{"", "clickhouse"} {
		name := "duckdb"
		if dsn != "" {
			name, dsn = dsn, clickhouseDSN(t)
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st, desc, cleanup, err := OpenFresh(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			r, err := RunBacktest(ctx, st, 20_000, Options{Load: true, Runs: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(desc, r)
			if !r.Agree || r.Matched == 0 || r.Events != 20_000 {
				t.Fatalf("paths disagree or nothing matched: %+v", r)
			}
		})
	}
}

// The ClickHouse store is dropped by the cleanup.
func TestOpenFreshClickHouseDrops(t *testing.T) {
	dsn := clickhouseDSN(t)
	ctx := context.Background()
	_, desc, cleanup, err := OpenFresh(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.Fields(strings.TrimPrefix(desc, "ClickHouse database "))[0]
	if !strings.Contains(db, "_bench_backtest_") {
		t.Fatalf("database %q", db)
	}
	cleanup()
	st, _, cleanup, err := OpenFresh(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	rows, err := st.Query(ctx, "SELECT toInt64(count()) FROM system.databases WHERE name = '"+db+"'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		rows.Scan(&n)
	}
	if n != 0 {
		t.Fatalf("%s still exists", db)
	}
}

func benchEvents() int {
	if v, err := strconv.Atoi(os.Getenv("METERD_BENCH_EVENTS")); err == nil {
		return v
	}
	return 1_000_000
}

func benchmarkBacktest(b *testing.B, dsn string) {
	ctx := context.Background()
	st, _, cleanup, err := OpenFresh(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	r, err := RunBacktest(ctx, st, benchEvents(), Options{Load: true, Runs: 3, SkipVM: os.Getenv("METERD_BENCH_SKIP_VM") != ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Log(r)
	if !r.Agree {
		b.Fatalf("paths disagree: %v", r.Disagree)
	}
	b.ReportMetric(float64(r.SQL.Microseconds())/1000, "sql-ms")
	b.ReportMetric(float64(r.Hand.Microseconds())/1000, "hand-ms")
	b.ReportMetric(r.SQLOverHand(), "sql/hand")
	if !r.SkippedVM {
		b.ReportMetric(float64(r.VM.Microseconds())/1000, "vm-ms")
		b.ReportMetric(r.SQLSpeedup(), "vm/sql")
	}
}

// BenchmarkBacktestDuckDB: METERD_BENCH_EVENTS events (default 1M) in a
// new DuckDB file; METERD_BENCH_SKIP_VM=1 skips the VM. The whole run is
// one iteration: use -benchtime 1x.
func BenchmarkBacktestDuckDB(b *testing.B) { benchmarkBacktest(b, "") }

// BenchmarkBacktestClickHouse: the same in a new database on
// METERD_TEST_CLICKHOUSE, dropped afterwards.
func BenchmarkBacktestClickHouse(b *testing.B) { benchmarkBacktest(b, clickhouseDSN(b)) }

// The billing bench on a small DuckDB store: the steady-state totals must
// equal the full recompute's (timings are reported, not asserted).
func TestRunBilling(t *testing.T) {
	ctx := context.Background()
	st, _, cleanup, err := OpenFresh(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	n, _ := strconv.Atoi(os.Getenv("METERD_BENCH_BILLING_EVENTS"))
	r, err := RunBilling(ctx, st, BillingConfig{Events: max(n, 30_000), Customers: 300, Meters: 5, Late: 0.1, LateWithin: 6 * time.Hour}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Agree || r.New == 0 || r.Late == 0 {
		t.Fatalf("%+v", r)
	}
	t.Logf("first %s, steady %s (%.3f), recompute %s", r.Full, r.Steady, r.Ratio(), r.Recomp)
}

// What the billing bench reports the hours keep reads on both stores.
func TestKept(t *testing.T) {
	for _, dsn := range []string{"", "clickhouse"} {
		name := "duckdb"
		if dsn != "" {
			name, dsn = dsn, clickhouseDSN(t)
		}
		t.Run(name, func(t *testing.T) {
			st, _, cleanup, err := OpenFresh(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			if _, _, err := kept(context.Background(), st); err != nil {
				t.Fatal(err)
			}
		})
	}
}
