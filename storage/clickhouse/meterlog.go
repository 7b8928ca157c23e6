package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/storage"
)

// AppendMeterRecord implements storage.MeterLog. ClickHouse has no unique
// keys: the store checks for the (meter_id, seq) first. Meter changes come
// through one meterd process's API handlers, one at a time per meter, so
// the check and the insert do not race in practice; MeterRecords drops a
// repeat should two processes ever write the same record.
func (s *Store) AppendMeterRecord(ctx context.Context, r storage.MeterRecord) error {
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM meter_log WHERE meter_id = ? AND seq = ?`,
		r.MeterID, int32(r.Seq)).Scan(&n); err != nil {
		return fmt.Errorf("meter log: %w", unavailable(err))
	}
	if n > 0 {
		return storage.ErrConflict
	}
	err := s.insertRow(ctx, `INSERT INTO meter_log (meter_id, seq, kind, at_ms, actor, version, effective_from_ms, body)`,
		r.MeterID, int32(r.Seq), r.Kind, r.At.UnixMilli(), r.Actor,
		int32(r.Version), msOrZero(r.EffectiveFrom), r.Body)
	if err != nil {
		return fmt.Errorf("meter log: %w", unavailable(err))
	}
	return nil
}

// MeterRecords implements storage.MeterLog.
func (s *Store) MeterRecords(ctx context.Context, meterID string) ([]storage.MeterRecord, error) {
	q := `SELECT meter_id, seq, kind, at_ms, actor, version, effective_from_ms, body FROM meter_log`
	var args []any
	if meterID != "" {
		q += ` WHERE meter_id = ?`
		args = append(args, meterID)
	}
	rows, err := s.conn.Query(ctx, q+` ORDER BY meter_id, seq LIMIT 1 BY meter_id, seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("meter log: %w", unavailable(err))
	}
	defer rows.Close()
	var out []storage.MeterRecord
	for rows.Next() {
		var r storage.MeterRecord
		var seq, version int32
		var at, eff int64
		if err := rows.Scan(&r.MeterID, &seq, &r.Kind, &at, &r.Actor, &version, &eff, &r.Body); err != nil {
			return nil, err
		}
		r.Seq, r.Version = int(seq), int(version)
		r.At = time.UnixMilli(at).UTC()
		if eff != 0 {
			r.EffectiveFrom = time.UnixMilli(eff).UTC()
		}
		out = append(out, r)
	}
	return out, unavailable(rows.Err())
}
