package storage

import (
	"context"
	"errors"
)

// Store is the event store. storage/duckdb (embedded default) and
// storage/clickhouse (production) implement it; storage/storetest is the
// suite both must pass.
type Store interface {
	// Backend names the implementation: "duckdb" or "clickhouse".
	Backend() string
	// Insert stores a batch atomically (all or none) and deduplicates by
	// Event.ID: an event whose ID is already stored, or that repeats an
	// earlier one in the same batch, is skipped and counted as a duplicate.
	// Insert is called by one writer at a time (see server/ingest).
	Insert(ctx context.Context, events []Event) (InsertResult, error)
	// ListEvents returns events newest first: by Time desc, then ID desc.
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// Stats summarises the events matching f (Limit and Before are ignored).
	Stats(ctx context.Context, f EventFilter) (Stats, error)
	// PutProfiles appends profile updates.
	PutProfiles(ctx context.Context, profiles []Profile) error
	// Profiles returns every stored profile update, oldest first by
	// (ModifiedAt, ReceivedAt).
	Profiles(ctx context.Context) ([]Profile, error)
	// Query runs a read-only SQL query in the backend's dialect (named by
	// Backend) and returns its rows; the engine's backtests use it.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// ScanEvents calls fn for every event with From <= Time < To (the other
	// filter fields apply too; Limit and Before are ignored), in time order,
	// streaming: the VM evaluator uses it where SQL cannot express a meter.
	ScanEvents(ctx context.Context, f EventFilter, fn func(*Event) error) error
	MeterLog
	Journal
	Beats
	UsageCache
	// SchemaVersion is the newest applied migration.
	SchemaVersion(ctx context.Context) (int, error)
	Close() error
}

// Rows is a query result: database/sql's *sql.Rows and clickhouse-go's
// driver.Rows both satisfy it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// ErrUnavailable wraps errors that mean the store cannot be used now: it
// cannot be reached, is overloaded, or was closed (the server answers 503
// with Retry-After for them). Errors about the query itself, and a
// canceled or timed-out context, are not wrapped.
var ErrUnavailable = errors.New("store unavailable")

// ErrConflict is returned when an append would repeat an existing key.
var ErrConflict = errors.New("conflict")
