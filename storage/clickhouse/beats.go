package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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

// Retire implements storage.Beats (a mutation: applied in the background,
// so the marks may be read for a moment longer; on a cluster, on every
// shard's local table, since a Distributed table takes no mutation).
func (s *Store) Retire(ctx context.Context, worker string) error {
	retire := func(conn driver.Conn, table string) error {
		return conn.Exec(ctx, `ALTER TABLE `+table+` DELETE WHERE worker = ?`, worker)
	}
	var err error
	if s.cluster != "" {
		err = s.onEveryShard(ctx, func(conn driver.Conn) error { return retire(conn, "worker_beats_local") })
	} else {
		err = retire(s.conn, "worker_beats")
	}
	if err != nil {
		return fmt.Errorf("retire worker: %w", unavailable(err))
	}
	return nil
}

// LiveWorkers implements storage.Beats.
func (s *Store) LiveWorkers(ctx context.Context, since time.Time) ([]storage.WorkerBeat, error) {
	return tables.Read(ctx, s.reads, "worker beats", `SELECT worker, max(at_ms) AS at FROM worker_beats GROUP BY worker HAVING at >= ? ORDER BY worker`,
		[]any{since.UnixMilli()}, tables.ScanWorkerBeat)
}
