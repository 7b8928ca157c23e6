package storage

import (
	"context"
	"slices"
	"strings"
	"time"
)

// UsageCache keeps meters' usage per customer and closed hour, so that a
// billing cycle recomputes only what changed (engine/hours, which
// docs/architecture.md "Usage per closed hour" describes).
//
// Change marks order the store's changes: a change (an event stored, a
// copy that lost a race settled) stored after ChangeMark returned m has a
// mark of at least m, and every change with a smaller mark was visible when
// ChangeMark returned. A piece computed after reading m therefore reflects
// every change below m; ChangedHours finds the others.
type UsageCache interface {
	// ChangeMark is the store's change mark now.
	ChangeMark(ctx context.Context) (int64, error)
	// ChangeMargin is how long a change keeps its hour changed for the
	// computations made meanwhile: how far marks run behind the clock
	// (0 where marks are exact).
	ChangeMargin() time.Duration
	// ChangedHours returns the hours (unix ms of their start) of the events
	// changed with a mark at or after since, each with the largest mark of
	// its changes.
	ChangedHours(ctx context.Context, since int64) (map[int64]int64, error)
	// PutUsage stores computed pieces. Readers see a piece's latest
	// computation (the largest Mark) whole: never a mix of two.
	PutUsage(ctx context.Context, pieces []UsagePiece) error
	// Usage returns the latest computation of the pieces of a meter with
	// fromMs <= From and To <= toMs, in no particular order.
	Usage(ctx context.Context, meterID string, fromMs, toMs int64) ([]UsagePiece, error)
}

// UsagePiece is a meter's usage per customer over one piece of an hour:
// the whole hour, or the part of it a window covers.
type UsagePiece struct {
	MeterID      string
	FromMs, ToMs int64 // [from, to) inside one UTC hour
	// Mark is the change mark read before computing the piece: it
	// reflects every change below it.
	Mark int64
	// Version is the meter's newest version when it was computed: a later
	// version taking effect before ToMs makes the piece stale.
	Version int
	Values  []UsageValue // customers with matched events, by customer
}

// UsageValue is one customer's aggregate over a piece (engine.GroupBucket).
type UsageValue struct {
	Customer       string
	Value          float64
	HasValue       bool
	Events, Errors int64 // matched events, their value errors
}

// UsageRow is a row of the stores' usage_hours table: a piece's head row
// (Counted false, Customer "": the piece was computed, even with no
// customer) or one customer's value.
type UsageRow struct {
	MeterID      string
	FromMs, ToMs int64
	Mark         int64
	Version      int32
	Counted      bool
	UsageValue
}

// Rows are the table rows of a piece: its head row, then its values.
func (p UsagePiece) Rows() []UsageRow {
	head := UsageRow{MeterID: p.MeterID, FromMs: p.FromMs, ToMs: p.ToMs, Mark: p.Mark, Version: int32(p.Version)}
	out := make([]UsageRow, 0, len(p.Values)+1)
	out = append(out, head)
	for _, v := range p.Values {
		r := head
		r.Counted, r.UsageValue = true, v
		out = append(out, r)
	}
	return out
}

// FoldUsageRows gathers table rows into pieces, keeping each piece's
// latest computation (largest mark; rows of older ones are dropped, so
// are values without their head row).
func FoldUsageRows(rows []UsageRow) []UsagePiece {
	type key struct{ from, to int64 }
	latest := map[key]int64{}
	for _, r := range rows {
		k := key{r.FromMs, r.ToMs}
		if m, ok := latest[k]; !r.Counted && (!ok || r.Mark > m) {
			latest[k] = r.Mark
		}
	}
	pieces := map[key]*UsagePiece{}
	var out []*UsagePiece
	for _, r := range rows {
		k := key{r.FromMs, r.ToMs}
		if m, ok := latest[k]; !ok || r.Mark != m {
			continue
		}
		p := pieces[k]
		if p == nil {
			p = &UsagePiece{MeterID: r.MeterID, FromMs: r.FromMs, ToMs: r.ToMs, Mark: r.Mark}
			pieces[k] = p
			out = append(out, p)
		}
		if r.Counted {
			p.Values = append(p.Values, r.UsageValue)
		} else {
			p.Version = int(r.Version)
		}
	}
	res := make([]UsagePiece, len(out))
	for i, p := range out {
		// Two computations with one mark reflect the same changes: a
		// customer they both hold counts once.
		slices.SortStableFunc(p.Values, func(a, b UsageValue) int { return strings.Compare(a.Customer, b.Customer) })
		p.Values = slices.CompactFunc(p.Values, func(a, b UsageValue) bool { return a.Customer == b.Customer })
		res[i] = *p
	}
	return res
}
