package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/storage"
)

// PutProfiles implements storage.Store: one INSERT block.
func (s *Store) PutProfiles(ctx context.Context, ps []storage.Profile) error {
	if len(ps) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx,
		`INSERT INTO profiles (kind, id, company_id, metadata, modified_ms, received_ms, raw)`)
	if err != nil {
		return fmt.Errorf("put profiles: %w", unavailable(err))
	}
	for _, p := range ps {
		if err := batch.Append(p.Kind, p.ID, p.CompanyID, orEmptyObject(p.Metadata),
			p.ModifiedAt.UnixMilli(), p.ReceivedAt.UnixMilli(), p.Raw); err != nil {
			batch.Abort()
			return fmt.Errorf("put profiles: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("put profiles: %w", unavailable(err))
	}
	return nil
}

// Profiles implements storage.Store.
func (s *Store) Profiles(ctx context.Context) ([]storage.Profile, error) {
	rows, err := s.conn.Query(ctx, `SELECT kind, id, company_id, metadata, modified_ms, received_ms, raw
		FROM profiles ORDER BY modified_ms, received_ms`)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", unavailable(err))
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
	return out, unavailable(rows.Err())
}
