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
	"github.com/meterd/meterd/storage/clickhouse"
	"github.com/meterd/meterd/storage/duckdb"
)

// OpenFresh opens an empty store of the kind dsn names, and a cleanup
// that closes and removes it: "" or duckdb:// is a new DuckDB file in a
// temporary directory; duckdb://PATH a new DuckDB file at PATH (which
// must not exist); clickhouse://HOST:PORT/DB a new database
// DB_bench_backtest_<time> (DB defaults to meterd), dropped by cleanup.
// The description names what was opened.
func OpenFresh(ctx context.Context, dsn string) (st storage.Store, description string, cleanup func(), err error) {
	switch {
	case dsn == "" || dsn == "duckdb://":
		dir, err := os.MkdirTemp("", "meterd-bench-backtest-")
		if err != nil {
			return nil, "", nil, err
		}
		path := filepath.Join(dir, "events.duckdb")
		s, err := duckdb.Open(ctx, path)
		if err != nil {
			os.RemoveAll(dir)
			return nil, "", nil, err
		}
		return s, "DuckDB file " + path + " (removed afterwards)", func() { s.Close(); os.RemoveAll(dir) }, nil
	case strings.HasPrefix(dsn, "duckdb://"):
		path := strings.TrimPrefix(dsn, "duckdb://")
		if _, err := os.Stat(path); err == nil {
			return nil, "", nil, fmt.Errorf("%s exists: the benchmark loads its own events into a new file", path)
		}
		s, err := duckdb.Open(ctx, path)
		if err != nil {
			return nil, "", nil, err
		}
		return s, "DuckDB file " + path + " (removed afterwards)", func() {
			s.Close()
			os.Remove(path)
			os.Remove(path + ".wal")
		}, nil
	case strings.HasPrefix(dsn, "clickhouse://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, "", nil, err
		}
		db := strings.Trim(u.Path, "/")
		if db == "" {
			db = "meterd"
		}
		db = fmt.Sprintf("%s_bench_backtest_%d", db, time.Now().UnixNano())
		u.Path = "/" + db
		s, err := clickhouse.Open(ctx, u.String())
		if err != nil {
			return nil, "", nil, err
		}
		return s, "ClickHouse database " + db + " on " + backends.Redact(u.Host) + " (dropped afterwards)", func() {
			s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
			s.Close()
		}, nil
	}
	return nil, "", nil, fmt.Errorf("store %q: want duckdb://[PATH] or clickhouse://HOST:PORT[/DB]", backends.Redact(dsn))
}
