package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// Deduplication on ClickHouse. Several meterd processes may write one
// database, and ClickHouse has no transaction to make "look up, then
// insert" atomic: two processes given the same batch at once can both
// find nothing and both insert. So:
//
//   - every stored row carries a copy tag, unique per row;
//   - after inserting, a writer looks its identities up again (settle): an
//     identity with two live copies raced, and all but its first copy (the
//     earliest to arrive, then the smallest tag: a rule every process
//     applies alike, whatever it saw) are listed in event_losers;
//   - every read keeps only live rows (Live): a raced identity counts once;
//   - a writer that died between insert and settle leaves two live copies:
//     the next lookup of that identity (a retry) settles them, and every
//     store settles what arrived lately once a minute (sweep).
//
// Reads in the short time between a racing insert and its settle can see
// both copies; the answers of two racing requests may both count the event
// as accepted. Once settled, every figure counts the identity once.

// LiveCondition implements storage.LiveRows: the rows that count are
// not a copy that lost a race. On a cluster, each shard reads its own
// event_losers_local, which holds the losers of the identities it holds;
// the database is named because a Distributed table's queries reach the
// shards in their default database.
func (s *Store) LiveCondition() string {
	return "copy NOT IN (SELECT copy FROM " + quote(s.database) + ".event_losers_local)"
}

// liveWhere adds LiveCondition to a WHERE clause (storage.EventFilter.Where's).
func (s *Store) liveWhere(w string) string {
	if w == "" {
		return " WHERE " + s.LiveCondition()
	}
	return w + " AND " + s.LiveCondition()
}

// storedCopy is a stored row of an identity.
type storedCopy struct {
	id                 string
	timeMs, receivedMs int64
	copy               uint64
	marked             bool // listed in event_losers already
}

// first orders copies of one identity: the first to arrive, then the
// smallest tag, is the one that counts.
func first(a, b storedCopy) int {
	return cmp.Or(cmp.Compare(a.receivedMs, b.receivedMs), cmp.Compare(a.copy, b.copy))
}

// losers returns the copies that are not the first of their identity.
func losers(copies []storedCopy) []storedCopy {
	byID := map[string][]storedCopy{}
	for _, c := range copies {
		byID[c.id] = append(byID[c.id], c)
	}
	var out []storedCopy
	for _, cs := range byID {
		if len(cs) > 1 {
			slices.SortFunc(cs, first)
			out = append(out, cs[1:]...)
		}
	}
	return out
}

// findStored returns the stored copies of the identities of ids, stored by
// events that arrived at or after horizon.
func (s *Store) findStored(ctx context.Context, ids []string, horizon int64) ([]storedCopy, error) {
	return storage.FindStored(ids,
		func(fps []uint64) ([]int64, error) { return s.fingerprintTimes(ctx, fps, horizon, false) },
		func(times []int64, _ []string, fps []uint64) ([]storedCopy, error) {
			return s.storedCopies(ctx, times, fps)
		})
}

// fingerprintTimes returns the times of the identities in event_ids with
// one of fps that arrived at or after horizon; repeated, only those of
// fingerprints indexed more than once (a race, or a fingerprint shared).
func (s *Store) fingerprintTimes(ctx context.Context, fps []uint64, horizon int64, repeated bool) ([]int64, error) {
	tbl, err := uint64Table("batch_fps", "fp", fps)
	if err != nil {
		return nil, err
	}
	// GLOBAL: on a cluster the set is built once, where the query starts,
	// and sent to the shards (event_ids is then a Distributed table).
	q := `SELECT DISTINCT time_ms FROM event_ids WHERE received_ms >= ? AND fp GLOBAL IN (SELECT fp FROM batch_fps)`
	if repeated {
		q = `SELECT DISTINCT time_ms FROM event_ids WHERE received_ms >= ? AND fp GLOBAL IN (
			SELECT fp FROM event_ids WHERE received_ms >= ? AND fp GLOBAL IN (SELECT fp FROM batch_fps)
			GROUP BY fp HAVING count() > 1)`
	}
	return tables.Read(ch.Context(ctx, ch.WithExternalTable(tbl)), s.reads, "identity lookup", q, []any{horizon, horizon},
		tables.ScanOne[int64])
}

// storedCopies returns the rows at the given times whose id has one of
// the fingerprints, those that lost a race marked. All of them, not only
// the live ones: a writer that settles after another marked its copy must
// still see that its copy lost.
func (s *Store) storedCopies(ctx context.Context, times []int64, fps []uint64) ([]storedCopy, error) {
	ts, err := int64Table("batch_times", "t", times)
	if err != nil {
		return nil, err
	}
	fs, err := uint64Table("batch_fps", "fp", fps)
	if err != nil {
		return nil, err
	}
	return tables.Read(ch.Context(ctx, ch.WithExternalTable(ts, fs)), s.reads, "identity lookup", `SELECT id, time_ms, received_ms, copy,
		toUInt8(NOT (`+s.LiveCondition()+`))
		FROM events WHERE time_ms GLOBAL IN (SELECT t FROM batch_times) AND cityHash64(id) GLOBAL IN (SELECT fp FROM batch_fps)`, nil,
		func(r tables.Row) (storedCopy, error) {
			var c storedCopy
			return c, r.Scan(&c.id, &c.timeMs, &c.receivedMs, &c.copy, &c.marked)
		})
}

// settle marks the losers among the identities with fingerprints fps that
// have more than one copy, and returns them (marked now or before).
func (s *Store) settle(ctx context.Context, fps []uint64, horizon int64) ([]storedCopy, error) {
	times, err := s.fingerprintTimes(ctx, fps, horizon, true)
	if err != nil || len(times) == 0 {
		return nil, err
	}
	copies, err := s.storedCopies(ctx, times, fps)
	if err != nil {
		return nil, err
	}
	return s.markLosers(ctx, losers(copies))
}

// losers is the table copies that lost are listed in: on a cluster, the
// Distributed table, which puts each on its identity's shard.
func (s *Store) losers() string {
	if s.cluster != "" {
		return "event_losers"
	}
	return "event_losers_local"
}

// markLosers lists in event_losers the copies of ls not listed yet, and
// returns ls. (Listing one twice would be harmless: reads test
// membership.)
func (s *Store) markLosers(ctx context.Context, ls []storedCopy) ([]storedCopy, error) {
	var fresh []storedCopy
	for _, l := range ls {
		if !l.marked {
			fresh = append(fresh, l)
		}
	}
	if len(fresh) == 0 {
		return ls, nil
	}
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.losers()+` (copy, id, time_ms, at_ms)`)
	if err != nil {
		return nil, fmt.Errorf("mark raced copies: %w", unavailable(err))
	}
	now := time.Now().UnixMilli()
	for _, l := range fresh {
		if err := batch.Append(l.copy, l.id, l.timeMs, now); err != nil {
			batch.Abort()
			return nil, err
		}
	}
	if err := batch.Send(); err != nil {
		return nil, fmt.Errorf("mark raced copies: %w", unavailable(err))
	}
	return ls, nil
}

// Sweep settles the identities of the events that arrived since since: a
// writer that died between its insert and its settle leaves two live
// copies, which no retry may ever look up again.
func (s *Store) Sweep(ctx context.Context, since time.Time) error {
	horizon := s.opts.Horizon([]storage.Event{{ReceivedAt: time.Now()}})
	fps, err := tables.Read(ctx, s.reads, "sweep", `SELECT fp FROM event_ids WHERE received_ms >= ? AND fp GLOBAL IN (
		SELECT fp FROM event_ids WHERE received_ms >= ?) GROUP BY fp HAVING count() > 1`, []any{horizon, since.UnixMilli()},
		tables.ScanOne[uint64])
	if err != nil || len(fps) == 0 {
		return err
	}
	_, err = s.settle(ctx, fps, horizon)
	return err
}

// sweepEvery sweeps every period what arrived since the sweep before (with
// a period's margin), in the background; the returned func stops it.
func (s *Store) sweepEvery(period time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		since := time.Now().Add(-10 * period) // what a process that died may have left
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			if err := s.Sweep(ctx, since); err == nil {
				since = start.Add(-period)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// migrateToCopies is migration 5's code: it rewrites a ReplacingMergeTree
// events table as schema 5's MergeTree (rows repeated in (time_ms, id)
// counted once, as FINAL reads them, each row given a copy tag), then
// indexes every identity and attaches the view that indexes new ones.
// Another process writing meanwhile could lose rows: upgrade with one
// process (docs/operations.md).
func migrateToCopies(ctx context.Context, s *Store) error {
	var engine string
	if err := s.conn.QueryRow(ctx, `SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'events'`).Scan(&engine); err != nil {
		return err
	}
	var steps []string
	if engine == "ReplacingMergeTree" {
		cols := strings.Join(columnsV1, ", ")
		steps = append(steps,
			fmt.Sprintf(eventsV5, "events_v5"),
			`TRUNCATE TABLE events_v5`,
			`INSERT INTO events_v5 (`+cols+`, copy) SELECT `+cols+`, rand64() FROM events FINAL`,
			`RENAME TABLE events TO events_replaced, events_v5 TO events`)
	}
	steps = append(steps,
		`DROP TABLE IF EXISTS events_replaced`,
		`DROP TABLE IF EXISTS event_ids_mv`,
		`TRUNCATE TABLE event_ids`,
		// The view first: a row inserted meanwhile is indexed by the view or
		// read by the backfill, maybe both (harmless: lookups confirm ids).
		`CREATE MATERIALIZED VIEW event_ids_mv TO event_ids
			AS SELECT cityHash64(id) AS fp, time_ms, received_ms FROM events`,
		`INSERT INTO event_ids (fp, time_ms, received_ms) SELECT cityHash64(id), time_ms, received_ms FROM events`)
	for _, q := range steps {
		if err := s.conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// uint64Table and int64Table are one-column external tables: bound data,
// never SQL text, so max_query_size never bites.
func uint64Table(name, col string, v []uint64) (*ext.Table, error) {
	return oneColumn(name, col, "UInt64", v)
}
func int64Table(name, col string, v []int64) (*ext.Table, error) {
	return oneColumn(name, col, "Int64", v)
}

func oneColumn(name, col, typ string, v any) (*ext.Table, error) {
	tbl, err := ext.NewTable(name, ext.Column(col, column.Type(typ)))
	if err != nil {
		return nil, err
	}
	if _, err := tbl.Block().Columns[0].Append(v); err != nil {
		return nil, err
	}
	return tbl, nil
}
