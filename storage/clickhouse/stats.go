package clickhouse

import (
	"context"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// Stats implements storage.Store, over live rows (identity.go).
func (s *Store) Stats(ctx context.Context, f storage.EventFilter) (storage.Stats, error) {
	w, args := f.Where(false)
	return tables.Stats(ctx, s.reads, `SELECT toInt64(count()), min(time_ms), max(time_ms),
		toInt64(uniqExactIf(user_id, user_id != '')), toInt64(uniqExactIf(company_id, company_id != ''))
		FROM events`+s.liveWhere(w),
		func(keys, types string) string {
			return `SELECT k, t, toInt64(count()) FROM events
				ARRAY JOIN ` + keys + ` AS k, ` + types + ` AS t` + s.liveWhere(w) + `
				GROUP BY k, t ORDER BY k, t`
		}, args)
}
