package duckdb

import (
	"context"
	"database/sql"
	"time"

	"github.com/meterd/meterd/storage"
)

// ListEvents implements storage.Store.
func (s *Store) ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error) {
	w, args := f.Where(true)
	q := `SELECT ` + readColumns + ` FROM events` + w + ` ORDER BY time_ms DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []storage.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Stats implements storage.Store. Distinct users and companies leave out
// anonymous calls (empty id).
func (s *Store) Stats(ctx context.Context, f storage.EventFilter) (storage.Stats, error) {
	w, args := f.Where(false)
	var st storage.Stats
	var first, last sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT count(*), min(time_ms), max(time_ms),
		count(DISTINCT user_id) FILTER (WHERE user_id <> ''),
		count(DISTINCT company_id) FILTER (WHERE company_id <> '')
		FROM events`+w, args...).Scan(&st.Count, &first, &last, &st.DistinctUsers, &st.DistinctCompanies)
	if err != nil {
		return st, unavailable(err)
	}
	if st.Count > 0 {
		st.First, st.Last = time.UnixMilli(first.Int64).UTC(), time.UnixMilli(last.Int64).UTC()
	}
	if st.MetadataKeys, err = s.keyStats(ctx, "meta_keys", "meta_types", w, args); err != nil {
		return st, err
	}
	st.TraitKeys, err = s.keyStats(ctx, "trait_keys", "trait_types", w, args)
	return st, err
}

// keyStats counts, per key and JSON type, the events whose flattened
// keys/types array columns (meta_* or trait_*) hold them.
func (s *Store) keyStats(ctx context.Context, keys, types, w string, args []any) ([]storage.KeyStat, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT k, t, count(*) FROM
		(SELECT unnest(`+keys+`) AS k, unnest(`+types+`) AS t FROM events`+w+`)
		GROUP BY k, t ORDER BY k, t`, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []storage.KeyStat
	for rows.Next() {
		var ks storage.KeyStat
		var t uint8
		if err := rows.Scan(&ks.Key, &t, &ks.Count); err != nil {
			return nil, err
		}
		ks.Type = storage.TypeName(t)
		out = append(out, ks)
	}
	return out, rows.Err()
}

// PutProfiles implements storage.Store.
func (s *Store) PutProfiles(ctx context.Context, ps []storage.Profile) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return unavailable(err)
	}
	defer stmt.Close()
	for _, p := range ps {
		if _, err := stmt.ExecContext(ctx, p.Kind, p.ID, p.CompanyID, orEmptyObject(p.Metadata),
			p.ModifiedAt.UnixMilli(), p.ReceivedAt.UnixMilli(), p.Raw); err != nil {
			return unavailable(err)
		}
	}
	return unavailable(tx.Commit())
}

// Profiles implements storage.Store.
func (s *Store) Profiles(ctx context.Context) ([]storage.Profile, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, id, company_id, metadata, modified_ms, received_ms, raw
		FROM profiles ORDER BY modified_ms, received_ms`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []storage.Profile
	for rows.Next() {
		var p storage.Profile
		var mod, rec int64
		if err := rows.Scan(&p.Kind, &p.ID, &p.CompanyID, &p.Metadata, &mod, &rec, &p.Raw); err != nil {
			return nil, err
		}
		p.ModifiedAt, p.ReceivedAt = time.UnixMilli(mod).UTC(), time.UnixMilli(rec).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// Query implements storage.Store.
func (s *Store) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// ScanEvents implements storage.Store.
func (s *Store) ScanEvents(ctx context.Context, f storage.EventFilter, fn func(*storage.Event) error) error {
	w, args := f.Where(false)
	rows, err := s.db.QueryContext(ctx, `SELECT `+readColumns+` FROM events`+w+` ORDER BY time_ms, id`, args...)
	if err != nil {
		return unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}
