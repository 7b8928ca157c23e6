package clickhouse

import (
	"context"
	"fmt"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// AppendJournal implements storage.Journal (appendUnique): under appendMu,
// two deliveries of one Stripe event to this process cannot both pass the
// check. Reads drop a repeat written by a second process (LIMIT 1 BY).
func (s *Store) AppendJournal(ctx context.Context, e storage.JournalEntry) error {
	return s.appendUnique(ctx, "journal", `SELECT count() FROM journal WHERE stream = ? AND key = ?`,
		[]any{e.Stream, e.Key}, `INSERT INTO journal (`+tables.JournalColumns+`)`, tables.JournalValues(e))
}

// JournalEntries implements storage.Journal.
func (s *Store) JournalEntries(ctx context.Context, q storage.JournalQuery) ([]storage.JournalEntry, error) {
	query, args := tables.JournalQuery(q)
	// The first row written wins should a second process repeat a key.
	return tables.Read(ctx, s.reads, "journal", `SELECT `+tables.JournalColumns+` FROM (`+query+
		` ORDER BY at_ms, key LIMIT 1 BY stream, key) ORDER BY at_ms, key`, args, tables.ScanJournalEntry)
}

// appendUnique inserts a row whose key must be new. ClickHouse has no
// unique keys: count, run with keyArgs, counts the stored rows with the
// key first, and a stored one refuses the row with storage.ErrConflict.
// appendMu serialises the check and the insert within this process.
func (s *Store) appendUnique(ctx context.Context, what, count string, keyArgs []any, insert string, values []any) error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	var n uint64
	if err := s.conn.QueryRow(ctx, count, keyArgs...).Scan(&n); err != nil {
		return fmt.Errorf("%s: %w", what, unavailable(err))
	}
	if n > 0 {
		return storage.ErrConflict
	}
	if err := s.insertRow(ctx, insert, values...); err != nil {
		return fmt.Errorf("%s: %w", what, unavailable(err))
	}
	return nil
}
