package backtest

import (
	"context"
	"testing"

	"github.com/meterd/meterd/storage/clickhouse"
	"github.com/meterd/meterd/storage/storetest"
)

// clickhouseDSN is the test server, "" without one (CI must have one).
var clickhouseDSN = storetest.ClickHouseDSN

// openClickHouse opens a fresh database on the test server, dropped at
// cleanup; nil when no server is configured.
func openClickHouse(tb testing.TB) *clickhouse.Store {
	tb.Helper()
	return openClickHouseAt(tb, storetest.FreshClickHouseDSN(tb, "meterd_engine"))
}

// openCluster is a fresh database on the test cluster, nil without one.
func openCluster(tb testing.TB) *clickhouse.Store {
	tb.Helper()
	return openClickHouseAt(tb, storetest.FreshClusterDSN(tb, "meterd_engine_cluster"))
}

func openClickHouseAt(tb testing.TB, dsn string) *clickhouse.Store {
	tb.Helper()
	if dsn == "" {
		return nil
	}
	s, err := clickhouse.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
