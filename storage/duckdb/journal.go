package duckdb

import (
	"context"
	"strings"

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
	return storage.ScanJournal(rows)
}
