package clickhouse

import (
	"context"
	"fmt"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// PutProfiles implements storage.Store: one INSERT block.
func (s *Store) PutProfiles(ctx context.Context, ps []storage.Profile) error {
	if len(ps) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO profiles (`+tables.ProfileColumns+`)`)
	if err != nil {
		return fmt.Errorf("put profiles: %w", unavailable(err))
	}
	for _, p := range ps {
		if err := batch.Append(tables.ProfileValues(p)...); err != nil {
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
	return tables.Read(ctx, s.reads, "profiles", tables.ProfilesQuery, nil, tables.ScanProfile)
}
