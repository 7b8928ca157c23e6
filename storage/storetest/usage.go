package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
)

// testChangedHours: the hours of events stored after a mark are changed
// at or after it, late events included; a duplicate retried marks nothing.
func testChangedHours(t *testing.T, s storage.Store) {
	hour := func(at time.Time) int64 { return at.Truncate(time.Hour).UnixMilli() }
	early, late := t0.Add(-48*time.Hour+5*time.Minute), t0.Add(-30*24*time.Hour+17*time.Minute)
	first := full("a", t0)
	insert(t, s, first)
	m1, err := s.ChangeMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dup := first
	dup.Time = t0.Add(-9 * 24 * time.Hour) // a retry of a with another time: a duplicate
	insert(t, s, full("b", early), full("c", late), dup)
	changed, err := s.ChangedHours(ctx, m1)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{early, late} {
		if m, ok := changed[hour(at)]; !ok || m < m1 {
			t.Errorf("hour %s: changed at %d (reported %v), want at or after the mark %d", at.Truncate(time.Hour), m, ok, m1)
		}
	}
	if _, ok := changed[hour(dup.Time)]; ok {
		t.Errorf("the duplicate's hour %s is reported changed: %v", dup.Time.Truncate(time.Hour), changed)
	}
	m2, err := s.ChangeMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m2 < m1 {
		t.Errorf("marks go back: %d, then %d", m1, m2)
	}
}

// testUsageCache: each piece reads back as its latest computation, whole.
func testUsageCache(t *testing.T, s storage.Store) {
	h := t0.UnixMilli()
	piece := func(meter string, from, to, mark int64, vs ...storage.UsageValue) storage.UsagePiece {
		return storage.UsagePiece{MeterID: meter, FromMs: from, ToMs: to, Mark: mark, Version: 2, Values: vs}
	}
	a := storage.UsageValue{Customer: "acme", Value: 1.5, HasValue: true, Events: 3, Errors: 1}
	b := storage.UsageValue{Customer: "o'brien ü", Value: 0, HasValue: false, Events: 2, Errors: 2}
	c := storage.UsageValue{Customer: "", Value: -7, HasValue: true, Events: 1}
	put := func(ps ...storage.UsagePiece) {
		t.Helper()
		if err := s.PutUsage(ctx, ps); err != nil {
			t.Fatal(err)
		}
	}
	put(piece("m1", h, h+3600_000, 10, a, b), piece("m1", h+1800_000, h+3600_000, 10, c), piece("m2", h, h+3600_000, 10, c),
		piece("m1", h+3600_000, h+7200_000, 10))
	put(piece("m1", h, h+3600_000, 5, c))        // older: ignored
	put(piece("m1", h+1800_000, h+3600_000, 20)) // newer, no customer left
	got, err := s.Usage(ctx, "m1", h, h+7200_000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]int64]storage.UsagePiece{
		{h, h + 3600_000}:            piece("m1", h, h+3600_000, 10, a, b),
		{h + 1800_000, h + 3600_000}: piece("m1", h+1800_000, h+3600_000, 20),
		{h + 3600_000, h + 7200_000}: piece("m1", h+3600_000, h+7200_000, 10),
	}
	if len(got) != len(want) {
		t.Fatalf("got %d pieces, want %d: %+v", len(got), len(want), got)
	}
	for _, p := range got {
		w := want[[2]int64{p.FromMs, p.ToMs}]
		if len(p.Values) == 0 {
			p.Values = nil
		}
		if !reflect.DeepEqual(p, w) {
			t.Errorf("piece [%d, %d):\n got %+v\nwant %+v", p.FromMs, p.ToMs, p, w)
		}
	}
	if got, err := s.Usage(ctx, "m1", h+3600_000, h+7200_000); err != nil || len(got) != 1 {
		t.Errorf("pieces inside [h+1, h+2): %+v, %v; want the one", got, err)
	}
}
