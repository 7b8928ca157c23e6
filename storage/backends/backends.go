// Package backends opens a storage.Store from a DSN, choosing the backend by
// its scheme. It lives apart from storage so that storage itself does not
// import its implementations.
package backends

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/clickhouse"
	"github.com/meterd/meterd/storage/duckdb"
)

// Open opens the store a DSN names:
//
//	duckdb://data/meterd.duckdb    a DuckDB file (relative path)
//	duckdb:///var/lib/meterd.db    a DuckDB file (absolute path)
//	duckdb://                      an in-memory DuckDB (tests, demos)
//	clickhouse://host:9000/db      ClickHouse over the native protocol
func Open(ctx context.Context, dsn string) (storage.Store, error) {
	return OpenWith(ctx, dsn, storage.Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, o storage.Options) (storage.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "duckdb://"):
		return duckdb.OpenWith(ctx, strings.TrimPrefix(dsn, "duckdb://"), o)
	case strings.HasPrefix(dsn, "clickhouse://"):
		return clickhouse.OpenWith(ctx, dsn, o)
	}
	return nil, fmt.Errorf("store %q: %w", Redact(dsn), Check(dsn))
}

// Check says whether a DSN names a backend Open knows, without opening it.
func Check(dsn string) error {
	if strings.HasPrefix(dsn, "duckdb://") || strings.HasPrefix(dsn, "clickhouse://") {
		return nil
	}
	return errors.New("unknown scheme (want duckdb://PATH or clickhouse://HOST:PORT/DB)")
}

// Redact hides a password in a DSN for logs and messages.
func Redact(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	creds := dsn[scheme+3 : at]
	if i := strings.Index(creds, ":"); i >= 0 {
		return dsn[:scheme+3] + creds[:i] + ":***" + dsn[at:]
	}
	return dsn
}
