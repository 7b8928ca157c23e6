package clickhouse

// migrations are applied in order; each is a list of statements (ClickHouse
// runs one statement per query) and is recorded in schema_migrations once
// all of them succeeded. Never edit a released migration: append a new one.
// Every statement must be idempotent and work on ClickHouse 18.16.
var migrations = [][]string{
	// 1: events and profiles (docs/architecture.md describes every column).
	// ReplacingMergeTree on (time_ms, id) is the dedup backstop when several
	// meterd processes write to one database: merges drop repeated rows.
	{
		`CREATE TABLE IF NOT EXISTS events (
			id String, external_id String, format String,
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
			trait_strs Array(String), trait_nums Array(Float64)
		) ENGINE = ReplacingMergeTree
		PARTITION BY toYYYYMM(day)
		ORDER BY (time_ms, id)`,
		`CREATE TABLE IF NOT EXISTS profiles (
			kind String, id String, company_id String, metadata String,
			modified_ms Int64, received_ms Int64, raw String
		) ENGINE = MergeTree
		ORDER BY (modified_ms, received_ms)`,
	},
	// 2: the meters' append-only audit trail (storage.MeterRecord).
	{
		`CREATE TABLE IF NOT EXISTS meter_log (
			meter_id String, seq Int32, kind String, at_ms Int64, actor String,
			version Int32, effective_from_ms Int64, body String
		) ENGINE = MergeTree
		ORDER BY (meter_id, seq)`,
	},
	// 3: the append-only journal (storage.JournalEntry): billing settings,
	// Stripe webhook events and the billing ledger.
	{
		`CREATE TABLE IF NOT EXISTS journal (
			stream String, key String, at_ms Int64, body String
		) ENGINE = MergeTree
		ORDER BY (stream, key)`,
	},
	// 4: billing workers' liveness marks (storage.Beats). Merges keep the
	// newest row per worker; reads take max(at_ms) meanwhile.
	{
		`CREATE TABLE IF NOT EXISTS worker_beats (
			worker String, at_ms Int64
		) ENGINE = ReplacingMergeTree(at_ms)
		ORDER BY worker`,
	},
}

// insertColumns is the events table's columns in the order eventBlock fills
// them; the batch INSERT names them (ClickHouse 18.16 needs the list).
var insertColumns = []string{
	"id", "external_id", "format", "day", "time_ms", "received_ms", "type", "source", "subject",
	"verb", "uri", "route", "host", "ip", "api_version", "req_header_keys", "req_header_values",
	"req_size", "req_body", "has_response", "resp_time_ms", "status", "resp_header_keys",
	"resp_header_values", "resp_size", "resp_body", "duration_ms", "user_id", "company_id",
	"session_token", "subscription_id", "direction", "weight", "metadata",
	"meta_keys", "meta_types", "meta_strs", "meta_nums", "user_traits", "company_traits",
	"trait_keys", "trait_types", "trait_strs", "trait_nums",
}

// readColumns is what scanEvent reads: the event without its derived
// columns (day, flattened arrays).
const readColumns = `id, external_id, format, time_ms, received_ms, type, source, subject,
	verb, uri, route, host, ip, api_version, req_header_keys, req_header_values, req_size, req_body,
	has_response, resp_time_ms, status, resp_header_keys, resp_header_values, resp_size, resp_body,
	duration_ms, user_id, company_id, session_token, subscription_id, direction, weight, metadata,
	user_traits, company_traits`
