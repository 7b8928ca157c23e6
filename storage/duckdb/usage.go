package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/marcboeker/go-duckdb/mapping"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// The usage cache (storage.UsageCache). Change marks are event_ids rowids:
// one writer appends them in commit order (Insert is called by one writer
// at a time) and none is ever deleted, so a row committed after a mark was
// read has a rowid at or above it.

// ChangeMark implements storage.UsageCache: the next rowid of event_ids.
func (s *Store) ChangeMark(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM event_ids`).Scan(&n); err != nil {
		return 0, fmt.Errorf("change mark: %w", unavailable(err))
	}
	return n, nil
}

// ChangeMargin implements storage.UsageCache: rowids are exact.
func (s *Store) ChangeMargin() time.Duration { return 0 }

// ChangedHours implements storage.UsageCache.
func (s *Store) ChangedHours(ctx context.Context, since int64) (map[int64]int64, error) {
	return tables.HourMarks(ctx, s.reads, `SELECT time_ms - time_ms % 3600000 AS h, max(rowid)
		FROM event_ids WHERE rowid >= ? GROUP BY h`, since)
}

// PutUsage implements storage.UsageCache: in one transaction, each piece
// replaces an older computation of it (a newer one stays).
func (s *Store) PutUsage(ctx context.Context, pieces []storage.UsagePiece) error {
	if len(pieces) == 0 {
		return nil
	}
	s.usageMu.Lock() // two transactions replacing one piece would conflict
	defer s.usageMu.Unlock()
	return s.inTx(ctx, func(conn *sql.Conn) error {
		newer, err := storedMarks(ctx, conn, pieces)
		if err != nil {
			return err
		}
		var put []storage.UsagePiece
		for _, p := range pieces {
			if newer[usageKey{p.MeterID, p.FromMs, p.ToMs}] <= p.Mark {
				put = append(put, p)
			}
		}
		if len(put) == 0 {
			return nil
		}
		type keys struct {
			from, to []byte
			lo, hi   int64
		}
		byMeter := map[string]*keys{}
		for _, p := range put {
			k := byMeter[p.MeterID]
			if k == nil {
				k = &keys{lo: p.FromMs, hi: p.ToMs}
				byMeter[p.MeterID] = k
			}
			k.from, k.to = appendList(k.from, p.FromMs), appendList(k.to, p.ToMs)
			k.lo, k.hi = min(k.lo, p.FromMs), max(k.hi, p.ToMs)
		}
		for meter, k := range byMeter {
			// The range lets zone maps skip the row groups of other hours.
			if _, err := conn.ExecContext(ctx, `DELETE FROM usage_hours USING
				(SELECT unnest($1::BIGINT[]) AS f, unnest($2::BIGINT[]) AS t) AS d
				WHERE meter_id = $3 AND from_ms >= $4 AND to_ms <= $5 AND from_ms = d.f AND to_ms = d.t`,
				string(k.from)+"]", string(k.to)+"]", meter, k.lo, k.hi); err != nil {
				return unavailable(err)
			}
		}
		return conn.Raw(func(dc any) error {
			raw, err := rawConn(dc)
			if err != nil {
				return err
			}
			return appendUsage(raw, put)
		})
	})
}

type usageKey struct {
	meter    string
	from, to int64
}

// storedMarks are the marks of the stored computations of pieces' meters
// over the span of pieces (marks are at least 0: none reads as 0).
func storedMarks(ctx context.Context, conn *sql.Conn, pieces []storage.UsagePiece) (map[usageKey]int64, error) {
	type bounds struct{ from, to int64 }
	span := map[string]bounds{}
	for _, p := range pieces {
		b, ok := span[p.MeterID]
		if !ok {
			b = bounds{p.FromMs, p.ToMs}
		}
		span[p.MeterID] = bounds{min(b.from, p.FromMs), max(b.to, p.ToMs)}
	}
	out := map[usageKey]int64{}
	for meter, b := range span {
		type stored struct {
			k    usageKey
			mark int64
		}
		err := tables.Each(ctx, on(conn), "usage cache", `SELECT from_ms, to_ms, mark FROM usage_hours
			WHERE meter_id = ? AND from_ms >= ? AND to_ms <= ? AND NOT counted`, []any{meter, b.from, b.to},
			func(r tables.Row) (stored, error) {
				st := stored{k: usageKey{meter: meter}}
				return st, r.Scan(&st.k.from, &st.k.to, &st.mark)
			},
			func(st stored) error { out[st.k] = st.mark; return nil })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendList adds v to a list literal being built ("[1,2"; close with "]").
func appendList(b []byte, v int64) []byte {
	if len(b) == 0 {
		b = append(b, '[')
	} else {
		b = append(b, ',')
	}
	return strconv.AppendInt(b, v, 10)
}

// usageColumns gathers usage_hours rows for chunkAppender.
type usageColumns struct {
	meter, customer              strCol
	from, to, mark, events, errs fixedCol[int64]
	version                      fixedCol[int32]
	counted, hasValue            fixedCol[bool]
	value                        fixedCol[float64]
}

func appendUsage(raw mapping.Connection, pieces []storage.UsagePiece) error {
	c := usageColumns{
		from: fixedCol[int64]{typ: mapping.TypeBigInt}, to: fixedCol[int64]{typ: mapping.TypeBigInt},
		mark: fixedCol[int64]{typ: mapping.TypeBigInt}, events: fixedCol[int64]{typ: mapping.TypeBigInt},
		errs: fixedCol[int64]{typ: mapping.TypeBigInt}, version: fixedCol[int32]{typ: mapping.TypeInteger},
		counted: fixedCol[bool]{typ: mapping.TypeBoolean}, hasValue: fixedCol[bool]{typ: mapping.TypeBoolean},
		value: fixedCol[float64]{typ: mapping.TypeDouble},
	}
	// The table's column order (migration 7).
	a, err := newChunkAppender(raw, "usage_hours", []column{&c.meter, &c.from, &c.to, &c.mark, &c.version,
		&c.counted, &c.customer, &c.value, &c.hasValue, &c.events, &c.errs})
	if err != nil {
		return err
	}
	for _, p := range pieces {
		for _, r := range p.Rows() {
			c.meter.add(r.MeterID)
			c.from.add(r.FromMs)
			c.to.add(r.ToMs)
			c.mark.add(r.Mark)
			c.version.add(r.Version)
			c.counted.add(r.Counted)
			c.customer.add(r.Customer)
			c.value.add(r.Value)
			c.hasValue.add(r.HasValue)
			c.events.add(r.Events)
			c.errs.add(r.Errors)
			if err := a.rowDone(); err != nil {
				a.close()
				return fmt.Errorf("usage_hours: %w", err)
			}
		}
	}
	return a.close()
}

// Usage implements storage.UsageCache.
func (s *Store) Usage(ctx context.Context, meterID string, fromMs, toMs int64) ([]storage.UsagePiece, error) {
	rs, err := tables.Read(ctx, s.reads, "usage cache", tables.UsageQuery, []any{meterID, fromMs, toMs}, tables.ScanUsageRow)
	if err != nil {
		return nil, err
	}
	return storage.FoldUsageRows(rs), nil
}
