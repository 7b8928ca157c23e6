package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/meterd/meterd/storage/clickhouse"
)

// clickhouseDSN is the test server (env METERD_TEST_CLICKHOUSE, e.g.
// clickhouse://127.0.0.1:9000). Without it ClickHouse comparisons are
// skipped, except in CI (CI=true), which must run them.
func clickhouseDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("METERD_TEST_CLICKHOUSE")
	if dsn == "" && os.Getenv("CI") == "true" {
		tb.Fatal("METERD_TEST_CLICKHOUSE is not set, and CI=true: the ClickHouse side of the engine tests must run in CI")
	}
	return dsn
}

// openClickHouse opens a fresh database on the test server, dropped at
// cleanup; nil when no server is configured.
func openClickHouse(tb testing.TB) *clickhouse.Store {
	tb.Helper()
	dsn := clickhouseDSN(tb)
	if dsn == "" {
		return nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("METERD_TEST_CLICKHOUSE: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	db := "meterd_engine_" + hex.EncodeToString(b)
	u.Path = "/" + db
	s, err := clickhouse.Open(context.Background(), u.String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
			tb.Errorf("drop %s: %v", db, err)
		}
		s.Close()
	})
	return s
}
