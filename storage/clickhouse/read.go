package clickhouse

import (
	"context"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// Every read keeps live rows only (liveWhere, see identity.go). A copy that
// raced in and is not settled yet may still show; a read sorted by
// (time_ms, id) also skips a row equal in (time_ms, id) to the one before
// it, which costs nothing.

// key identifies an event row.
type key struct {
	ms int64
	id string
}

// ListEvents implements storage.Store. With a limit it first finds the
// page's keys reading only (time_ms, id), then fetches those rows: 18.16
// cannot read in key order, so a top-N over every column would read the
// whole filtered range's bodies and headers.
func (s *Store) ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error) {
	if f.Limit <= 0 {
		w, args := f.Where(true)
		var out []storage.Event
		err := s.eachEvent(ctx, `SELECT `+tables.EventColumns+` FROM events`+s.liveWhere(w)+` ORDER BY time_ms DESC, id DESC`, args,
			func(e *storage.Event) error { out = append(out, *e); return nil })
		return out, err
	}
	keys, err := s.pageKeys(ctx, f)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	want := make(map[key]int, len(keys))
	ids := make([]string, len(keys))
	for i, k := range keys {
		want[k], ids[i] = i, k.id
	}
	tbl, err := idTable(ids)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Event, len(keys))
	found := 0
	err = s.eachEvent(ch.Context(ctx, ch.WithExternalTable(tbl)), `SELECT `+tables.EventColumns+` FROM events
		WHERE time_ms BETWEEN ? AND ? AND id GLOBAL IN (SELECT id FROM batch_ids) AND `+s.LiveCondition(),
		[]any{keys[len(keys)-1].ms, keys[0].ms},
		func(e *storage.Event) error {
			// The same id at another time is another row: keep the page's.
			if i, ok := want[key{e.Time.UnixMilli(), e.ID}]; ok {
				out[i] = *e
				delete(want, key{e.Time.UnixMilli(), e.ID})
				found++
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if found != len(keys) { // a row vanished between the two reads (dropped partition)
		kept := out[:0]
		for i, e := range out {
			if _, missing := want[keys[i]]; !missing {
				kept = append(kept, e)
			}
		}
		out = kept
	}
	return out, nil
}

// pageKeys returns the keys of the first f.Limit distinct events, newest
// first; it asks again past a page shortened by duplicate rows.
func (s *Store) pageKeys(ctx context.Context, f storage.EventFilter) ([]key, error) {
	var keys []key
	for len(keys) < f.Limit {
		need := f.Limit - len(keys)
		w, args := f.Where(true)
		n := 0
		err := tables.Each(ctx, s.reads, "list events", `SELECT time_ms, id FROM events`+s.liveWhere(w)+
			` ORDER BY time_ms DESC, id DESC LIMIT ?`, append(args, need),
			func(r tables.Row) (key, error) {
				var k key
				return k, r.Scan(&k.ms, &k.id)
			},
			func(k key) error {
				n++
				if len(keys) == 0 || keys[len(keys)-1] != k {
					keys = append(keys, k)
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
		if n < need {
			break // the filter has no more rows
		}
		last := keys[len(keys)-1]
		f.BeforeTime, f.BeforeID = time.UnixMilli(last.ms), last.id
	}
	return keys, nil
}

// eachEvent runs an event query sorted by (time_ms, id) either way and
// calls fn per row, skipping a row that repeats the previous key.
func (s *Store) eachEvent(ctx context.Context, query string, args []any, fn func(*storage.Event) error) error {
	var prev key
	first := true
	return tables.Each(ctx, s.reads, "read events", query, args, tables.ScanEvent[[]string], func(e storage.Event) error {
		k := key{e.Time.UnixMilli(), e.ID}
		if !first && k == prev {
			return nil
		}
		first, prev = false, k
		return fn(&e)
	})
}

// ScanEvents implements storage.Store. ClickHouse sorts the range; past
// 1 GB of sort buffer it spills to disk instead of failing.
func (s *Store) ScanEvents(ctx context.Context, f storage.EventFilter, fn func(*storage.Event) error) error {
	w, args := f.Where(false)
	ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"max_bytes_before_external_sort": 1 << 30}))
	return s.eachEvent(ctx, `SELECT `+tables.EventColumns+` FROM events`+s.liveWhere(w)+` ORDER BY time_ms, id`, args, fn)
}

// Query implements storage.Store.
func (s *Store) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	return tables.Query(ctx, s.reads, query, args...)
}
