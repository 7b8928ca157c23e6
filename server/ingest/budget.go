package ingest

import "sync/atomic"

// Budget bounds the memory ingestion holds: request bodies as their bytes
// arrive, then their decoded events until the group commit that stores
// them returns. Each request takes its share through a Hold and gives it
// back at the end, so the bytes held at once stay within the limit
// whatever the number or the speed of the clients (docs/operations.md,
// "Memory and overload"). It is lock-free: every body chunk and decoded
// event goes through it, and a refusal must not queue behind them.
type Budget struct {
	limit      int64
	used, peak atomic.Int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Hold is one request's share of a budget. One goroutine uses it at a
// time: the request's, then the writer's, which releases it.
type Hold struct {
	b    *Budget
	held atomic.Int64
}

// Hold opens a share of n bytes, or returns nil when they do not fit.
func (b *Budget) Hold(n int64) *Hold {
	h := &Hold{b: b}
	if !h.Grow(n) {
		return nil
	}
	return h
}

// Grow takes n more bytes if they fit in the budget.
func (h *Hold) Grow(n int64) bool {
	b := h.b
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			h.held.Add(n)
			b.notePeak(used + n)
			return true
		}
	}
}

// Force takes n more bytes even past the limit: for memory that is
// allocated already.
func (h *Hold) Force(n int64) {
	h.held.Add(n)
	h.b.notePeak(h.b.used.Add(n))
}

// Shrink gives back n of the held bytes.
func (h *Hold) Shrink(n int64) {
	n = min(n, h.held.Load())
	h.held.Add(-n)
	h.b.used.Add(-n)
}

// Held is the bytes the hold has.
func (h *Hold) Held() int64 { return h.held.Load() }

// Release gives back everything held; calling it again does nothing.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	h.b.used.Add(-h.held.Swap(0))
}

func (b *Budget) notePeak(used int64) {
	for {
		p := b.peak.Load()
		if used <= p || b.peak.CompareAndSwap(p, used) {
			return
		}
	}
}

// Used and Peak are the bytes held now and the most held at once; Limit
// is the budget.
func (b *Budget) Used() int64  { return b.used.Load() }
func (b *Budget) Peak() int64  { return b.peak.Load() }
func (b *Budget) Limit() int64 { return b.limit }

// Free is the bytes not held.
func (b *Budget) Free() int64 { return b.limit - b.used.Load() }
