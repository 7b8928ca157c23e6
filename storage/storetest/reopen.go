package storetest

import (
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// CheckReopen checks that a store closed and opened again keeps its events
// and still recognises a retry of them: open returns a new handle on the
// same data each call. It returns the reopened store (the caller closes
// it) for the backend's own checks, such as its migrations applied once.
func CheckReopen(t *testing.T, open func() storage.Store) storage.Store {
	t.Helper()
	s := open()
	now := time.Now().UTC()
	evs := eventgen.Generate(1, 100, now.Add(-time.Hour), now)
	insert(t, s, evs...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	if n := count(t, s); n != 100 {
		t.Fatalf("after reopen: %d events, want 100", n)
	}
	if r := insert(t, s, evs[50:]...); r.Duplicates != 50 {
		t.Fatalf("retry after reopen: %+v, want 50 duplicates", r)
	}
	return s
}
