package duckdb

import (
	"context"
	"time"
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

// Retire implements storage.Beats.
func (s *Store) Retire(ctx context.Context, worker string) error {
	s.beatMu.Lock()
	defer s.beatMu.Unlock()
	_, err := s.db.ExecContext(ctx, `DELETE FROM worker_beats WHERE worker = ?`, worker)
	return unavailable(err)
}

// LiveWorkers implements storage.Beats.
func (s *Store) LiveWorkers(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT worker FROM worker_beats WHERE at_ms >= ? ORDER BY worker`, since.UnixMilli())
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, unavailable(rows.Err())
}
