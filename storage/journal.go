package storage

import (
	"context"
	"time"
)

// Journal streams. Each is append-only; Key is unique within a stream.
const (
	StreamBillingSettings = "billing_settings" // Key: version number, zero-padded
	StreamStripeEvents    = "stripe_events"    // Key: Stripe event id (or a resync id)
	StreamBillingLedger   = "billing_ledger"   // Key: one per report attempt or outcome
	StreamGovernanceRules = "governance_rules" // Key: rule id "/" sequence number, zero-padded
)

// JournalEntry is one record of an append-only journal stream: billing
// settings versions, Stripe webhook events and the billing report ledger
// share this shape, so both stores need one table and two queries.
type JournalEntry struct {
	Stream string
	Key    string
	At     time.Time // stored in milliseconds
	Body   string    // JSON
}

// JournalQuery selects entries of one stream.
type JournalQuery struct {
	Stream string
	Key    string    // only this key ("" for any)
	From   time.Time // only entries with At >= From (zero for all)
}

// SQL is the query both stores run for q: its entries' stream, key, at_ms
// and body, with ? placeholders for args (unordered; each store orders).
func (q JournalQuery) SQL() (query string, args []any) {
	query = `SELECT stream, key, at_ms, body FROM journal WHERE stream = ?`
	args = []any{q.Stream}
	if q.Key != "" {
		query += ` AND key = ?`
		args = append(args, q.Key)
	}
	if !q.From.IsZero() {
		query += ` AND at_ms >= ?`
		args = append(args, q.From.UnixMilli())
	}
	return query, args
}

// ScanJournal reads the rows of a JournalQuery.SQL query.
func ScanJournal(rows Rows) ([]JournalEntry, error) {
	var out []JournalEntry
	for rows.Next() {
		var e JournalEntry
		var at int64
		if err := rows.Scan(&e.Stream, &e.Key, &at, &e.Body); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Journal is implemented by both stores. Nothing in it is ever updated or
// deleted: state is folded from the entries.
type Journal interface {
	// AppendJournal appends one entry. An entry whose (Stream, Key) is
	// already stored is refused with ErrConflict and changes nothing (this
	// is how Stripe's repeated webhook deliveries are dropped).
	AppendJournal(ctx context.Context, e JournalEntry) error
	// JournalEntries returns the matching entries ordered by At, then Key.
	JournalEntries(ctx context.Context, q JournalQuery) ([]JournalEntry, error)
}
