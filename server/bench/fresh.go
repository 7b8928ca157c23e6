package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
)

// openFresh opens an empty store of the kind dsn names, so each phase of a
// run (and each run) starts from nothing and deduplication never kicks in:
// an in-memory or temporary DuckDB file, or a new ClickHouse database named
// after the given one with a _bench_<phase>_<time> suffix (left in place for
// inspection; drop it when done).
func openFresh(ctx context.Context, dsn, phase string) (storage.Store, error) {
	switch {
	case dsn == "duckdb://" || dsn == "":
		return backends.Open(ctx, "duckdb://")
	case strings.HasPrefix(dsn, "duckdb://"):
		dir := filepath.Dir(strings.TrimPrefix(dsn, "duckdb://"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		f, err := os.CreateTemp(dir, "bench-"+phase+"-*.duckdb")
		if err != nil {
			return nil, err
		}
		f.Close()
		os.Remove(f.Name()) // DuckDB creates it; we only wanted a unique name
		return backends.Open(ctx, "duckdb://"+f.Name())
	case strings.HasPrefix(dsn, "clickhouse://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, err
		}
		db := strings.Trim(u.Path, "/")
		if db == "" {
			db = "meterd"
		}
		u.Path = fmt.Sprintf("/%s_bench_%s_%d", db, phase, time.Now().Unix())
		return backends.Open(ctx, u.String())
	}
	return backends.Open(ctx, dsn)
}
