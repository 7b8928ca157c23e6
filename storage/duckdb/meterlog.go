package duckdb

import (
	"context"
	"strings"
	"time"

	"github.com/meterd/meterd/storage"
)

// AppendMeterRecord implements storage.MeterLog; the primary key refuses a
// repeated (meter_id, seq).
func (s *Store) AppendMeterRecord(ctx context.Context, r storage.MeterRecord) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meter_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.MeterID, r.Seq, r.Kind, r.At.UnixMilli(), r.Actor, r.Version, msOrZero(r.EffectiveFrom), r.Body)
	if err != nil && strings.Contains(err.Error(), "Constraint Error") {
		return storage.ErrConflict
	}
	return unavailable(err)
}

// MeterRecords implements storage.MeterLog.
func (s *Store) MeterRecords(ctx context.Context, meterID string) ([]storage.MeterRecord, error) {
	q := `SELECT meter_id, seq, kind, at_ms, actor, version, effective_from_ms, body FROM meter_log`
	var args []any
	if meterID != "" {
		q += ` WHERE meter_id = ?`
		args = append(args, meterID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY meter_id, seq`, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []storage.MeterRecord
	for rows.Next() {
		var r storage.MeterRecord
		var at, eff int64
		if err := rows.Scan(&r.MeterID, &r.Seq, &r.Kind, &at, &r.Actor, &r.Version, &eff, &r.Body); err != nil {
			return nil, err
		}
		r.At = time.UnixMilli(at).UTC()
		if eff != 0 {
			r.EffectiveFrom = time.UnixMilli(eff).UTC()
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
