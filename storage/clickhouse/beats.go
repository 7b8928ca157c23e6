package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// Beat implements storage.Beats.
func (s *Store) Beat(ctx context.Context, worker string, at time.Time) error {
	if err := s.insertRow(ctx, `INSERT INTO worker_beats (worker, at_ms)`, worker, at.UnixMilli()); err != nil {
		return fmt.Errorf("worker beat: %w", err)
	}
	return nil
}

// Retire implements storage.Beats. It writes tables.RetiredMark rather
// than deleting the worker's rows: a DELETE is a mutation that
// ClickHouse applies in the background (seconds later on a busy
// server), while an insert is read at once. The ReplacingMergeTree keeps
// the greatest mark, so merges keep the retirement.
func (s *Store) Retire(ctx context.Context, worker string) error {
	if err := s.insertRow(ctx, `INSERT INTO worker_beats (worker, at_ms)`, worker, int64(tables.RetiredMark)); err != nil {
		return fmt.Errorf("retire worker: %w", err)
	}
	return nil
}

// LiveWorkers implements storage.Beats.
func (s *Store) LiveWorkers(ctx context.Context, since time.Time) ([]storage.WorkerBeat, error) {
	return tables.Read(ctx, s.reads, "worker beats", `SELECT worker, max(at_ms) AS at FROM worker_beats GROUP BY worker HAVING at >= ? AND at < ? ORDER BY worker`,
		[]any{since.UnixMilli(), int64(tables.RetiredMark)}, tables.ScanWorkerBeat)
}
