package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
	"github.com/meterd/meterd/storage/storetest"
)

// serverDSN is the test server; the tests skip without one (but fail in
// CI, see storetest.ClickHouseDSN).
func serverDSN(tb testing.TB) string {
	tb.Helper()
	dsn := storetest.ClickHouseDSN(tb)
	if dsn == "" {
		tb.Skip("METERD_TEST_CLICKHOUSE not set (e.g. clickhouse://127.0.0.1:9000; start one with .ci/clickhouse.sh)")
	}
	return dsn
}

// freshDSN is serverDSN with a new database, dropped at cleanup.
func freshDSN(tb testing.TB) string {
	tb.Helper()
	serverDSN(tb)
	return storetest.FreshClickHouseDSN(tb, "meterd_test")
}

func openFresh(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(context.Background(), freshDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() }) // registered after the drop, so it runs first
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store { return openFresh(t) })
}

// Reopening applies no migration twice and keeps the data.
func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	dsn := freshDSN(t)
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := s.Insert(ctx, eventgen.Generate(1, 100, now.Add(-time.Hour), now)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(ctx, storage.EventFilter{})
	if err != nil || st.Count != 100 {
		t.Fatalf("after reopen: %d events, %v", st.Count, err)
	}
	var applied, distinct uint64
	if err := s.conn.QueryRow(ctx, `SELECT count(), uniqExact(version) FROM schema_migrations`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != uint64(len(migrations)) || distinct != applied {
		t.Fatalf("schema_migrations holds %d rows (%d versions), want %d once each", applied, distinct, len(migrations))
	}
}

// A second writer (another meterd process) can leave a duplicate row until
// ClickHouse merges parts; no read may count or list it twice.
func TestDuplicateRowsFromTwoWriters(t *testing.T) {
	ctx := context.Background()
	s := openFresh(t)
	t0 := time.Date(2026, 3, 31, 23, 59, 0, 0, time.UTC) // the batch spans two partitions
	evs := eventgen.Generate(7, 50, t0, t0.Add(2*time.Minute))
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// What a racing process would write: the same rows again, bypassing the
	// dedup lookup.
	cols, err := eventColumns([]*storage.Event{&evs[10], &evs[40]})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := s.conn.PrepareBatch(ctx, insertQuery)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		if err := batch.Column(i).Append(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	var rows uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM events`).Scan(&rows); err != nil || rows != 52 {
		t.Fatalf("precondition: table holds %d rows (%v), want 52 (50 + 2 unmerged duplicates)", rows, err)
	}

	st, err := s.Stats(ctx, storage.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 50 {
		t.Errorf("Stats.Count = %d, want 50", st.Count)
	}
	var keyTotal, traitTotal int64
	for _, k := range st.MetadataKeys {
		keyTotal += k.Count
	}
	for _, k := range st.TraitKeys {
		traitTotal += k.Count
	}
	var want, wantTraits int64
	for i := range evs {
		f, _ := evs[i].Flatten()
		want += int64(len(f.Meta.Keys))
		wantTraits += int64(len(f.Traits.Keys))
	}
	if keyTotal != want {
		t.Errorf("metadata key counts add up to %d, want %d", keyTotal, want)
	}
	if wantTraits == 0 || traitTotal != wantTraits {
		t.Errorf("trait key counts add up to %d, want %d (and more than 0)", traitTotal, wantTraits)
	}

	all, err := s.ListEvents(ctx, storage.EventFilter{})
	if err != nil || len(all) != 50 {
		t.Fatalf("ListEvents without limit: %d events, %v; want 50", len(all), err)
	}
	var paged []string
	f := storage.EventFilter{Limit: 7}
	for {
		page, err := s.ListEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			paged = append(paged, e.ID)
		}
		if len(page) < f.Limit {
			break
		}
		f.BeforeTime, f.BeforeID = page[len(page)-1].Time, page[len(page)-1].ID
	}
	if len(paged) != 50 {
		t.Fatalf("pages of 7 returned %d events, want 50", len(paged))
	}
	for i, e := range all {
		if paged[i] != e.ID {
			t.Fatalf("page order differs from the full listing at %d", i)
		}
	}
	n := 0
	if err := s.ScanEvents(ctx, storage.EventFilter{}, func(*storage.Event) error { n++; return nil }); err != nil || n != 50 {
		t.Fatalf("ScanEvents saw %d events (%v), want 50", n, err)
	}
	// And the next insert still sees them all as stored.
	if r, err := s.Insert(ctx, evs); err != nil || r.Inserted != 0 || r.Duplicates != 50 {
		t.Fatalf("re-insert: %+v, %v", r, err)
	}
}

func TestOpenCreatesDatabaseAndRejectsBadNames(t *testing.T) {
	ctx := context.Background()
	s := openFresh(t)
	if s.Database() == "" || s.Backend() != "clickhouse" {
		t.Fatalf("database %q backend %q", s.Database(), s.Backend())
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM system.tables WHERE database = ? AND name IN ('events', 'profiles', 'meter_log', 'schema_migrations')`,
		s.Database()).Scan(&n); err != nil || n != 4 {
		t.Fatalf("tables in %s: %d (%v), want 4", s.Database(), n, err)
	}
	u, _ := url.Parse(serverDSN(t))
	u.Path = "/bad-name; DROP TABLE x"
	if _, err := Open(ctx, u.String()); err == nil {
		t.Fatal("a database name with SQL in it was accepted")
	}
	// Credentials in the URL are used (the test server's default user has
	// no password, so this one is refused) and never echoed.
	u.Path, u.User = "/default", url.UserPassword("default", "s3cret-pw")
	_, err := Open(ctx, u.String())
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("wrong password: %v; want a refusal that is not ErrUnavailable and hides the password", err)
	}
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	serverDSN(t) // only where a server is configured: the test needs a closed port
	_, err := Open(context.Background(), "clickhouse://127.0.0.1:1/meterd?dial_timeout=2s")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}
}

// BenchmarkInsert inserts batches of fresh events (the dedup lookup
// included), as the group-commit writer does. Each batch is one new part:
// on small batches ClickHouse's per-part file creation dominates.
func BenchmarkInsert(b *testing.B) {
	for _, size := range []int{1000, 10_000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx := context.Background()
			s := openFresh(b)
			now := time.Now().UTC()
			evs := eventgen.Generate(1, b.N*size, now.Add(-time.Hour), now)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Insert(ctx, evs[i*size:(i+1)*size]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
