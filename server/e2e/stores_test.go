package e2e

import (
	"context"
	"testing"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/clickhouse"
	"github.com/meterd/meterd/storage/duckdb"
	"github.com/meterd/meterd/storage/storetest"
)

// storeOpeners opens each store an end-to-end test runs on: DuckDB, and
// the test ClickHouse server and cluster when configured (fresh databases
// named prefix_...).
func storeOpeners(prefix string) map[string]func(t *testing.T) storage.Store {
	clickhouseAt := func(t *testing.T, dsn, env string) storage.Store {
		if dsn == "" {
			t.Skip(env + " not set")
		}
		st, err := clickhouse.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	return map[string]func(t *testing.T) storage.Store{
		"duckdb": func(t *testing.T) storage.Store {
			st, err := duckdb.Open(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"clickhouse": func(t *testing.T) storage.Store {
			return clickhouseAt(t, storetest.FreshClickHouseDSN(t, prefix), "METERD_TEST_CLICKHOUSE")
		},
		"cluster": func(t *testing.T) storage.Store {
			return clickhouseAt(t, storetest.FreshClusterDSN(t, prefix+"_cluster"), "METERD_TEST_CLICKHOUSE_CLUSTER")
		},
	}
}
