package duckdb

import (
	"context"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// Beat implements storage.Beats. Upserts of one row from two connections
// conflict in DuckDB, so beats of this process (the only one that can
// open the file) take turns.
func (s *Store) Beat(ctx context.Context, worker string, at time.Time) error {
	s.beatMu.Lock()
	defer s.beatMu.Unlock()
	_, err := s.db.ExecContext(ctx, `INSERT INTO worker_beats VALUES (?, ?)
		ON CONFLICT (worker) DO UPDATE SET at_ms = greatest(at_ms, excluded.at_ms)`, worker, at.UnixMilli())
	return unavailable(err)
}

// Retire implements storage.Beats: the worker's mark becomes
// tables.RetiredMark, which a late beat of it cannot lower.
func (s *Store) Retire(ctx context.Context, worker string) error {
	s.beatMu.Lock()
	defer s.beatMu.Unlock()
	_, err := s.db.ExecContext(ctx, `INSERT INTO worker_beats VALUES (?, ?)
		ON CONFLICT (worker) DO UPDATE SET at_ms = excluded.at_ms`, worker, int64(tables.RetiredMark))
	return unavailable(err)
}

// LiveWorkers implements storage.Beats.
func (s *Store) LiveWorkers(ctx context.Context, since time.Time) ([]storage.WorkerBeat, error) {
	return tables.Read(ctx, s.reads, "worker beats", `SELECT worker, at_ms FROM worker_beats WHERE at_ms >= ? AND at_ms < ? ORDER BY worker`,
		[]any{since.UnixMilli(), int64(tables.RetiredMark)}, tables.ScanWorkerBeat)
}
