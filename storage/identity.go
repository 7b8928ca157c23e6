package storage

import (
	"time"

	"github.com/go-faster/city"
)

// An event's identity is its ID (the Moesif transaction_id, a hash of the
// CloudEvents source and id, or a hash of the content when neither is
// given): never its time. A repeat of a stored identity is a duplicate
// whatever time it carries; the first stored copy wins. Both stores keep an
// index of identities by Fingerprint (the event_ids table) so that the
// lookup does not depend on the time either. docs/architecture.md
// ("Deduplication") tells the whole story.

// Fingerprint is the 64-bit hash the stores index identities by:
// ClickHouse's cityHash64 of the id, so that its server computes the same
// value in the materialised view that fills its index. Two ids may share a
// fingerprint: a match is always confirmed on the id itself.
func Fingerprint(id string) uint64 { return city.CH64([]byte(id)) }

// Options configure a store when it opens.
type Options struct {
	// DedupWindow is how long an identity is remembered after its first
	// copy arrived: a repeat received within it is a duplicate. The server
	// sets it to max-event-age plus max-clock-skew (the acceptance
	// window); zero remembers identities for ever.
	DedupWindow time.Duration
}

// Horizon is the earliest arrival (unix ms) whose identities a lookup for
// events must consider: DedupWindow before the earliest of them arrived,
// or the minimum int64 when identities are kept for ever.
func (o Options) Horizon(events []Event) int64 {
	if o.DedupWindow <= 0 || len(events) == 0 {
		return minInt64
	}
	first := events[0].ReceivedAt
	for i := range events {
		if events[i].ReceivedAt.Before(first) {
			first = events[i].ReceivedAt
		}
	}
	return first.Add(-o.DedupWindow).UnixMilli()
}

const minInt64 = -1 << 63

// LiveRows is implemented by a store some of whose event rows do not count
// (on ClickHouse, a copy that lost a race between two writers): every read
// of events, the engine's SQL included, adds LiveCondition.
type LiveRows interface {
	LiveCondition() string
}

// LiveCondition is st's condition for the event rows that count, "" when
// every row does.
func LiveCondition(st Store) string {
	if l, ok := st.(LiveRows); ok {
		return l.LiveCondition()
	}
	return ""
}

// FindStored looks up which identities of a batch are stored. It is the
// stores' two-step lookup: fingerprints finds the stored times of the
// fingerprints (the event_ids index, pruned by the horizon); confirm then
// reads the events at those times and returns the stored copies (of type
// T, the store's) whose id is one of ids (fps are their fingerprints).
// Most batches stop after the first step: no fingerprint is known.
func FindStored[T any](ids []string, fingerprints func(fps []uint64) ([]int64, error),
	confirm func(times []int64, ids []string, fps []uint64) ([]T, error)) ([]T, error) {
	fps := make([]uint64, len(ids))
	for i, id := range ids {
		fps[i] = Fingerprint(id)
	}
	times, err := fingerprints(fps)
	if err != nil || len(times) == 0 {
		return nil, err
	}
	return confirm(times, ids, fps)
}

// BatchIDs returns the distinct ids of a batch, in order.
func BatchIDs(events []Event) []string {
	seen := make(map[string]struct{}, len(events))
	ids := make([]string, 0, len(events))
	for i := range events {
		if _, dup := seen[events[i].ID]; !dup {
			seen[events[i].ID] = struct{}{}
			ids = append(ids, events[i].ID)
		}
	}
	return ids
}

// NewEvents picks the events of a batch to store: those whose identity is
// not among the stored ids, keeping the first of repeats within the batch.
// isNew[i] tells whether events[i] is one of them.
func NewEvents(events []Event, stored []string) (fresh []*Event, isNew []bool) {
	known := make(map[string]struct{}, len(stored)+len(events))
	for _, id := range stored {
		known[id] = struct{}{}
	}
	fresh = make([]*Event, 0, len(events))
	isNew = make([]bool, len(events))
	for i := range events {
		id := events[i].ID
		if _, old := known[id]; old {
			continue
		}
		known[id] = struct{}{} // later repeats in the batch are duplicates
		fresh = append(fresh, &events[i])
		isNew[i] = true
	}
	return fresh, isNew
}
