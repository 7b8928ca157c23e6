package clickhouse

import (
	"context"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// AppendMeterRecord implements storage.MeterLog (appendUnique). Meter
// changes come through one meterd process's API handlers, one at a time
// per meter, so the check and the insert do not race in practice;
// MeterRecords drops a repeat should two processes ever write the same
// record.
func (s *Store) AppendMeterRecord(ctx context.Context, r storage.MeterRecord) error {
	return s.appendUnique(ctx, "meter log", `SELECT count() FROM meter_log WHERE meter_id = ? AND seq = ?`,
		[]any{r.MeterID, int32(r.Seq)}, `INSERT INTO meter_log (`+tables.MeterRecordColumns+`)`, tables.MeterRecordValues(r))
}

// MeterRecords implements storage.MeterLog.
func (s *Store) MeterRecords(ctx context.Context, meterID string) ([]storage.MeterRecord, error) {
	q, args := tables.MeterRecordsQuery(meterID)
	return tables.Read(ctx, s.reads, "meter log", q+` ORDER BY meter_id, seq LIMIT 1 BY meter_id, seq`, args, tables.ScanMeterRecord)
}
