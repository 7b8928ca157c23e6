// Package duckdb is meterd's embedded event store: one DuckDB file, nothing
// to install. It implements storage.Store.
package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/marcboeker/go-duckdb/mapping"
	"github.com/marcboeker/go-duckdb/v2"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// Store is a DuckDB-backed storage.Store.
type Store struct {
	db        *sql.DB
	reads     tables.DB // db, for storage/tables
	connector *duckdb.Connector
	columns   sync.Pool // *eventColumns
	beatMu    sync.Mutex
	usageMu   sync.Mutex // serialises PutUsage
	opts      storage.Options
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the DuckDB database at path, or an
// in-memory database when path is "", and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, storage.Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts storage.Options) (*Store, error) {
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
	}
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb %s: %w", path, err)
	}
	s := &Store{db: sql.OpenDB(c), connector: c, opts: opts}
	s.reads = on(s.db)
	s.columns.New = func() any { return newEventColumns() }
	// DuckDB checkpoints when its WAL reaches 16 MB by default; under
	// sustained ingestion that stalls the single writer every few seconds
	// (half the throughput, second-long p99). 256 MB trades a longer WAL
	// replay after a crash for steady ingestion.
	if _, err := s.db.ExecContext(ctx, "SET wal_autocheckpoint = '256MB'"); err != nil {
		s.db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// Backend implements storage.Store.
func (s *Store) Backend() string { return "duckdb" }

// DB is the database handle, for the engine's backtest queries.
func (s *Store) DB() *sql.DB { return s.db }

// Close checkpoints (so the next start needs no WAL replay) and closes.
func (s *Store) Close() error {
	_, _ = s.db.Exec("CHECKPOINT")
	return s.db.Close()
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL, applied_ms BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	for v := have + 1; v <= len(migrations); v++ {
		if err := s.inTx(ctx, func(conn *sql.Conn) error {
			m := migrations[v-1]
			if _, err := conn.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if m.then != nil {
				if err := m.then(ctx, conn); err != nil {
					return err
				}
			}
			_, err := conn.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?)`, v, time.Now().UnixMilli())
			return err
		}); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

// inTx runs fn in a transaction on one connection (so that fn may use the
// raw connection, as chunkAppender does), committing when it succeeds.
func (s *Store) inTx(ctx context.Context, fn func(conn *sql.Conn) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return unavailable(err)
	}
	if err := fn(conn); err != nil {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		return err
	}
	if err := ctx.Err(); err != nil { // a canceled caller must not get a late write
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		return unavailable(err)
	}
	return nil
}

// SchemaVersion implements storage.Store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", unavailable(err))
	}
	return int(v.Int64), nil
}

// Insert implements storage.Store: one transaction per batch, duplicates
// dropped inside it, rows added with chunkAppender (far faster than
// INSERT statements, and part of the transaction), and each new identity
// added to the event_ids index in the same transaction.
func (s *Store) Insert(ctx context.Context, events []storage.Event) (storage.InsertResult, error) {
	var res storage.InsertResult
	if len(events) == 0 {
		return res, nil
	}
	var fresh []*storage.Event
	err := s.inTx(ctx, func(conn *sql.Conn) error {
		var err error
		if fresh, res.New, err = s.newEvents(ctx, conn, events); err != nil {
			return err
		}
		cols := s.columns.Get().(*eventColumns) // reused: its slices keep their capacity
		defer s.columns.Put(cols)               // empty again: close writes out what was added
		err = conn.Raw(func(dc any) error {
			raw, err := rawConn(dc)
			if err != nil {
				return err
			}
			if err := appendEvents(raw, cols, fresh); err != nil {
				return err
			}
			ids := make([]identity, len(fresh))
			for i, e := range fresh {
				ids[i] = identityOf(e)
			}
			return appendIdentities(raw, ids)
		})
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		return nil
	})
	if err != nil {
		return storage.InsertResult{}, err
	}
	res.Inserted = len(fresh)
	res.Duplicates = len(events) - len(fresh)
	return res, nil
}

// appendEvents appends events to the events table.
func appendEvents(raw mapping.Connection, cols *eventColumns, events []*storage.Event) error {
	a, err := newChunkAppender(raw, "events", cols.all())
	if err != nil {
		return err
	}
	for _, e := range events {
		flat, err := e.Flatten()
		if err == nil {
			cols.add(e, flat)
			err = a.rowDone()
		}
		if err != nil {
			a.close()
			return err
		}
	}
	return a.close()
}

// newEvents drops events repeated within the batch or already stored
// (storage.FindStored: the fingerprints in event_ids, then the ids at the
// times found, whatever time the repeat carries).
func (s *Store) newEvents(ctx context.Context, conn *sql.Conn, events []storage.Event) ([]*storage.Event, []bool, error) {
	for i := range events {
		if !utf8.ValidString(events[i].ID) { // DuckDB's VARCHAR holds UTF-8 only
			return nil, nil, fmt.Errorf("event %d: id is not valid UTF-8", i)
		}
	}
	horizon := s.opts.Horizon(events)
	stored, err := storage.FindStored(storage.BatchIDs(events),
		func(fps []uint64) ([]int64, error) { return storedTimes(ctx, conn, fps, horizon) },
		func(times []int64, ids []string, _ []uint64) ([]string, error) {
			return storedIDs(ctx, conn, times, ids)
		})
	if err != nil {
		return nil, nil, err
	}
	fresh, isNew := storage.NewEvents(events, stored)
	return fresh, isNew, nil
}

// unavailable marks the errors after which the same call may succeed
// later with storage.ErrUnavailable (tables.MarkUnavailable): the database
// closed under the call, and DuckDB's errors of the machine rather than of
// the query (I/O, out of memory, a write-write conflict between
// transactions, a fatal error that invalidated the database). An error
// about the query itself (syntax, types, a constraint) is returned as is.
func unavailable(err error) error {
	return tables.MarkUnavailable(err, func(err error) bool {
		var de *duckdb.Error
		if errors.As(err, &de) {
			switch de.Type {
			case duckdb.ErrorTypeIO, duckdb.ErrorTypeOutOfMemory, duckdb.ErrorTypeTransaction,
				duckdb.ErrorTypeFatal, duckdb.ErrorTypeConnection:
				return true
			}
			return false
		}
		// database/sql's "database is closed" has no exported value.
		return errors.Is(err, sql.ErrConnDone) || err.Error() == "sql: database is closed"
	})
}

// queryer is a *sql.DB, or the *sql.Conn of a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// on is q for the shared reads (storage/tables).
func on(q queryer) tables.DB {
	return tables.DB{Unavailable: unavailable, Query: func(ctx context.Context, query string, args ...any) (storage.Rows, error) {
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, err // not a nil *sql.Rows in a non-nil storage.Rows
		}
		return rows, nil
	}}
}
