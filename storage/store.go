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
	// SchemaVersion is the newest applied migration.
	SchemaVersion(ctx context.Context) (int, error)
	Close() error
}

// ErrUnavailable wraps errors that mean the store cannot be reached now
// (the server answers 503 with Retry-After for them).
var ErrUnavailable = errors.New("store unavailable")
