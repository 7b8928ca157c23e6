package ingest

import "testing"

func TestBudgetHolds(t *testing.T) {
	b := NewBudget(100)
	h := b.Hold(60)
	if h == nil || b.Hold(41) != nil {
		t.Fatal("holds past the limit")
	}
	if !h.Grow(40) || h.Grow(1) {
		t.Fatalf("grow: used %d of 100", b.Used())
	}
	h.Force(10) // replaces memory about to be released
	h.Shrink(30)
	if b.Used() != 80 || h.Held() != 80 || b.Peak() != 110 {
		t.Fatalf("used %d held %d peak %d", b.Used(), h.Held(), b.Peak())
	}
	h.Release()
	h.Release()
	var none *Hold
	none.Release()
	if b.Used() != 0 {
		t.Fatalf("used %d after release", b.Used())
	}
}
