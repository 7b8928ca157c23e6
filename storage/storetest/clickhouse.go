package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouseDSN is the test ClickHouse server (env METERD_TEST_CLICKHOUSE,
// e.g. clickhouse://127.0.0.1:9000; .ci/clickhouse.sh starts one): "" when
// unset, except in CI (CI=true), where the test fails instead: CI must
// never pass by leaving ClickHouse out.
func ClickHouseDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("METERD_TEST_CLICKHOUSE")
	if dsn == "" && os.Getenv("CI") == "true" {
		tb.Fatal("METERD_TEST_CLICKHOUSE is not set, and CI=true: the ClickHouse tests must run in CI")
	}
	return dsn
}

// FreshClickHouseDSN is ClickHouseDSN with a new, uniquely named database
// (prefix_<random>), which the test's cleanup drops; "" when no server is
// configured. Register the store's Close after calling it, so that it runs
// before the drop.
func FreshClickHouseDSN(tb testing.TB, prefix string) string {
	tb.Helper()
	dsn := ClickHouseDSN(tb)
	if dsn == "" {
		return ""
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("METERD_TEST_CLICKHOUSE: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	db := prefix + "_" + hex.EncodeToString(b)
	u.Path = "/" + db
	tb.Cleanup(func() {
		opts, err := ch.ParseDSN(dsn)
		if err == nil {
			opts.Auth.Database = "default"
			var conn ch.Conn
			if conn, err = ch.Open(opts); err == nil {
				err = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
				conn.Close()
			}
		}
		if err != nil {
			tb.Errorf("drop %s: %v", db, err)
		}
	})
	return u.String()
}
