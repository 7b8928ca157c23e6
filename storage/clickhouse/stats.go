package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/storage"
)

// Stats implements storage.Store, over live rows (identity.go). Distinct
// users and companies leave out anonymous calls (empty id).
func (s *Store) Stats(ctx context.Context, f storage.EventFilter) (storage.Stats, error) {
	w, args := f.Where(false)
	var st storage.Stats
	var first, last int64
	err := s.conn.QueryRow(ctx, `SELECT toInt64(count()), min(time_ms), max(time_ms),
		toInt64(uniqExactIf(user_id, user_id != '')), toInt64(uniqExactIf(company_id, company_id != ''))
		FROM events`+s.liveWhere(w), args...).Scan(&st.Count, &first, &last, &st.DistinctUsers, &st.DistinctCompanies)
	if err != nil {
		return st, fmt.Errorf("stats: %w", unavailable(err))
	}
	if st.Count > 0 {
		st.First, st.Last = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
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
	rows, err := s.conn.Query(ctx, `SELECT k, t, toInt64(count()) FROM events
		ARRAY JOIN `+keys+` AS k, `+types+` AS t`+s.liveWhere(w)+`
		GROUP BY k, t ORDER BY k, t`, args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", unavailable(err))
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
	return out, unavailable(rows.Err())
}
