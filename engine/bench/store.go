package bench

import (
	"context"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
)

// OpenFresh opens an empty store of the kind dsn names (see
// backends.Fresh), and a cleanup that closes and removes it. The
// description names what was opened.
func OpenFresh(ctx context.Context, dsn string) (st storage.Store, description string, cleanup func(), err error) {
	fresh, desc, remove, err := backends.Fresh(dsn, "backtest")
	if err != nil {
		return nil, "", nil, err
	}
	if st, err = backends.Open(ctx, fresh); err != nil {
		remove()
		return nil, "", nil, err
	}
	return st, desc, func() { st.Close(); remove() }, nil
}
