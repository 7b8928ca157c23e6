package duckdb

import (
	"context"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// ListEvents implements storage.Store.
func (s *Store) ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error) {
	w, args := f.Where(true)
	q := `SELECT ` + tables.EventColumns + ` FROM events` + w + ` ORDER BY time_ms DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	return tables.Read(ctx, s.reads, "list events", q, args, tables.ScanEvent[[]any])
}

// Stats implements storage.Store.
func (s *Store) Stats(ctx context.Context, f storage.EventFilter) (storage.Stats, error) {
	w, args := f.Where(false)
	return tables.Stats(ctx, s.reads, `SELECT count(*), coalesce(min(time_ms), 0), coalesce(max(time_ms), 0),
		count(DISTINCT user_id) FILTER (WHERE user_id <> ''),
		count(DISTINCT company_id) FILTER (WHERE company_id <> '')
		FROM events`+w,
		func(keys, types string) string {
			return `SELECT k, t, count(*) FROM
				(SELECT unnest(` + keys + `) AS k, unnest(` + types + `) AS t FROM events` + w + `)
				GROUP BY k, t ORDER BY k, t`
		}, args)
}

// PutProfiles implements storage.Store.
func (s *Store) PutProfiles(ctx context.Context, ps []storage.Profile) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO profiles (`+tables.ProfileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return unavailable(err)
	}
	defer stmt.Close()
	for _, p := range ps {
		if _, err := stmt.ExecContext(ctx, tables.ProfileValues(p)...); err != nil {
			return unavailable(err)
		}
	}
	return unavailable(tx.Commit())
}

// Profiles implements storage.Store.
func (s *Store) Profiles(ctx context.Context) ([]storage.Profile, error) {
	return tables.Read(ctx, s.reads, "profiles", tables.ProfilesQuery, nil, tables.ScanProfile)
}

// Query implements storage.Store.
func (s *Store) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	return tables.Query(ctx, s.reads, query, args...)
}

// ScanEvents implements storage.Store.
func (s *Store) ScanEvents(ctx context.Context, f storage.EventFilter, fn func(*storage.Event) error) error {
	w, args := f.Where(false)
	return tables.Each(ctx, s.reads, "read events", `SELECT `+tables.EventColumns+` FROM events`+w+` ORDER BY time_ms, id`, args,
		tables.ScanEvent[[]any], func(e storage.Event) error { return fn(&e) })
}
