package ingest

import "sync"

// Budget bounds the memory ingestion holds: request bodies as their bytes
// arrive, then their decoded events until the group commit that stores
// them returns. Each request takes its share through a Hold and gives it
// back at the end, so the bytes held at once stay within the limit
// whatever the number or the speed of the clients (docs/operations.md,
// "Memory").
type Budget struct {
	mu          sync.Mutex
	limit, used int64
	peak        int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Hold is one request's share of a budget.
type Hold struct {
	b    *Budget
	held int64 // guarded by b.mu
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
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	h.add(n)
	return true
}

// Force takes n more bytes even past the limit: for memory that replaces
// held memory about to be released (the caller then calls Shrink).
func (h *Hold) Force(n int64) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.add(n)
}

// Shrink gives back n of the held bytes.
func (h *Hold) Shrink(n int64) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.add(-min(n, h.held))
}

// add changes the held bytes; b.mu is held.
func (h *Hold) add(n int64) {
	h.held += n
	h.b.used += n
	h.b.peak = max(h.b.peak, h.b.used)
}

// Held is the bytes the hold has.
func (h *Hold) Held() int64 {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	return h.held
}

// Release gives back everything held; calling it again does nothing.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.add(-h.held)
}

// Used and Peak are the bytes held now and the most held at once; Limit
// is the budget.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *Budget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

func (b *Budget) Limit() int64 { return b.limit }

// Free is the bytes not held.
func (b *Budget) Free() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit - b.used
}
