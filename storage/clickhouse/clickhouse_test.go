package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
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

func openFresh(tb testing.TB) *Store { return openWith(tb, freshDSN(tb), storage.Options{}) }

// openWith opens the store at dsn, closed when tb ends.
func openWith(tb testing.TB, dsn string, o storage.Options) *Store {
	tb.Helper()
	s, err := OpenWith(context.Background(), dsn, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() }) // registered after the drop, so it runs first
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storage.Options) storage.Store { return openWith(t, freshDSN(t), o) })
}

// Reopening applies no migration twice and keeps the data.
func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	dsn := freshDSN(t)
	s := storetest.CheckReopen(t, func() storage.Store { return openWith(t, dsn, storage.Options{}) }).(*Store)
	var applied, distinct uint64
	if err := s.conn.QueryRow(ctx, `SELECT count(), uniqExact(version) FROM schema_migrations`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != uint64(len(migrations)) || distinct != applied {
		t.Fatalf("schema_migrations holds %d rows (%d versions), want %d once each", applied, distinct, len(migrations))
	}
}

// A writer that died between its insert and its settle (identity.go)
// leaves two live copies of an identity: reads count both until the sweep
// (or a retry's lookup) settles them, and then every read counts it once.
func TestSweepSettlesCopiesADeadWriterLeft(t *testing.T) {
	ctx := context.Background()
	s := openFresh(t)
	t0 := time.Date(2026, 3, 31, 23, 59, 0, 0, time.UTC) // the batch spans two partitions
	evs := eventgen.Generate(7, 50, t0, t0.Add(2*time.Minute))
	for i := range evs {
		evs[i].ReceivedAt = time.Now()
	}
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// What the dead writer left: evs[10] again at its time, and evs[40] at
	// another time (a CloudEvent without time gets its arrival), never
	// settled.
	again := []*storage.Event{&evs[10], &evs[40]}
	other := *again[1]
	other.Time = t0.Add(5 * time.Minute)
	other.ReceivedAt = other.ReceivedAt.Add(time.Second) // it came later (the same arrival would leave the winner to the random tags)
	again[1] = &other
	if err := s.insertEvents(ctx, again, newCopyTags(2)); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stats(ctx, storage.EventFilter{}); err != nil || st.Count != 52 {
		t.Fatalf("precondition: Stats counts %d (%v), want 52 before the sweep", st.Count, err)
	}
	if err := s.Sweep(ctx, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkCountsOnce(t, s, evs)
	// The first copies won: evs[40] is still at its first time.
	got, err := s.ListEvents(ctx, storage.EventFilter{From: t0.Add(4 * time.Minute)})
	if err != nil || len(got) != 0 {
		t.Fatalf("the later copy of evs[40] is still listed: %d events, %v", len(got), err)
	}
	// And the next insert still sees them all as stored.
	if r, err := s.Insert(ctx, evs); err != nil || r.Inserted != 0 || r.Duplicates != 50 {
		t.Fatalf("re-insert: %+v, %v", r, err)
	}
}

// A retry settles what a dead writer left too, without waiting for a sweep.
func TestRetrySettlesCopiesADeadWriterLeft(t *testing.T) {
	ctx := context.Background()
	s := openFresh(t)
	now := time.Now().UTC()
	evs := eventgen.Generate(3, 20, now.Add(-time.Hour), now)
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := s.insertEvents(ctx, []*storage.Event{&evs[3]}, newCopyTags(1)); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Insert(ctx, evs[3:4]); err != nil || r.Duplicates != 1 {
		t.Fatalf("retry: %+v, %v", r, err)
	}
	checkCountsOnce(t, s, evs)
}

// Two processes given the same batch at once both find nothing stored and
// both insert (the race is forced here: each waits for the other's lookup,
// then for the other's write); their settles agree on one copy, the second
// answer counts the batch as duplicates, and every read counts each event
// once. (Had the first settled before the second wrote, both answers would
// count it accepted; the figures would still count it once.)
func TestTwoWritersRacingCountOnce(t *testing.T) { twoWritersRacing(t, freshDSN(t)) }

func twoWritersRacing(t *testing.T, dsn string) {
	ctx := context.Background()
	a, b := openWith(t, dsn, storage.Options{}), openWith(t, dsn, storage.Options{})
	now := time.Now().UTC()
	evs := eventgen.Generate(5, 300, now.Add(-time.Hour), now)
	var looked, wrote sync.WaitGroup
	looked.Add(2)
	wrote.Add(2)
	for _, s := range []*Store{a, b} {
		s.afterLookup = func() { looked.Done(); looked.Wait() }
		s.afterWrite = func() { wrote.Done(); wrote.Wait() }
	}
	results := make([]storage.InsertResult, 2)
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := slices.Clone(evs)
			for j := range batch { // each process stamps its own arrival
				batch[j].ReceivedAt = now.Add(time.Duration(i) * time.Millisecond)
			}
			r, err := s.Insert(ctx, batch)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	var raw uint64
	if err := a.conn.QueryRow(ctx, `SELECT count() FROM events`).Scan(&raw); err != nil || raw != 600 {
		t.Fatalf("precondition: %d rows stored (%v), want 600: both processes inserted", raw, err)
	}
	// a stamped the earlier arrival: its copies are the first ones.
	if results[0].Inserted != 300 || results[1].Inserted != 0 || results[1].Duplicates != 300 {
		t.Errorf("answers: first %d accepted %d duplicates, second %d/%d; want 300/0, then 0/300",
			results[0].Inserted, results[0].Duplicates, results[1].Inserted, results[1].Duplicates)
	}
	checkCountsOnce(t, a, evs)
	checkCountsOnce(t, b, evs)
}

// checkCountsOnce checks that every read of s counts each of evs once.
func checkCountsOnce(t *testing.T, s *Store, evs []storage.Event) {
	t.Helper()
	ctx := context.Background()
	n := int64(len(evs))
	st, err := s.Stats(ctx, storage.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != n {
		t.Errorf("Stats.Count = %d, want %d", st.Count, n)
	}
	var keyTotal, want int64
	for _, k := range st.MetadataKeys {
		keyTotal += k.Count
	}
	for i := range evs {
		f, _ := evs[i].Flatten()
		want += int64(len(f.Meta.Keys))
	}
	if keyTotal != want {
		t.Errorf("metadata key counts add up to %d, want %d", keyTotal, want)
	}
	all, err := s.ListEvents(ctx, storage.EventFilter{})
	if err != nil || int64(len(all)) != n {
		t.Fatalf("ListEvents without limit: %d events, %v; want %d", len(all), err, n)
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
	if int64(len(paged)) != n {
		t.Fatalf("pages of 7 returned %d events, want %d", len(paged), n)
	}
	for i, e := range all {
		if paged[i] != e.ID {
			t.Fatalf("page order differs from the full listing at %d", i)
		}
	}
	scanned := int64(0)
	if err := s.ScanEvents(ctx, storage.EventFilter{}, func(*storage.Event) error { scanned++; return nil }); err != nil || scanned != n {
		t.Fatalf("ScanEvents saw %d events (%v), want %d", scanned, err, n)
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

// TestMigrationToCopies: a store from before schema 5 (a ReplacingMergeTree
// of events, no identity index) is rewritten at start: every event once
// (rows repeated in (time_ms, id) that no merge had dropped yet too), each
// identity indexed, so that an old event sent again with another time is a
// duplicate.
func TestMigrationToCopies(t *testing.T) {
	ctx := context.Background()
	dsn := freshDSN(t)
	s := openWith(t, dsn, storage.Options{})
	// Back to schema 4: migration 1's events table, no index.
	for _, q := range []string{`DROP TABLE event_ids_mv`, `DROP TABLE event_ids`, `DROP TABLE event_losers_local`,
		`DROP TABLE events`, migrations[0].stmts[0], `TRUNCATE TABLE schema_migrations`} {
		if err := s.conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for v := 1; v <= 4; v++ {
		if err := s.insertRow(ctx, `INSERT INTO schema_migrations (version, applied_ms)`, uint32(v), int64(0)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	evs := eventgen.Generate(9, 40, now.Add(-time.Hour), now)
	old := append(slices.Clone(evs), evs[5], evs[6]) // two repeats, as two racing writers left them
	cols, err := eventColumns(ptrs(old))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range [][2]int{{0, 40}, {40, 42}} { // two inserts: two parts, not merged
		batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO events (`+strings.Join(columnsV1, ", ")+`)`)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cols[:len(columnsV1)] {
			if err := batch.Column(i).Append(sliceOf(c, part[0], part[1])); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = openWith(t, dsn, storage.Options{})
	var engine string
	if err := s.conn.QueryRow(ctx, `SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'events'`).Scan(&engine); err != nil || engine != "MergeTree" {
		t.Fatalf("events engine %q (%v), want MergeTree", engine, err)
	}
	checkCountsOnce(t, s, evs)
	again := []storage.Event{evs[0], evs[39]}
	again[0].Time, again[1].Time = now.Add(-3*time.Hour), now.Add(-2*time.Hour)
	if r, err := s.Insert(ctx, again); err != nil || r.Duplicates != 2 {
		t.Fatalf("old events again at other times: %+v, %v; want 2 duplicates", r, err)
	}
}

// TestMigrationAddsBlockedBy: a store from schema 5 gets the blocked_by
// column; what it held reads as not blocked. Run again (as after a cut
// short), the migration finds the column there and succeeds.
func TestMigrationAddsBlockedBy(t *testing.T) {
	ctx := context.Background()
	dsn := freshDSN(t)
	open := func() storage.Store {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	backTo5 := func(s *Store, stmts ...string) {
		t.Helper()
		for _, q := range append(stmts, `TRUNCATE TABLE schema_migrations`) {
			if err := s.conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for v := 1; v <= 5; v++ {
			if err := s.insertRow(ctx, `INSERT INTO schema_migrations (version, applied_ms)`, uint32(v), int64(0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	storetest.CheckBlockedByUpgrade(t, open, func(s storage.Store) {
		backTo5(s.(*Store), `ALTER TABLE events DROP COLUMN blocked_by`)
	})
	s := open()
	backTo5(s.(*Store))
	s.Close()
	s = open()
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("SchemaVersion after migration 6 ran again = %d, %v; want %d", v, err, len(migrations))
	}
}

func ptrs(evs []storage.Event) []*storage.Event {
	out := make([]*storage.Event, len(evs))
	for i := range evs {
		out[i] = &evs[i]
	}
	return out
}

// sliceOf is v[from:to] for a column slice of any element type.
func sliceOf(v any, from, to int) any {
	return reflect.ValueOf(v).Slice(from, to).Interface()
}

// A copy settled as the loser of a race changes what its hour counts: the
// hour is reported changed from the settle on, even when its events were
// stamped long before (a writer that died before settling, swept later).
func TestSettledLoserChangesItsHour(t *testing.T) {
	ctx := context.Background()
	s := openFresh(t)
	s.margin = 0 // no insert is under way: marks are the server's clock
	t0 := time.Date(2026, 3, 3, 7, 10, 0, 0, time.UTC)
	evs := eventgen.Generate(8, 20, t0, t0.Add(time.Minute))
	for i := range evs {
		evs[i].ReceivedAt = time.Now()
	}
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := s.insertEvents(ctx, []*storage.Event{&evs[3]}, newCopyTags(1)); err != nil { // never settled
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // stamps have a second's resolution
	mark, err := s.ChangeMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hour := t0.Truncate(time.Hour).UnixMilli()
	if changed, err := s.ChangedHours(ctx, mark); err != nil || changed[hour] != 0 {
		t.Fatalf("precondition: changed hours since the mark %v (%v), want none", changed, err)
	}
	if err := s.Sweep(ctx, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	changed, err := s.ChangedHours(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := changed[hour]; !ok || at < mark {
		t.Fatalf("after the settle, hour %s changed at %d (%v), want at or after %d: %v", t0.Truncate(time.Hour), at, ok, mark, changed)
	}
}
