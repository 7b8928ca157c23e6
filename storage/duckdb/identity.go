package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"

	"github.com/marcboeker/go-duckdb/mapping"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// The event_ids table indexes identities by storage.Fingerprint, in arrival
// order: a lookup scans its fp column (8 bytes a row) from the horizon on,
// which DuckDB's zone maps on received_ms find without reading older row
// groups. An ART index on the id would be kept in memory whole (about 75
// bytes an event measured) and is not used for IN lists.

// identityColumns gathers event_ids rows for chunkAppender.
type identityColumns struct {
	fp                 fixedCol[uint64]
	timeMs, receivedMs fixedCol[int64]
}

func newIdentityColumns() *identityColumns {
	return &identityColumns{fp: fixedCol[uint64]{typ: mapping.TypeUBigInt},
		timeMs: fixedCol[int64]{typ: mapping.TypeBigInt}, receivedMs: fixedCol[int64]{typ: mapping.TypeBigInt}}
}

func (c *identityColumns) all() []column { return []column{&c.fp, &c.timeMs, &c.receivedMs} }

// identity is an event_ids row.
type identity struct {
	fp                 uint64
	timeMs, receivedMs int64
}

func identityOf(e *storage.Event) identity {
	return identity{storage.Fingerprint(e.ID), e.Time.UnixMilli(), e.ReceivedAt.UnixMilli()}
}

// appendIdentities adds rows to event_ids.
func appendIdentities(raw mapping.Connection, ids []identity) error {
	cols := newIdentityColumns()
	a, err := newChunkAppender(raw, "event_ids", cols.all())
	if err != nil {
		return err
	}
	for _, id := range ids {
		cols.fp.add(id.fp)
		cols.timeMs.add(id.timeMs)
		cols.receivedMs.add(id.receivedMs)
		if err := a.rowDone(); err != nil {
			a.close()
			return err
		}
	}
	return a.close()
}

// storedTimes returns the times of the stored events whose fingerprint is
// one of fps, among those that arrived at or after horizon.
func storedTimes(ctx context.Context, conn *sql.Conn, fps []uint64, horizon int64) ([]int64, error) {
	// The list goes as one text that DuckDB casts: go-duckdb binds a list
	// parameter with cgo calls per element.
	buf := make([]byte, 0, len(fps)*21+2)
	buf = append(buf, '[')
	for i, fp := range fps {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendUint(buf, fp, 10)
	}
	buf = append(buf, ']')
	return tables.Read(ctx, on(conn), "identity lookup", `SELECT DISTINCT time_ms FROM event_ids
		WHERE received_ms >= ? AND fp IN (SELECT unnest(?::UBIGINT[]))`, []any{horizon, string(buf)}, tables.ScanOne[int64])
}

// storedIDs returns which of ids stored events at the given times have.
func storedIDs(ctx context.Context, conn *sql.Conn, times []int64, ids []string) ([]string, error) {
	lo, hi := times[0], times[0]
	for _, t := range times {
		lo, hi = min(lo, t), max(hi, t)
	}
	// The ids go as one JSON text: binding a VARCHAR[] costs several cgo
	// calls per element.
	idsJSON, _ := json.Marshal(ids)
	timesJSON, _ := json.Marshal(times)
	return tables.Read(ctx, on(conn), "identity lookup", `SELECT DISTINCT id FROM events
		WHERE time_ms BETWEEN ? AND ? AND time_ms IN (SELECT unnest(?::BIGINT[]))
		AND id IN (SELECT unnest(json_extract_string(?::JSON, '$[*]')))`, []any{lo, hi, string(timesJSON), string(idsJSON)},
		tables.ScanOne[string])
}

// backfillIdentities fills event_ids from the events stored before it
// existed (migration 5), a page of rows at a time.
func backfillIdentities(ctx context.Context, conn *sql.Conn) error {
	const page = 100_000
	var last sql.NullInt64 // events are never deleted: rowids run from 0 to the last
	if err := conn.QueryRowContext(ctx, `SELECT max(rowid) FROM events`).Scan(&last); err != nil || !last.Valid {
		return err
	}
	for from := int64(0); from <= last.Int64; from += page {
		ids, err := tables.Read(ctx, on(conn), "backfill identities", `SELECT id, time_ms, received_ms FROM events
			WHERE rowid >= ? AND rowid < ?`, []any{from, from + page}, func(r tables.Row) (identity, error) {
			var id string
			var e identity
			err := r.Scan(&id, &e.timeMs, &e.receivedMs)
			e.fp = storage.Fingerprint(id)
			return e, err
		})
		if err != nil {
			return err
		}
		if err := conn.Raw(func(dc any) error {
			raw, err := rawConn(dc)
			if err != nil {
				return err
			}
			return appendIdentities(raw, ids)
		}); err != nil {
			return err
		}
	}
	return nil
}
