package engine

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
	dsn := storetest.FreshClickHouseDSN(tb, "meterd_engine")
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
