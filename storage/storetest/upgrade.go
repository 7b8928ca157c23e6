package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// CheckBlockedByUpgrade checks schema 6 (the blocked_by column) on a store
// from before it: open returns the store (a new handle on the same data
// each call, applying pending migrations), toSchema5 takes its events
// table and migration record back to schema 5. The events stored before
// read as not blocked; blocked calls stored after round-trip.
func CheckBlockedByUpgrade(t *testing.T, open func() storage.Store, toSchema5 func(storage.Store)) {
	t.Helper()
	s := open()
	old := eventgen.Generate(11, 50, t0, t0.Add(time.Hour))
	for i := range old {
		old[i].BlockedBy = "" // schema 5 cannot hold it
	}
	insert(t, s, old...)
	toSchema5(s)
	s.Close()

	s = open()
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v < 6 {
		t.Fatalf("SchemaVersion after the upgrade = %d, %v; want 6 or more", v, err)
	}
	got := list(t, s, storage.EventFilter{})
	if len(got) != len(old) {
		t.Fatalf("%d events after the upgrade, want %d", len(got), len(old))
	}
	for i, e := range got {
		if want := normal(old[len(old)-1-i]); !reflect.DeepEqual(e, want) {
			t.Fatalf("event %s after the upgrade:\n got %+v\nwant %+v", want.ID, e, want)
		}
	}
	blocked := full("blocked-after", t0.Add(2*time.Hour))
	insert(t, s, blocked)
	got = list(t, s, storage.EventFilter{ByBlocked: true, Blocked: true})
	if len(got) != 1 || !reflect.DeepEqual(got[0], normal(blocked)) {
		t.Fatalf("blocked calls after the upgrade: %+v, want only %s", got, blocked.ID)
	}
}
