package duckdb

import (
	"context"
	"strings"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// AppendMeterRecord implements storage.MeterLog; the primary key refuses a
// repeated (meter_id, seq).
func (s *Store) AppendMeterRecord(ctx context.Context, r storage.MeterRecord) error {
	return s.appendUnique(ctx, `INSERT INTO meter_log (`+tables.MeterRecordColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		tables.MeterRecordValues(r))
}

// MeterRecords implements storage.MeterLog.
func (s *Store) MeterRecords(ctx context.Context, meterID string) ([]storage.MeterRecord, error) {
	q, args := tables.MeterRecordsQuery(meterID)
	return tables.Read(ctx, s.reads, "meter log", q+` ORDER BY meter_id, seq`, args, tables.ScanMeterRecord)
}

// appendUnique runs an INSERT into a table with a primary key: a row that
// repeats a stored key is refused with storage.ErrConflict.
func (s *Store) appendUnique(ctx context.Context, insert string, values []any) error {
	_, err := s.db.ExecContext(ctx, insert, values...)
	if err != nil && strings.Contains(err.Error(), "Constraint Error") {
		return storage.ErrConflict
	}
	return unavailable(err)
}
