// Package duckdb is meterd's embedded event store: one DuckDB file, nothing
// to install. It implements storage.Store.
package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/marcboeker/go-duckdb/v2"

	"github.com/meterd/meterd/storage"
)

// Store is a DuckDB-backed storage.Store.
type Store struct {
	db        *sql.DB
	connector *duckdb.Connector
	columns   sync.Pool // *eventColumns
	beatMu    sync.Mutex
	// newest is the latest time_ms stored (math.MinInt64 when empty): a
	// batch entirely after it needs no duplicate lookup.
	newest atomic.Int64
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the DuckDB database at path, or an
// in-memory database when path is "", and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
	}
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb %s: %w", path, err)
	}
	s := &Store{db: sql.OpenDB(c), connector: c}
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
	var newest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(time_ms) FROM events`).Scan(&newest); err != nil {
		s.db.Close()
		return nil, err
	}
	s.newest.Store(math.MinInt64)
	if newest.Valid {
		s.newest.Store(newest.Int64)
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
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?)`, v, time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersion implements storage.Store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}

// Insert implements storage.Store: one transaction per batch, duplicates
// dropped inside it, rows added with chunkAppender (far faster than
// INSERT statements, and part of the transaction).
func (s *Store) Insert(ctx context.Context, events []storage.Event) (storage.InsertResult, error) {
	var res storage.InsertResult
	if len(events) == 0 {
		return res, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return res, unavailable(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return res, unavailable(err)
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	fresh, isNew, err := s.newEvents(ctx, conn, events)
	if err != nil {
		return res, err
	}
	cols := s.columns.Get().(*eventColumns) // reused: its slices keep their capacity
	defer s.columns.Put(cols)               // empty again: close writes out what was added
	err = conn.Raw(func(dc any) error {
		raw, err := rawConn(dc)
		if err != nil {
			return err
		}
		a, err := newChunkAppender(raw, "events", cols.all())
		if err != nil {
			return err
		}
		for _, e := range fresh {
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
	})
	if err != nil {
		return res, fmt.Errorf("insert events: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return res, unavailable(err)
	}
	committed = true
	for _, e := range fresh {
		s.raiseNewest(e.Time.UnixMilli())
	}
	res.Inserted = len(fresh)
	res.Duplicates = len(events) - len(fresh)
	res.New = isNew
	return res, nil
}

// newEvents drops events repeated within the batch or already stored.
// Stored ids are looked up within the batch's time range: a retry carries
// the same time, and the range keeps the lookup to a few row groups.
func (s *Store) newEvents(ctx context.Context, conn *sql.Conn, events []storage.Event) ([]*storage.Event, []bool, error) {
	seen := make(map[string]struct{}, len(events))
	ids := make([]string, 0, len(events))
	lo, hi := events[0].Time.UnixMilli(), events[0].Time.UnixMilli()
	for i := range events {
		ms := events[i].Time.UnixMilli()
		lo, hi = min(lo, ms), max(hi, ms)
		if !utf8.ValidString(events[i].ID) { // DuckDB's VARCHAR holds UTF-8 only
			return nil, nil, fmt.Errorf("event %d: id is not valid UTF-8", i)
		}
		if _, dup := seen[events[i].ID]; !dup {
			seen[events[i].ID] = struct{}{}
			ids = append(ids, events[i].ID)
		}
	}
	stored := map[string]struct{}{}
	// Nothing stored is at or after lo when lo is past the newest stored
	// time: live traffic mostly arrives so, and the lookup is skipped.
	if lo <= s.newest.Load() {
		if err := s.storedIDs(ctx, conn, lo, hi, ids, stored); err != nil {
			return nil, nil, err
		}
	}
	out := make([]*storage.Event, 0, len(events))
	isNew := make([]bool, len(events))
	for i := range events {
		id := events[i].ID
		if _, old := stored[id]; old {
			continue
		}
		stored[id] = struct{}{} // later repeats in the batch are duplicates
		out = append(out, &events[i])
		isNew[i] = true
	}
	return out, isNew, nil
}

// storedIDs adds to stored the ids that events between lo and hi have.
func (s *Store) storedIDs(ctx context.Context, conn *sql.Conn, lo, hi int64, ids []string, stored map[string]struct{}) error {
	// The ids go as one JSON text: go-duckdb binds a VARCHAR[] with several
	// cgo calls per element, which was a third of the lookup's cost.
	idsJSON, _ := json.Marshal(ids)
	rows, err := conn.QueryContext(ctx, `SELECT id FROM events WHERE time_ms BETWEEN ? AND ?
		AND id IN (SELECT unnest(json_extract_string(?::JSON, '$[*]')))`, lo, hi, string(idsJSON))
	if err != nil {
		return unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		stored[id] = struct{}{}
	}
	return rows.Err()
}

// raiseNewest records that events up to ms are stored.
func (s *Store) raiseNewest(ms int64) {
	for {
		old := s.newest.Load()
		if ms <= old || s.newest.CompareAndSwap(old, ms) {
			return
		}
	}
}

func unavailable(err error) error {
	if err == nil || err == context.Canceled || err == context.DeadlineExceeded {
		return err
	}
	return fmt.Errorf("%w: %v", storage.ErrUnavailable, err)
}
