package duckdb

import (
	"context"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// AppendJournal implements storage.Journal; the primary key refuses a
// repeated (stream, key).
func (s *Store) AppendJournal(ctx context.Context, e storage.JournalEntry) error {
	return s.appendUnique(ctx, `INSERT INTO journal (`+tables.JournalColumns+`) VALUES (?, ?, ?, ?)`, tables.JournalValues(e))
}

// JournalEntries implements storage.Journal.
func (s *Store) JournalEntries(ctx context.Context, q storage.JournalQuery) ([]storage.JournalEntry, error) {
	query, args := tables.JournalQuery(q)
	return tables.Read(ctx, s.reads, "journal", query+` ORDER BY at_ms, key`, args, tables.ScanJournalEntry)
}
