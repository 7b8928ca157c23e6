package bench

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// freshDSN names an empty store of the kind dsn names, so each phase of a
// run (and each run) starts from nothing and deduplication never kicks in:
// a new DuckDB file in a temporary directory (removed by cleanup), or a new
// ClickHouse database named after the given one with a _bench_<phase>_<time>
// suffix (left in place for inspection; drop it when done).
func freshDSN(dsn, phase string) (string, func(), error) {
	switch {
	case dsn == "" || strings.HasPrefix(dsn, "duckdb://"):
		dir, err := os.MkdirTemp("", "meterd-bench-")
		if err != nil {
			return "", nil, err
		}
		return "duckdb://" + filepath.Join(dir, phase+".duckdb"), func() { os.RemoveAll(dir) }, nil
	case strings.HasPrefix(dsn, "clickhouse://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", nil, err
		}
		db := strings.Trim(u.Path, "/")
		if db == "" {
			db = "meterd"
		}
		u.Path = fmt.Sprintf("/%s_bench_%s_%d", db, phase, time.Now().Unix())
		return u.String(), func() {}, nil
	}
	return "", nil, fmt.Errorf("bench: unknown store %q", dsn)
}
