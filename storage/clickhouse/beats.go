package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// Beat implements storage.Beats.
func (s *Store) Beat(ctx context.Context, worker string, at time.Time) error {
	if err := s.insertRow(ctx, `INSERT INTO worker_beats (worker, at_ms)`, worker, at.UnixMilli()); err != nil {
		return fmt.Errorf("worker beat: %w", err)
	}
	return nil
}

// Retire implements storage.Beats (a mutation: applied in the background,
// so the marks may be read for a moment longer).
func (s *Store) Retire(ctx context.Context, worker string) error {
	if err := s.conn.Exec(ctx, `ALTER TABLE worker_beats DELETE WHERE worker = ?`, worker); err != nil {
		return fmt.Errorf("retire worker: %w", unavailable(err))
	}
	return nil
}

// LiveWorkers implements storage.Beats.
func (s *Store) LiveWorkers(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.conn.Query(ctx, `SELECT worker FROM worker_beats GROUP BY worker HAVING max(at_ms) >= ? ORDER BY worker`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("worker beats: %w", unavailable(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			return nil, fmt.Errorf("worker beats: %w", unavailable(err))
		}
		out = append(out, w)
	}
	return out, unavailable(rows.Err())
}
