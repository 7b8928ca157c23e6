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
