package clickhouse

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// A cluster store (DSN option cluster=NAME) keeps every table as a local
// table on each shard (NAME_local) and a Distributed table over them
// (NAME) that every query goes through. ON CLUSTER DDL needs ZooKeeper,
// so the schema is created on every shard host of system.clusters, one by
// one. Events are sharded by their identity's fingerprint (cityHash64 of
// the id): every copy of an identity lands on one shard, with its
// event_ids and event_losers rows, so deduplication holds per shard and
// the Live condition reads the shard's own event_losers_local. Inserts are
// synchronous (insert_distributed_sync): an acknowledged batch is on its
// shards, so a retry right after it is a duplicate.

// tableSpec is one table of the cluster schema.
type tableSpec struct {
	name, columns, engine string
	shard                 string // the Distributed table's sharding key
}

// clusterTables is the latest schema (schema len(migrations)) for a
// cluster; TestClusterSchemaMatchesServer checks that its local tables have
// the columns a single server's migrated tables have.
var clusterTables = []tableSpec{
	{"events", eventsColumns + ", copy UInt64, blocked_by String DEFAULT ''",
		"MergeTree PARTITION BY toYYYYMM(day) ORDER BY (time_ms, id)", "cityHash64(id)"},
	{"event_ids", "fp UInt64, time_ms Int64, received_ms Int64",
		"MergeTree PARTITION BY toYYYYMM(toDateTime(intDiv(received_ms, 1000))) ORDER BY fp", "fp"},
	{"event_losers", "copy UInt64, id String, time_ms Int64, at_ms Int64", "MergeTree ORDER BY copy", "cityHash64(id)"},
	{"profiles", "kind String, id String, company_id String, metadata String, modified_ms Int64, received_ms Int64, raw String",
		"MergeTree ORDER BY (modified_ms, received_ms)", "cityHash64(kind, id)"},
	{"meter_log", "meter_id String, seq Int32, kind String, at_ms Int64, actor String, version Int32, effective_from_ms Int64, body String",
		"MergeTree ORDER BY (meter_id, seq)", "cityHash64(meter_id)"},
	{"journal", "stream String, key String, at_ms Int64, body String", "MergeTree ORDER BY (stream, key)", "cityHash64(stream, key)"},
	{"worker_beats", "worker String, at_ms Int64", "ReplacingMergeTree(at_ms) ORDER BY worker", "cityHash64(worker)"},
	{"event_stamps", eventStampsColumns, eventStampsEngine, "rand()"},
	{"usage_hours", usageHoursColumns, usageHoursEngine, "cityHash64(meter_id)"},
}

// clusterStatements creates the cluster schema on one host: local tables
// (replicated when the cluster's shards have replicas), the view that
// indexes identities, and the Distributed tables.
func clusterStatements(cluster, db string, replicated bool) []string {
	var out []string
	for _, t := range clusterTables {
		engine := t.engine
		if replicated {
			engine = replicatedEngine(engine, db, t.name+"_local")
		}
		out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s_local (%s) ENGINE = %s", t.name, t.columns, engine))
	}
	out = append(out, `CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_mv TO event_ids_local
		AS SELECT cityHash64(id) AS fp, time_ms, received_ms FROM events_local`,
		eventStampsView("event_stamps_local", "events_local"))
	for _, t := range clusterTables {
		out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s AS %s_local ENGINE = Distributed(%s, %s, %s_local, %s)",
			t.name, t.name, quote(cluster), quote(db), t.name, t.shard))
	}
	return out
}

// replicatedEngine is engine's Replicated* twin: the table's replicas
// share the ZooKeeper path /clickhouse/tables/{shard}/DB/TABLE, each
// under its server's {replica} macro.
func replicatedEngine(engine, db, table string) string {
	name, rest, _ := strings.Cut(engine, " ")
	args := "'/clickhouse/tables/{shard}/" + db + "/" + table + "', '{replica}'"
	if base, params, ok := strings.Cut(name, "("); ok { // ReplacingMergeTree(at_ms)
		return "Replicated" + base + "(" + args + ", " + params + " " + rest
	}
	return "Replicated" + name + "(" + args + ") " + rest
}

// splitCluster removes the cluster option from a DSN (clickhouse-go would
// send it to the server as a setting) and returns it.
func splitCluster(dsn string) (rest, cluster string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", fmt.Errorf("clickhouse dsn: %w", err)
	}
	q := u.Query()
	cluster = q.Get("cluster")
	if q.Has("cluster") && !identifier.MatchString(cluster) {
		return "", "", fmt.Errorf("clickhouse dsn: cluster name %q: want letters, digits and _", cluster)
	}
	q.Del("cluster")
	u.RawQuery = q.Encode()
	return u.String(), cluster, nil
}

// shardHosts lists the hosts of a cluster's shards (every replica), as
// system.clusters names them on the entry host, and the most replicas a
// shard has.
func shardHosts(ctx context.Context, opts ch.Options, cluster string) (hosts []string, replicas int, err error) {
	opts.Auth.Database = ""
	conn, err := ch.Open(&opts)
	if err != nil {
		return nil, 0, fmt.Errorf("clickhouse %s: %w", opts.Addr, err)
	}
	defer conn.Close()
	rows, err := conn.Query(ctx, `SELECT host_address, port, max(replica_num) FROM system.clusters WHERE cluster = ?
		GROUP BY host_address, port ORDER BY host_address, port`, cluster)
	if err != nil {
		return nil, 0, fmt.Errorf("clickhouse %s: read system.clusters: %w", opts.Addr, unavailable(err))
	}
	defer rows.Close()
	for rows.Next() {
		var host string
		var port uint16
		var replica uint32
		if err := rows.Scan(&host, &port, &replica); err != nil {
			return nil, 0, err
		}
		hosts = append(hosts, fmt.Sprintf("%s:%d", host, port))
		replicas = max(replicas, int(replica))
	}
	if err := rows.Err(); err != nil {
		return nil, 0, unavailable(err)
	}
	if len(hosts) == 0 {
		return nil, 0, fmt.Errorf("clickhouse %s: no cluster %q in system.clusters (remote_servers in the server's configuration)", opts.Addr, cluster)
	}
	return hosts, replicas, nil
}

// createCluster creates the database and the cluster schema on every shard
// host and on the entry host, and records the schema version on each. It
// returns the most replicas a shard has.
func createCluster(ctx context.Context, opts ch.Options, cluster, db string) (int, error) {
	hosts, replicas, err := shardHosts(ctx, opts, cluster)
	if err != nil {
		return 0, err
	}
	if !contains(hosts, opts.Addr) {
		hosts = append(hosts, opts.Addr...) // an entry host that holds no shard still needs the Distributed tables
	}
	for _, h := range hosts {
		o := opts
		o.Addr = []string{h}
		if err := createDatabase(ctx, o, db); err != nil {
			return 0, err
		}
		o.Auth.Database = db
		conn, err := ch.Open(&o)
		if err != nil {
			return 0, fmt.Errorf("clickhouse %s: %w", h, err)
		}
		err = createClusterSchema(ctx, &Store{conn: conn, database: db}, cluster, replicas > 1)
		conn.Close()
		if err != nil {
			return 0, fmt.Errorf("clickhouse %s: %w", h, err)
		}
	}
	return replicas, nil
}

// createClusterSchema brings one host to the latest schema. Clusters start
// at the latest schema; a later migration that changes a table must say
// how it changes a cluster's too. Migration 8 only adds tables and a
// view: on a schema-7 cluster the statements (all IF NOT EXISTS) create
// what is missing.
func createClusterSchema(ctx context.Context, s *Store, cluster string, replicated bool) error {
	if err := s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations
		(version UInt32, applied_ms Int64) ENGINE = MergeTree ORDER BY version`); err != nil {
		return unavailable(err)
	}
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	switch {
	case have == len(migrations):
		return nil
	case have != 0 && have < clusterAddsFrom:
		return fmt.Errorf("the cluster schema is at version %d and this meterd expects %d: no cluster migration exists from it", have, len(migrations))
	}
	for _, stmt := range clusterStatements(cluster, s.database, replicated) {
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return unavailable(err)
		}
	}
	return s.insertRow(ctx, `INSERT INTO schema_migrations (version, applied_ms)`, uint32(len(migrations)), time.Now().UnixMilli())
}

// clusterAddsFrom is the oldest cluster schema that the latest one only
// adds tables or views to (migration 8 added event_stamps and
// usage_hours).
const clusterAddsFrom = 7

func contains(hosts []string, addrs []string) bool {
	for _, a := range addrs {
		for _, h := range hosts {
			if strings.EqualFold(h, a) {
				return true
			}
		}
	}
	return false
}
