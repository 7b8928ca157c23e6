package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// The usage cache (storage.UsageCache). Change marks are the server's
// clock in unix ms: the view event_stamps_mv stamps the hours of every
// inserted block with now(), and a copy that lost a race is a change at
// its event_losers at_ms. An insert is visible only once it returns, so
// ChangeMark is now less changeMargin: a change not visible then was
// stamped later than that. The margin also covers the skew between the
// servers of a cluster and the meterd processes that settle races.
const changeMargin = 5 * time.Minute

// ChangeMark implements storage.UsageCache.
func (s *Store) ChangeMark(ctx context.Context) (int64, error) {
	var now int64
	if err := s.conn.QueryRow(ctx, `SELECT toInt64(toUnixTimestamp(now()))`).Scan(&now); err != nil {
		return 0, fmt.Errorf("change mark: %w", unavailable(err))
	}
	return now*1000 - s.margin.Milliseconds(), nil
}

// ChangeMargin implements storage.UsageCache.
func (s *Store) ChangeMargin() time.Duration { return s.margin }

// ChangedHours implements storage.UsageCache.
func (s *Store) ChangedHours(ctx context.Context, since int64) (map[int64]int64, error) {
	return tables.HourMarks(ctx, s.reads, `SELECT hour_ms, max(at_ms) FROM (
			SELECT hour_ms, toInt64(toUnixTimestamp(at)) * 1000 AS at_ms FROM event_stamps WHERE at >= toDateTime(?)
			UNION ALL
			SELECT time_ms - time_ms % 3600000 AS hour_ms, at_ms FROM `+s.losers()+` WHERE at_ms >= ?
		) GROUP BY hour_ms`, max(since, 0)/1000, since)
}

// PutUsage implements storage.UsageCache: rows are only added; readers
// take each piece's latest mark, and merges (ReplacingMergeTree(mark))
// drop what older computations left.
func (s *Store) PutUsage(ctx context.Context, pieces []storage.UsagePiece) error {
	if len(pieces) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO usage_hours (`+tables.UsageColumns+`)`)
	if err != nil {
		return fmt.Errorf("usage cache: %w", unavailable(err))
	}
	for _, p := range pieces {
		for _, r := range p.Rows() {
			if err := batch.Append(r.MeterID, r.FromMs, r.ToMs, r.Mark, r.Version, boolByte(r.Counted), r.Customer,
				r.Value, boolByte(r.HasValue), r.Events, r.Errors); err != nil {
				batch.Abort()
				return err
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("usage cache: %w", unavailable(err))
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Usage implements storage.UsageCache.
func (s *Store) Usage(ctx context.Context, meterID string, fromMs, toMs int64) ([]storage.UsagePiece, error) {
	rs, err := tables.Read(ctx, s.reads, "usage cache", tables.UsageQuery, []any{meterID, fromMs, toMs}, tables.ScanUsageRow)
	if err != nil {
		return nil, err
	}
	return storage.FoldUsageRows(rs), nil
}
