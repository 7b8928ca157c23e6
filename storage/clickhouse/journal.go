package clickhouse

import (
	"context"
	"fmt"

	"github.com/meterd/meterd/storage"
)

// AppendJournal implements storage.Journal. ClickHouse has no unique keys:
// the store looks the (stream, key) up first, under journalMu so that two
// deliveries of one Stripe event to this process cannot both pass the
// check. Reads drop a repeat written by a second process (LIMIT 1 BY).
func (s *Store) AppendJournal(ctx context.Context, e storage.JournalEntry) error {
	s.journalMu.Lock()
	defer s.journalMu.Unlock()
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM journal WHERE stream = ? AND key = ?`,
		e.Stream, e.Key).Scan(&n); err != nil {
		return fmt.Errorf("journal: %w", unavailable(err))
	}
	if n > 0 {
		return storage.ErrConflict
	}
	if err := s.insertRow(ctx, `INSERT INTO journal (stream, key, at_ms, body)`,
		e.Stream, e.Key, e.At.UnixMilli(), e.Body); err != nil {
		return fmt.Errorf("journal: %w", unavailable(err))
	}
	return nil
}

// JournalEntries implements storage.Journal.
func (s *Store) JournalEntries(ctx context.Context, q storage.JournalQuery) ([]storage.JournalEntry, error) {
	query, args := q.SQL()
	// The first row written wins should a second process repeat a key.
	rows, err := s.conn.Query(ctx, `SELECT stream, key, at_ms, body FROM (`+query+
		` ORDER BY at_ms, key LIMIT 1 BY stream, key) ORDER BY at_ms, key`, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", unavailable(err))
	}
	defer rows.Close()
	out, err := storage.ScanJournal(rows)
	return out, unavailable(err)
}
