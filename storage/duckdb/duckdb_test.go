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
func open(tb testing.TB, path string) *Store { return openWith(tb, path, storage.Options{}) }

func openWith(tb testing.TB, path string, o storage.Options) *Store {
	tb.Helper()
	s, err := OpenWith(context.Background(), path, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestSuiteInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storage.Options) storage.Store { return openWith(t, "", o) })
}

func TestSuiteFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storage.Options) storage.Store {
		return openWith(t, filepath.Join(t.TempDir(), "m.duckdb"), o)
	})
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.duckdb")
	s := storetest.CheckReopen(t, func() storage.Store { return open(t, path) }).(*Store)
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

// TestMigrationIndexesStoredIdentities: a store from before the identity
// index (schema 4) gets every stored event indexed when it opens, so that a
// repeat of an old event with another time is still a duplicate.
func TestMigrationIndexesStoredIdentities(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.duckdb")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	evs := eventgen.Generate(1, 250_000, now.Add(-time.Hour), now) // more than one backfill page
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE event_ids`, `ALTER TABLE events DROP COLUMN blocked_by`, `DELETE FROM schema_migrations WHERE version >= 5`} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path)
	var indexed int
	if err := s.DB().QueryRow(`SELECT count(*) FROM event_ids`).Scan(&indexed); err != nil || indexed != len(evs) {
		t.Fatalf("event_ids holds %d rows after the migration, want %d (%v)", indexed, len(evs), err)
	}
	retry := []storage.Event{evs[0], evs[len(evs)-1]}
	for i := range retry {
		retry[i].Time = now.Add(-10 * time.Minute * time.Duration(i+1))
	}
	if r, err := s.Insert(ctx, retry); err != nil || r.Duplicates != 2 {
		t.Fatalf("old events again with other times: %+v, %v; want 2 duplicates", r, err)
	}
}

// TestMigrationAddsBlockedBy: a store from schema 5 gets the blocked_by
// column; what it held reads as not blocked.
func TestMigrationAddsBlockedBy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.duckdb")
	storetest.CheckBlockedByUpgrade(t, func() storage.Store {
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(s storage.Store) {
		for _, q := range []string{`ALTER TABLE events DROP COLUMN blocked_by`, `DELETE FROM schema_migrations WHERE version >= 6`} {
			if _, err := s.(*Store).DB().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	})
}
