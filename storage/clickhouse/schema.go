package clickhouse

import (
	"context"
	"slices"
)

// migration is one schema step: statements (ClickHouse runs one per
// query), then, when statements alone cannot do it, Go code. Both must be
// idempotent: a migration cut short is run again from the start.
type migration struct {
	stmts []string
	then  func(ctx context.Context, s *Store) error
}

// migrations are applied in order; each is recorded in schema_migrations
// once all its steps succeeded. Never edit a released migration: append a
// new one. Every statement must work on ClickHouse 18.16.
var migrations = []migration{
	// 1: events and profiles (docs/architecture.md describes every column).
	// ReplacingMergeTree on (time_ms, id) is the dedup backstop when several
	// meterd processes write to one database: merges drop repeated rows.
	{stmts: []string{
		`CREATE TABLE IF NOT EXISTS events (` + eventsColumns + `) ENGINE = ReplacingMergeTree
		PARTITION BY toYYYYMM(day)
		ORDER BY (time_ms, id)`,
		`CREATE TABLE IF NOT EXISTS profiles (
			kind String, id String, company_id String, metadata String,
			modified_ms Int64, received_ms Int64, raw String
		) ENGINE = MergeTree
		ORDER BY (modified_ms, received_ms)`,
	}},
	// 2: the meters' append-only audit trail (storage.MeterRecord).
	{stmts: []string{
		`CREATE TABLE IF NOT EXISTS meter_log (
			meter_id String, seq Int32, kind String, at_ms Int64, actor String,
			version Int32, effective_from_ms Int64, body String
		) ENGINE = MergeTree
		ORDER BY (meter_id, seq)`,
	}},
	// 3: the append-only journal (storage.JournalEntry): billing settings,
	// Stripe webhook events and the billing ledger.
	{stmts: []string{
		`CREATE TABLE IF NOT EXISTS journal (
			stream String, key String, at_ms Int64, body String
		) ENGINE = MergeTree
		ORDER BY (stream, key)`,
	}},
	// 4: billing workers' liveness marks (storage.Beats). Merges keep the
	// newest row per worker; reads take max(at_ms) meanwhile.
	{stmts: []string{
		`CREATE TABLE IF NOT EXISTS worker_beats (
			worker String, at_ms Int64
		) ENGINE = ReplacingMergeTree(at_ms)
		ORDER BY worker`,
	}},
	// 5: identities (storage.Fingerprint): events become a plain MergeTree
	// whose rows carry a copy tag (a ReplacingMergeTree could merge away
	// the copy that must count), event_ids indexes them by fingerprint
	// (filled by a materialised view, so no insert can skip it), and
	// event_losers lists the copies that lost a race between processes
	// (see identity.go).
	{stmts: []string{
		`CREATE TABLE IF NOT EXISTS event_ids (fp UInt64, time_ms Int64, received_ms Int64)
		ENGINE = MergeTree
		PARTITION BY toYYYYMM(toDateTime(intDiv(received_ms, 1000)))
		ORDER BY fp`,
		`CREATE TABLE IF NOT EXISTS event_losers (copy UInt64, id String, time_ms Int64, at_ms Int64)
		ENGINE = MergeTree ORDER BY copy`,
	}, then: migrateToCopies},
	// 6: the governance rule that blocked a call ("" for the rows before:
	// nothing was blocked).
	{then: func(ctx context.Context, s *Store) error {
		return s.addColumn(ctx, "events", "blocked_by", "String DEFAULT ''")
	}},
	// 7: event_losers is read as event_losers_local, the name a cluster's
	// shards give their own (Store.LiveCondition reads it on both).
	{then: func(ctx context.Context, s *Store) error {
		var n uint64
		if err := s.conn.QueryRow(ctx, `SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'event_losers'`).Scan(&n); err != nil || n == 0 {
			return err
		}
		return s.conn.Exec(ctx, `RENAME TABLE event_losers TO event_losers_local`)
	}},
	// 8: the usage cache (storage.UsageCache, usage.go): event_stamps
	// records when each hour of events was inserted (filled by a view, so
	// no insert can skip it), usage_hours keeps meters' usage per customer
	// and closed hour. A cluster gets both as local and Distributed tables
	// (clusterTables; createClusterSchema adds them to a schema-7 cluster).
	{stmts: []string{eventStampsTable, eventStampsView("event_stamps", "events"), usageHoursTable}},
}

// The tables and view of migration 8, on one server; on a cluster,
// clusterTables and clusterStatements name the same.
const (
	eventStampsColumns = `hour_ms Int64, at DateTime`
	eventStampsEngine  = `MergeTree PARTITION BY toYYYYMM(at) ORDER BY (at, hour_ms)`
	eventStampsTable   = `CREATE TABLE IF NOT EXISTS event_stamps (` + eventStampsColumns + `) ENGINE = ` + eventStampsEngine
	usageHoursColumns  = `meter_id String, from_ms Int64, to_ms Int64, mark Int64, version Int32, counted UInt8, customer String,
		value Float64, has_value UInt8, events Int64, errors Int64`
	usageHoursEngine = `ReplacingMergeTree(mark) ORDER BY (meter_id, from_ms, to_ms, counted, customer)`
	usageHoursTable  = `CREATE TABLE IF NOT EXISTS usage_hours (` + usageHoursColumns + `) ENGINE = ` + usageHoursEngine
)

// eventStampsView stamps the hours of every block inserted into source
// (one row per hour and block) in target.
func eventStampsView(target, source string) string {
	return `CREATE MATERIALIZED VIEW IF NOT EXISTS event_stamps_mv TO ` + target +
		` AS SELECT time_ms - time_ms % 3600000 AS hour_ms, now() AS at FROM ` + source + ` GROUP BY hour_ms`
}

// addColumn adds a column unless the table has it: 18.16 has no ADD
// COLUMN IF NOT EXISTS, and a migration cut short runs again.
func (s *Store) addColumn(ctx context.Context, table, name, typ string) error {
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM system.columns
		WHERE database = currentDatabase() AND table = ? AND name = ?`, table, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	return s.conn.Exec(ctx, "ALTER TABLE "+table+" ADD COLUMN "+name+" "+typ)
}

// eventsColumns are the events columns of migration 1.
const eventsColumns = `id String, external_id String, format String,
	day Date, time_ms Int64, received_ms Int64,
	type String, source String, subject String,
	verb String, uri String, route String, host String, ip String, api_version String,
	req_header_keys Array(String), req_header_values Array(String),
	req_size Int64, req_body String,
	has_response UInt8, resp_time_ms Int64, status Int32,
	resp_header_keys Array(String), resp_header_values Array(String),
	resp_size Int64, resp_body String, duration_ms Int64,
	user_id String, company_id String, session_token String,
	subscription_id String, direction String, weight Int64,
	metadata String,
	meta_keys Array(String), meta_types Array(UInt8),
	meta_strs Array(String), meta_nums Array(Float64),
	user_traits String, company_traits String,
	trait_keys Array(String), trait_types Array(UInt8),
	trait_strs Array(String), trait_nums Array(Float64)`

// eventsV5 is the events table from schema 5 on: migration 1's columns plus
// copy, in a MergeTree.
const eventsV5 = `CREATE TABLE IF NOT EXISTS %s (` + eventsColumns + `,
	copy UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (time_ms, id)`

// columnsV1 are migration 1's events columns, the ones migration 5 copies
// into its new table (which has no later column yet).
var columnsV1 = []string{
	"id", "external_id", "format", "day", "time_ms", "received_ms", "type", "source", "subject",
	"verb", "uri", "route", "host", "ip", "api_version", "req_header_keys", "req_header_values",
	"req_size", "req_body", "has_response", "resp_time_ms", "status", "resp_header_keys",
	"resp_header_values", "resp_size", "resp_body", "duration_ms", "user_id", "company_id",
	"session_token", "subscription_id", "direction", "weight", "metadata",
	"meta_keys", "meta_types", "meta_strs", "meta_nums", "user_traits", "company_traits",
	"trait_keys", "trait_types", "trait_strs", "trait_nums",
}

// insertColumns is the events table's columns in the order eventColumns
// fills them, then copy (the writer's tag); the batch INSERT names them
// (ClickHouse 18.16 needs the list).
var insertColumns = append(slices.Clone(columnsV1), "blocked_by", "copy")
