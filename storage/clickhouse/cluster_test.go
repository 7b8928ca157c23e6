package clickhouse

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
	"github.com/meterd/meterd/storage/storetest"
)

// clusterDSN is a new database on the test cluster; the tests skip
// without one (but fail in CI).
func clusterDSN(t *testing.T) string {
	t.Helper()
	dsn := storetest.FreshClusterDSN(t, "meterd_cluster")
	if dsn == "" {
		t.Skip("METERD_TEST_CLICKHOUSE_CLUSTER not set (e.g. clickhouse://127.0.0.1:9100?cluster=meterd_two_shards)")
	}
	return dsn
}

func TestClusterSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storage.Options) storage.Store { return openWith(t, clusterDSN(t), o) })
}

func TestClusterTwoWritersRacingCountOnce(t *testing.T) { twoWritersRacing(t, clusterDSN(t)) }

// The cluster's local tables have the columns, in order, that a single
// server's tables have after every migration: one schema, two layouts.
func TestClusterSchemaMatchesServer(t *testing.T) {
	ctx := context.Background()
	one := openFresh(t)
	cl := openWith(t, clusterDSN(t), storage.Options{})
	cols := func(s *Store, table string) []string {
		rows, err := s.conn.Query(ctx, `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ?`, table) // in the order of the definition
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n, ty string
			if err := rows.Scan(&n, &ty); err != nil {
				t.Fatal(err)
			}
			out = append(out, n+" "+ty)
		}
		return out
	}
	for _, spec := range clusterTables {
		single, local, dist := cols(one, spec.name), cols(cl, spec.name+"_local"), cols(cl, spec.name)
		if spec.name == "event_losers" {
			single = cols(one, "event_losers_local")
		}
		if len(single) == 0 || !reflect.DeepEqual(single, local) || !reflect.DeepEqual(local, dist) {
			t.Errorf("%s: one server %v\ncluster local %v\ndistributed %v", spec.name, single, local, dist)
		}
	}
	if v1, v2 := schemaVersion(t, one), schemaVersion(t, cl); v1 != len(migrations) || v2 != v1 {
		t.Errorf("schema versions: one server %d, cluster %d, want %d", v1, v2, len(migrations))
	}
}

func schemaVersion(t *testing.T, s *Store) int {
	v, err := s.SchemaVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Every copy of an identity lands on one shard, with its identity index
// rows: a batch spreads over both shards, and each shard indexes exactly
// its own events.
func TestClusterShardsByIdentity(t *testing.T) {
	ctx := context.Background()
	dsn := clusterDSN(t)
	s := openWith(t, dsn, storage.Options{})
	now := time.Now().UTC()
	evs := eventgen.Generate(11, 400, now.Add(-time.Hour), now)
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// Retried right after the answer, with other times: duplicates (the
	// insert was synchronous, so every row is on its shard already).
	again := append([]storage.Event(nil), evs...)
	for i := range again {
		again[i].Time = again[i].Time.Add(-time.Duration(i) * time.Second)
	}
	if r, err := s.Insert(ctx, again); err != nil || r.Duplicates != len(evs) {
		t.Fatalf("retry: %+v, %v", r.Inserted, err)
	}
	hosts := clusterHosts(t, s)
	if len(hosts) < 2 {
		t.Fatalf("cluster has %d hosts, want 2 or more", len(hosts))
	}
	total := uint64(0)
	for _, h := range hosts {
		u, _ := url.Parse(dsn)
		q := u.Query()
		q.Del("cluster")
		u.RawQuery, u.Host = q.Encode(), h
		opts, err := ch.ParseDSN(u.String())
		if err != nil {
			t.Fatal(err)
		}
		conn, err := ch.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		var events, ids, misplaced uint64
		err = conn.QueryRow(ctx, `SELECT count(), (SELECT count() FROM event_ids_local),
			(SELECT count() FROM events_local WHERE cityHash64(id) % ? != ?)
			FROM events_local`, uint64(len(hosts)), uint64(shardIndex(hosts, h))).Scan(&events, &ids, &misplaced)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if events == 0 || ids != events || misplaced != 0 {
			t.Errorf("shard %s: %d events, %d indexed, %d on the wrong shard", h, events, ids, misplaced)
		}
		total += events
	}
	if total != uint64(len(evs)) {
		t.Fatalf("the shards hold %d events, want %d", total, len(evs))
	}
}

// clusterHosts are the shard hosts, in shard order.
func clusterHosts(t *testing.T, s *Store) []string {
	rows, err := s.conn.Query(context.Background(), `SELECT host_address, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num`, s.cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		var p uint16
		if err := rows.Scan(&h, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s:%d", h, p))
	}
	return out
}

func shardIndex(hosts []string, h string) int {
	for i, x := range hosts {
		if x == h {
			return i
		}
	}
	return -1
}

func TestReplicatedEngine(t *testing.T) {
	for engine, want := range map[string]string{
		"MergeTree ORDER BY copy":                   "ReplicatedMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}') ORDER BY copy",
		"ReplacingMergeTree(at_ms) ORDER BY worker": "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}', at_ms) ORDER BY worker",
	} {
		if got := replicatedEngine(engine, "db", "t_local"); got != want {
			t.Errorf("%s:\n got %s\nwant %s", engine, got, want)
		}
	}
}

// replicatedDSN is a new database on the test cluster of replicas.
func replicatedDSN(t *testing.T) string {
	t.Helper()
	dsn := storetest.FreshReplicatedDSN(t, "meterd_replicated")
	if dsn == "" {
		t.Skip("METERD_TEST_CLICKHOUSE_REPLICATED not set (e.g. clickhouse://127.0.0.1:9300?cluster=meterd_replicated)")
	}
	return dsn
}

func TestReplicatedSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storage.Options) storage.Store { return openWith(t, replicatedDSN(t), o) })
}

// On a cluster whose shard has replicas, meterd makes Replicated tables and
// waits for every replica on insert: an event acknowledged through one
// replica is on the other at once, and a retry sent through the other is a
// duplicate.
func TestReplicasHoldEveryAcknowledgedEvent(t *testing.T) {
	ctx := context.Background()
	dsn := replicatedDSN(t)
	a := openWith(t, dsn, storage.Options{})
	hosts := clusterHosts(t, a)
	if len(hosts) < 2 {
		t.Fatalf("the cluster has %d hosts, want a shard of 2 replicas", len(hosts))
	}
	now := time.Now().UTC()
	evs := eventgen.Generate(13, 200, now.Add(-time.Hour), now)
	if _, err := a.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		u, _ := url.Parse(dsn)
		u.Host = h
		b := openWith(t, u.String(), storage.Options{}) // each replica as the entry
		var engine string
		var rows uint64
		if err := b.conn.QueryRow(ctx, `SELECT engine, (SELECT count() FROM events_local) FROM system.tables
			WHERE database = currentDatabase() AND name = 'events_local'`).Scan(&engine, &rows); err != nil {
			t.Fatal(err)
		}
		if engine != "ReplicatedMergeTree" || rows != uint64(len(evs)) {
			t.Errorf("replica %s: events_local is a %s holding %d rows, want ReplicatedMergeTree with %d", h, engine, rows, len(evs))
		}
		again := append([]storage.Event(nil), evs[:50]...)
		for i := range again {
			again[i].Time = again[i].Time.Add(-time.Minute)
		}
		if r, err := b.Insert(ctx, again); err != nil || r.Duplicates != 50 {
			t.Fatalf("retry through %s: %d accepted, %v; want 50 duplicates", h, r.Inserted, err)
		}
	}
}
