package duckdb

import (
	"context"
	"database/sql"
)

// migration is one schema step: its SQL, then, when SQL alone cannot do
// it, Go code in the same transaction.
type migration struct {
	sql  string
	then func(ctx context.Context, conn *sql.Conn) error
}

// migrations are applied in order; each runs once and is recorded in
// schema_migrations. Never edit a released migration: append a new one.
var migrations = []migration{
	// 1: events and profiles (docs/architecture.md describes every column).
	{sql: `CREATE TABLE events (
		id VARCHAR NOT NULL, external_id VARCHAR NOT NULL, format VARCHAR NOT NULL,
		day DATE NOT NULL, time_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL,
		type VARCHAR NOT NULL, source VARCHAR NOT NULL, subject VARCHAR NOT NULL,
		verb VARCHAR NOT NULL, uri VARCHAR NOT NULL, route VARCHAR NOT NULL, host VARCHAR NOT NULL,
		ip VARCHAR NOT NULL, api_version VARCHAR NOT NULL,
		req_header_keys VARCHAR[] NOT NULL, req_header_values VARCHAR[] NOT NULL,
		req_size BIGINT NOT NULL, req_body VARCHAR NOT NULL,
		has_response BOOLEAN NOT NULL, resp_time_ms BIGINT NOT NULL, status INTEGER NOT NULL,
		resp_header_keys VARCHAR[] NOT NULL, resp_header_values VARCHAR[] NOT NULL,
		resp_size BIGINT NOT NULL, resp_body VARCHAR NOT NULL, duration_ms BIGINT NOT NULL,
		user_id VARCHAR NOT NULL, company_id VARCHAR NOT NULL, session_token VARCHAR NOT NULL,
		subscription_id VARCHAR NOT NULL, direction VARCHAR NOT NULL, weight BIGINT NOT NULL,
		metadata VARCHAR NOT NULL,
		meta_keys VARCHAR[] NOT NULL, meta_types UTINYINT[] NOT NULL,
		meta_strs VARCHAR[] NOT NULL, meta_nums DOUBLE[] NOT NULL,
		user_traits VARCHAR NOT NULL, company_traits VARCHAR NOT NULL,
		trait_keys VARCHAR[] NOT NULL, trait_types UTINYINT[] NOT NULL,
		trait_strs VARCHAR[] NOT NULL, trait_nums DOUBLE[] NOT NULL
	);
	CREATE TABLE profiles (
		kind VARCHAR NOT NULL, id VARCHAR NOT NULL, company_id VARCHAR NOT NULL,
		metadata VARCHAR NOT NULL, modified_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL,
		raw VARCHAR NOT NULL
	);`},
	// 2: the meters' append-only audit trail (storage.MeterRecord).
	{sql: `CREATE TABLE meter_log (
		meter_id VARCHAR NOT NULL, seq INTEGER NOT NULL, kind VARCHAR NOT NULL,
		at_ms BIGINT NOT NULL, actor VARCHAR NOT NULL, version INTEGER NOT NULL,
		effective_from_ms BIGINT NOT NULL, body VARCHAR NOT NULL,
		PRIMARY KEY (meter_id, seq)
	);`},
	// 3: the append-only journal (storage.JournalEntry): billing settings,
	// Stripe webhook events and the billing ledger.
	{sql: `CREATE TABLE journal (
		stream VARCHAR NOT NULL, key VARCHAR NOT NULL, at_ms BIGINT NOT NULL, body VARCHAR NOT NULL,
		PRIMARY KEY (stream, key)
	);`},
	// 4: billing workers' liveness marks (storage.Beats), newest per worker.
	{sql: `CREATE TABLE worker_beats (worker VARCHAR PRIMARY KEY, at_ms BIGINT NOT NULL);`},
	// 5: the identity index (storage.Fingerprint), so that a duplicate is
	// found whatever time it carries; filled from the events stored so far.
	{sql: `CREATE TABLE event_ids (fp UBIGINT NOT NULL, time_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL);`,
		then: backfillIdentities},
	// 6: the governance rule that blocked a call ("" for the rows before:
	// nothing was blocked). DuckDB adds no column with a constraint; the
	// appender always writes a string, so it never holds NULL.
	{sql: `ALTER TABLE events ADD COLUMN IF NOT EXISTS blocked_by VARCHAR DEFAULT '';`},
	// 7: the usage cache (storage.UsageCache): meters' usage per customer
	// and closed hour. A piece's rows are its head row (counted false)
	// and a row per customer with matched events.
	{sql: `CREATE TABLE IF NOT EXISTS usage_hours (
		meter_id VARCHAR NOT NULL, from_ms BIGINT NOT NULL, to_ms BIGINT NOT NULL,
		mark BIGINT NOT NULL, version INTEGER NOT NULL, counted BOOLEAN NOT NULL, customer VARCHAR NOT NULL,
		value DOUBLE NOT NULL, has_value BOOLEAN NOT NULL, events BIGINT NOT NULL, errors BIGINT NOT NULL
	);`},
}
