package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	return testServer(tb, "METERD_TEST_CLICKHOUSE", "ClickHouse")
}

// testServer is the DSN in env: "" when unset, except in CI (CI=true),
// where the test fails instead: CI must never pass by leaving a server
// out.
func testServer(tb testing.TB, env, what string) string {
	tb.Helper()
	dsn := os.Getenv(env)
	if dsn == "" && os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not set, and CI=true: the %s tests must run in CI", env, what)
	}
	return dsn
}

// FreshClickHouseDSN is ClickHouseDSN with a new, uniquely named database
// (prefix_<random>), which the test's cleanup drops; "" when no server is
// configured. Register the store's Close after calling it, so that it runs
// before the drop.
func FreshClickHouseDSN(tb testing.TB, prefix string) string {
	tb.Helper()
	return fresh(tb, ClickHouseDSN(tb), prefix)
}

// ClickHouseClusterDSN is the test cluster (env
// METERD_TEST_CLICKHOUSE_CLUSTER, e.g.
// clickhouse://127.0.0.1:9100?cluster=meterd_two_shards; .ci/run starts
// two servers as its two shards): "" when unset, except in CI, where the
// test fails instead.
func ClickHouseClusterDSN(tb testing.TB) string {
	tb.Helper()
	return testServer(tb, "METERD_TEST_CLICKHOUSE_CLUSTER", "cluster")
}

// FreshClusterDSN is ClickHouseClusterDSN with a new database, dropped at
// cleanup from every host of the cluster.
func FreshClusterDSN(tb testing.TB, prefix string) string {
	tb.Helper()
	return fresh(tb, ClickHouseClusterDSN(tb), prefix)
}

// FreshReplicatedDSN is a new database on the test cluster of replicas (env
// METERD_TEST_CLICKHOUSE_REPLICATED, e.g.
// clickhouse://127.0.0.1:9300?cluster=meterd_replicated: one shard, two
// replicas, ZooKeeper; .ci/run starts them), dropped at cleanup; "" when
// unset, except in CI, where the test fails instead.
func FreshReplicatedDSN(tb testing.TB, prefix string) string {
	tb.Helper()
	return fresh(tb, testServer(tb, "METERD_TEST_CLICKHOUSE_REPLICATED", "replication"), prefix)
}

// fresh names a new database on dsn's server (and its cluster's hosts) and
// drops it at cleanup.
func fresh(tb testing.TB, dsn, prefix string) string {
	tb.Helper()
	if dsn == "" {
		return ""
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("%s: %v", dsn, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	db := prefix + "_" + hex.EncodeToString(b)
	u.Path = "/" + db
	cluster := u.Query().Get("cluster")
	tb.Cleanup(func() {
		if err := drop(dsn, cluster, db); err != nil {
			tb.Errorf("drop %s: %v", db, err)
		}
	})
	return u.String()
}

// drop drops db on the server of dsn and, for a cluster, on every host
// system.clusters lists for it.
func drop(dsn, cluster, db string) error {
	q, _ := url.Parse(dsn)
	v := q.Query()
	v.Del("cluster")
	q.RawQuery = v.Encode()
	opts, err := ch.ParseDSN(q.String())
	if err != nil {
		return err
	}
	opts.Auth.Database = "default"
	conn, err := ch.Open(opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx := context.Background()
	hosts := []string{opts.Addr[0]}
	if cluster != "" {
		rows, err := conn.Query(ctx, `SELECT DISTINCT host_address, port FROM system.clusters WHERE cluster = ?`, cluster)
		if err != nil {
			return err
		}
		for rows.Next() {
			var h string
			var p uint16
			if err := rows.Scan(&h, &p); err != nil {
				rows.Close()
				return err
			}
			hosts = append(hosts, fmt.Sprintf("%s:%d", h, p))
		}
		rows.Close()
	}
	for _, h := range hosts {
		o := *opts
		o.Addr = []string{h}
		c, err := ch.Open(&o)
		if err != nil {
			return err
		}
		err = c.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
