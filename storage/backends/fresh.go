package backends

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// Fresh names a new, empty store of the kind dsn names, for benchmarks
// that must start from nothing (so deduplication never kicks in):
//
//	"" or duckdb://             a new DuckDB file in a temporary directory
//	duckdb://PATH               a new DuckDB file at PATH (must not exist)
//	clickhouse://HOST:PORT/DB   a new database DB_bench_<label>_<time> (DB: meterd)
//
// cleanup removes it (the file, or drops the database); call it after
// closing the store. description names what was made, for reports.
func Fresh(dsn, label string) (fresh, description string, cleanup func(), err error) {
	switch {
	case dsn == "" || dsn == "duckdb://":
		dir, err := os.MkdirTemp("", "meterd-bench-")
		if err != nil {
			return "", "", nil, err
		}
		path := filepath.Join(dir, label+".duckdb")
		return "duckdb://" + path, "DuckDB file " + path + " (removed afterwards)", func() { os.RemoveAll(dir) }, nil
	case strings.HasPrefix(dsn, "duckdb://"):
		path := strings.TrimPrefix(dsn, "duckdb://")
		if _, err := os.Stat(path); err == nil {
			return "", "", nil, fmt.Errorf("%s exists: the benchmark loads its own events into a new file", path)
		}
		return dsn, "DuckDB file " + path + " (removed afterwards)", func() { os.Remove(path); os.Remove(path + ".wal") }, nil
	case strings.HasPrefix(dsn, "clickhouse://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", nil, err
		}
		db := strings.Trim(u.Path, "/")
		if db == "" {
			db = "meterd"
		}
		db = fmt.Sprintf("%s_bench_%s_%d", db, label, time.Now().UnixNano())
		u.Path = "/" + db
		return u.String(), "ClickHouse database " + db + " on " + Redact(u.Host) + " (dropped afterwards)", func() { dropDatabase(dsn, db) }, nil
	}
	return "", "", nil, fmt.Errorf("store %q: want duckdb://[PATH] or clickhouse://HOST:PORT[/DB]", Redact(dsn))
}

// dropDatabase drops db on the server dsn names (best effort: a benchmark
// database left behind is only disk).
func dropDatabase(dsn, db string) {
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		return
	}
	opts.Auth.Database = "default"
	conn, err := ch.Open(opts)
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
}
