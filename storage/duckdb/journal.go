package duckdb

import (
	"context"
	"strings"
	"time"

	"github.com/meterd/meterd/storage"
)

// AppendJournal implements storage.Journal; the primary key refuses a
// repeated (stream, key).
func (s *Store) AppendJournal(ctx context.Context, e storage.JournalEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO journal VALUES (?, ?, ?, ?)`, e.Stream, e.Key, e.At.UnixMilli(), e.Body)
	if err != nil && strings.Contains(err.Error(), "Constraint Error") {
		return storage.ErrConflict
	}
	return unavailable(err)
}

// JournalEntries implements storage.Journal.
func (s *Store) JournalEntries(ctx context.Context, q storage.JournalQuery) ([]storage.JournalEntry, error) {
	query, args := q.SQL()
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY at_ms, key`, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []storage.JournalEntry
	for rows.Next() {
		var e storage.JournalEntry
		var at int64
		if err := rows.Scan(&e.Stream, &e.Key, &at, &e.Body); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
