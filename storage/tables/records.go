package tables

import (
	"context"
	"math"
	"time"

	"github.com/meterd/meterd/storage"
)

// The append-only tables besides events: a column list that both a
// store's INSERT and its SELECT name, the row's values for the INSERT
// (integers sized as the ClickHouse columns, which DuckDB's convert) and
// the scan of a selected row.

// ProfileColumns are the profiles table's columns.
const ProfileColumns = `kind, id, company_id, metadata, modified_ms, received_ms, raw`

// ProfilesQuery reads every profile update, oldest first (storage.Store.Profiles).
const ProfilesQuery = `SELECT ` + ProfileColumns + ` FROM profiles ORDER BY modified_ms, received_ms`

// ProfileValues is p's row.
func ProfileValues(p storage.Profile) []any {
	return []any{p.Kind, p.ID, p.CompanyID, OrEmptyObject(p.Metadata), p.ModifiedAt.UnixMilli(), p.ReceivedAt.UnixMilli(), p.Raw}
}

// ScanProfile reads a row of ProfileColumns.
func ScanProfile(r Row) (storage.Profile, error) {
	var p storage.Profile
	var mod, rec int64
	err := r.Scan(&p.Kind, &p.ID, &p.CompanyID, &p.Metadata, &mod, &rec, &p.Raw)
	p.ModifiedAt, p.ReceivedAt = time.UnixMilli(mod).UTC(), time.UnixMilli(rec).UTC()
	return p, err
}

// MeterRecordColumns are the meter_log table's columns.
const MeterRecordColumns = `meter_id, seq, kind, at_ms, actor, version, effective_from_ms, body`

// MeterRecordsQuery selects one meter's records ("" for every meter's),
// unordered: each store orders (and ClickHouse drops repeats).
func MeterRecordsQuery(meterID string) (string, []any) {
	q := `SELECT ` + MeterRecordColumns + ` FROM meter_log`
	if meterID == "" {
		return q, nil
	}
	return q + ` WHERE meter_id = ?`, []any{meterID}
}

// MeterRecordValues is r's row.
func MeterRecordValues(r storage.MeterRecord) []any {
	return []any{r.MeterID, int32(r.Seq), r.Kind, r.At.UnixMilli(), r.Actor, int32(r.Version), MsOrZero(r.EffectiveFrom), r.Body}
}

// ScanMeterRecord reads a row of MeterRecordColumns.
func ScanMeterRecord(r Row) (storage.MeterRecord, error) {
	var m storage.MeterRecord
	var seq, version int32
	var at, eff int64
	if err := r.Scan(&m.MeterID, &seq, &m.Kind, &at, &m.Actor, &version, &eff, &m.Body); err != nil {
		return m, err
	}
	m.Seq, m.Version = int(seq), int(version)
	m.At = time.UnixMilli(at).UTC()
	if eff != 0 {
		m.EffectiveFrom = time.UnixMilli(eff).UTC()
	}
	return m, nil
}

// JournalColumns are the journal table's columns, as
// storage.JournalQuery.SQL selects them.
const JournalColumns = `stream, key, at_ms, body`

// JournalValues is e's row.
func JournalValues(e storage.JournalEntry) []any {
	return []any{e.Stream, e.Key, e.At.UnixMilli(), e.Body}
}

// ScanJournalEntry reads a row of JournalColumns.
func ScanJournalEntry(r Row) (storage.JournalEntry, error) {
	var e storage.JournalEntry
	var at int64
	err := r.Scan(&e.Stream, &e.Key, &at, &e.Body)
	e.At = time.UnixMilli(at).UTC()
	return e, err
}

// RetiredMark is the mark a retired worker leaves in worker_beats:
// above any real one, so that it is the worker's newest for good (a
// worker id names one process run, which never beats again) and the
// next worker sees the retirement at once, on both stores.
const RetiredMark = math.MaxInt64

// ScanWorkerBeat reads a row of (worker, at_ms).
func ScanWorkerBeat(r Row) (storage.WorkerBeat, error) {
	var b storage.WorkerBeat
	var at int64
	err := r.Scan(&b.Worker, &at)
	b.At = time.UnixMilli(at).UTC()
	return b, err
}

// UsageColumns are usage_hours' columns, in the table's order.
const UsageColumns = `meter_id, from_ms, to_ms, mark, version, counted, customer, value, has_value, events, errors`

// UsageQuery reads the rows of a meter's pieces inside [from_ms, to_ms]
// (args: meter, from, to); storage.FoldUsageRows makes them pieces.
const UsageQuery = `SELECT ` + UsageColumns + ` FROM usage_hours WHERE meter_id = ? AND from_ms >= ? AND to_ms <= ?`

// ScanUsageRow reads a row of UsageColumns.
func ScanUsageRow(r Row) (storage.UsageRow, error) {
	var u storage.UsageRow
	err := r.Scan(&u.MeterID, &u.FromMs, &u.ToMs, &u.Mark, &u.Version, &u.Counted, &u.Customer, &u.Value, &u.HasValue, &u.Events, &u.Errors)
	return u, err
}

// HourMarks reads the rows of (hour_ms, mark) of a ChangedHours query:
// storage.UsageCache.ChangedHours's answer.
func HourMarks(ctx context.Context, db DB, query string, args ...any) (map[int64]int64, error) {
	out := map[int64]int64{}
	err := Each(ctx, db, "changed hours", query, args,
		func(r Row) (hm [2]int64, err error) { return hm, r.Scan(&hm[0], &hm[1]) },
		func(hm [2]int64) error { out[hm[0]] = hm[1]; return nil })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// JournalQuery selects q's entries, unordered: each store orders (and
// ClickHouse drops repeats).
func JournalQuery(q storage.JournalQuery) (query string, args []any) {
	query = `SELECT ` + JournalColumns + ` FROM journal WHERE stream = ?`
	args = []any{q.Stream}
	if q.Key != "" {
		query += ` AND key = ?`
		args = append(args, q.Key)
	}
	if !q.From.IsZero() {
		query += ` AND at_ms >= ?`
		args = append(args, q.From.UnixMilli())
	}
	return query, args
}
