package clickhouse

import (
	"context"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meterd/meterd/storage"
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
		err := s.eachEvent(ctx, `SELECT `+readColumns+` FROM events`+s.liveWhere(w)+` ORDER BY time_ms DESC, id DESC`, args,
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
	err = s.eachEvent(ch.Context(ctx, ch.WithExternalTable(tbl)), `SELECT `+readColumns+` FROM events
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
		rows, err := s.conn.Query(ctx, `SELECT time_ms, id FROM events`+s.liveWhere(w)+
			` ORDER BY time_ms DESC, id DESC LIMIT ?`, append(args, need)...)
		if err != nil {
			return nil, fmt.Errorf("list events: %w", unavailable(err))
		}
		n := 0
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.ms, &k.id); err != nil {
				rows.Close()
				return nil, err
			}
			n++
			if len(keys) > 0 && keys[len(keys)-1] == k {
				continue
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("list events: %w", unavailable(err))
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
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read events: %w", unavailable(err))
	}
	defer rows.Close()
	var prev key
	first := true
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return err
		}
		k := key{e.Time.UnixMilli(), e.ID}
		if !first && k == prev {
			continue
		}
		first, prev = false, k
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read events: %w", unavailable(err))
	}
	return nil
}

// scanEvent reads one row of "SELECT <readColumns>".
func scanEvent(r driver.Rows) (storage.Event, error) {
	var e storage.Event
	var tms, rms, resp int64
	var hasResp uint8
	var rqk, rqv, rsk, rsv []string
	err := r.Scan(&e.ID, &e.ExternalID, &e.Format, &tms, &rms, &e.Type, &e.Source, &e.Subject,
		&e.Verb, &e.URI, &e.Route, &e.Host, &e.IP, &e.APIVersion, &rqk, &rqv, &e.RequestSize, &e.RequestBody,
		&hasResp, &resp, &e.Status, &rsk, &rsv, &e.ResponseSize, &e.ResponseBody,
		&e.DurationMs, &e.UserID, &e.CompanyID, &e.SessionToken, &e.SubscriptionID, &e.Direction, &e.Weight,
		&e.Metadata, &e.UserTraits, &e.CompanyTraits, &e.BlockedBy)
	if err != nil {
		return e, fmt.Errorf("read event: %w", err)
	}
	e.Time = time.UnixMilli(tms).UTC()
	e.ReceivedAt = time.UnixMilli(rms).UTC()
	e.HasResponse = hasResp != 0
	if e.HasResponse {
		e.ResponseTime = time.UnixMilli(resp).UTC()
	}
	e.RequestHeaders = storage.HeaderMap(rqk, rqv)
	e.ResponseHeaders = storage.HeaderMap(rsk, rsv)
	return e, nil
}

// ScanEvents implements storage.Store. ClickHouse sorts the range; past
// 1 GB of sort buffer it spills to disk instead of failing.
func (s *Store) ScanEvents(ctx context.Context, f storage.EventFilter, fn func(*storage.Event) error) error {
	w, args := f.Where(false)
	ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"max_bytes_before_external_sort": 1 << 30}))
	return s.eachEvent(ctx, `SELECT `+readColumns+` FROM events`+s.liveWhere(w)+` ORDER BY time_ms, id`, args, fn)
}

// Query implements storage.Store.
func (s *Store) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	return rows, nil
}
