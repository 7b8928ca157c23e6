// Package clickhouse is meterd's production event store: ClickHouse over
// the native protocol (clickhouse-go/v2). It implements storage.Store and
// works with ClickHouse 18.16 (Debian's package) as well as current releases:
// the schema and every query use only types and functions 18.16 has.
//
// Version notes (18.16 vs current):
//   - 18.16 has no server-side query parameters ({name:Type}): clickhouse-go
//     binds "?" arguments on the client, escaping them into the query text.
//     Id lists (dedup lookup, listing) travel as an external table instead,
//     so they are never part of the SQL text and max_query_size never bites.
//   - 18.16 has no read-in-order optimisation: ORDER BY time_ms scans the
//     filtered range. Listing reads two columns first (see ListEvents).
//   - Batch inserts name their columns (INSERT INTO events (a, b, ...)).
//   - Every INSERT goes through PrepareBatch: an Exec of INSERT ... VALUES
//     hangs on 18.16 (see insertRow).
//   - Nothing here needs a server-version gate yet.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sync"
	"syscall"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// Store is a ClickHouse-backed storage.Store.
type Store struct {
	conn     driver.Conn
	reads    tables.DB // conn, for storage/tables
	database string
	cluster  string // the cluster's name, "" for one server (cluster.go)
	opts     storage.Options
	appendMu sync.Mutex // serialises appendUnique's check and insert
	// afterLookup and afterWrite, when set (tests), run between an
	// insert's duplicate lookup and its write, and between its write and
	// its settle: where two processes race.
	afterLookup, afterWrite func()
	stopSweep               func()
	margin                  time.Duration // see changeMargin
}

var _ storage.Store = (*Store)(nil)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Open connects to the server a DSN names, creates its database when
// missing and applies pending migrations. DSN:
//
//	clickhouse://[user[:password]@]host:9000[,host2:9000]/database[?option=value]
//
// Options are clickhouse-go's (dial_timeout, compress, max_open_conns, ...),
// and cluster=NAME for a cluster of shards (cluster.go). Without a database
// the store uses "default".
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWith(ctx, dsn, storage.Options{})
}

// OpenWith is Open with options. The store settles identities that raced
// into storage once a minute (see sweep) until it is closed.
func OpenWith(ctx context.Context, dsn string, o storage.Options) (*Store, error) {
	dsn, cluster, err := splitCluster(dsn)
	if err != nil {
		return nil, err
	}
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("clickhouse dsn: %w", err)
	}
	db := opts.Auth.Database
	if db == "" {
		db = "default"
	}
	if !identifier.MatchString(db) {
		return nil, fmt.Errorf("clickhouse dsn: database name %q: want letters, digits and _", db)
	}
	if cluster != "" {
		if opts.Settings == nil {
			opts.Settings = ch.Settings{}
		}
		opts.Settings["insert_distributed_sync"] = 1 // acknowledged means on its shard
		var replicas int
		if replicas, err = createCluster(ctx, *opts, cluster, db); err != nil {
			return nil, err
		}
		if _, set := opts.Settings["insert_quorum"]; !set && replicas > 1 {
			// Acknowledged means on every replica of its shard, so a retry
			// read from any replica finds it (cluster.go).
			opts.Settings["insert_quorum"] = replicas
		}
	} else if err := createDatabase(ctx, *opts, db); err != nil {
		return nil, err
	}
	opts.Auth.Database = db
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", opts.Addr, err)
	}
	s := &Store{conn: conn, database: db, cluster: cluster, opts: o, margin: changeMargin}
	s.reads = tables.DB{Unavailable: unavailable, Query: func(ctx context.Context, query string, args ...any) (storage.Rows, error) {
		rows, err := conn.Query(ctx, query, args...)
		if err != nil {
			return nil, err // not a nil driver.Rows in a non-nil storage.Rows
		}
		return rows, nil
	}}
	if cluster == "" {
		if err := s.migrate(ctx); err != nil {
			conn.Close()
			return nil, err
		}
	}
	s.stopSweep = s.sweepEvery(time.Minute)
	return s, nil
}

// createDatabase connects without a database (the user's default) so that
// a missing one can be created before the store's connection selects it.
func createDatabase(ctx context.Context, opts ch.Options, db string) error {
	opts.Auth.Database = ""
	conn, err := ch.Open(&opts)
	if err != nil {
		return fmt.Errorf("clickhouse %s: %w", opts.Addr, err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(db)); err != nil {
		return fmt.Errorf("clickhouse %s: create database %s: %w", opts.Addr, db, unavailable(err))
	}
	return nil
}

// quote backquotes an identifier already checked against identifier.
func quote(name string) string { return "`" + name + "`" }

// Backend implements storage.Store.
func (s *Store) Backend() string { return "clickhouse" }

// Conn is the driver connection (a pool), for the engine's backtest SQL.
func (s *Store) Conn() driver.Conn { return s.conn }

// Database is the database the store's tables live in.
func (s *Store) Database() string { return s.database }

// Close implements storage.Store.
func (s *Store) Close() error {
	s.stopSweep()
	return s.conn.Close()
}

// ServerVersion reports the server's version, for gating newer features.
func (s *Store) ServerVersion() (*driver.ServerVersion, error) { return s.conn.ServerVersion() }

func (s *Store) migrate(ctx context.Context) error {
	if err := s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations
		(version UInt32, applied_ms Int64) ENGINE = MergeTree ORDER BY version`); err != nil {
		return fmt.Errorf("migrations table: %w", unavailable(err))
	}
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	for v := have + 1; v <= len(migrations); v++ {
		// ClickHouse has no DDL transactions: every step is idempotent (IF
		// NOT EXISTS), so a migration cut short is simply run again.
		for _, stmt := range migrations[v-1].stmts {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d: %w", v, unavailable(err))
			}
		}
		if then := migrations[v-1].then; then != nil {
			if err := then(ctx, s); err != nil {
				return fmt.Errorf("migration %d: %w", v, unavailable(err))
			}
		}
		if err := s.insertRow(ctx, `INSERT INTO schema_migrations (version, applied_ms)`,
			uint32(v), time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("migration %d: record: %w", v, unavailable(err))
		}
	}
	return nil
}

// insertRow inserts one row through a batch. Never Exec an INSERT with
// inline VALUES: ClickHouse 18.16 answers it like a batch INSERT, waiting
// for data blocks that Exec never sends, and both sides hang until the read
// timeout.
func (s *Store) insertRow(ctx context.Context, insert string, values ...any) error {
	batch, err := s.conn.PrepareBatch(ctx, insert)
	if err != nil {
		return unavailable(err)
	}
	if err := batch.Append(values...); err != nil {
		batch.Abort()
		return err
	}
	return unavailable(batch.Send())
}

// SchemaVersion implements storage.Store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v uint32
	if err := s.conn.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", unavailable(err))
	}
	return int(v), nil
}

// Server error codes that mean "try again later" rather than a bad request.
var retryable = map[int32]bool{
	159: true, // TIMEOUT_EXCEEDED
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	241: true, // MEMORY_LIMIT_EXCEEDED
	252: true, // TOO_MANY_PARTS
}

// unavailable marks errors that mean the server cannot be used now
// (connection failures, overload, the store closed) with
// storage.ErrUnavailable (tables.MarkUnavailable); a server
// exception about the query itself is returned as is.
func unavailable(err error) error {
	return tables.MarkUnavailable(err, func(err error) bool {
		var ex *ch.Exception
		var ne net.Error
		return errors.As(err, &ex) && retryable[ex.Code] ||
			errors.As(err, &ne) || // dial, read and write failures
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
			errors.Is(err, ch.ErrAcquireConnTimeout) ||
			errors.Is(err, ch.ErrConnectionClosed) // the store closed under the call
	})
}
