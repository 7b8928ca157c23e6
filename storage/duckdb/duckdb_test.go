package duckdb

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
	"github.com/meterd/meterd/storage/storetest"
)

// open opens a store at path ("" for in memory), closed when tb ends.
func open(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestSuiteInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store { return open(t, "") })
}

func TestSuiteFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store { return open(t, filepath.Join(t.TempDir(), "m.duckdb")) })
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.duckdb")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	evs := eventgen.Generate(1, 100, now.Add(-time.Hour), now)
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(ctx, storage.EventFilter{})
	if err != nil || st.Count != 100 {
		t.Fatalf("after reopen: %d events, %v", st.Count, err)
	}
	// A retry after the restart is still recognised (the store relearns
	// the newest stored time, which decides whether to look ids up).
	if r, err := s.Insert(ctx, evs[50:]); err != nil || r.Duplicates != 50 {
		t.Fatalf("retry after reopen: %+v, %v", r, err)
	}
	var applied int
	if err := s.DB().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil || applied != len(migrations) {
		t.Fatalf("migrations recorded %d times, want %d once each (%v)", applied, len(migrations), err)
	}
}

func BenchmarkInsert(b *testing.B) {
	ctx := context.Background()
	s := open(b, "")
	now := time.Now().UTC()
	evs := eventgen.Generate(1, b.N*1000, now.Add(-time.Hour), now)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Insert(ctx, evs[i*1000:(i+1)*1000]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
