// Package tables is what storage/duckdb and storage/clickhouse share about
// the tables they both keep: the columns a read selects, how a row becomes
// a storage type and a storage type a row, and how a read runs and reports
// its errors. Only what each dialect writes differently (its SQL, its
// insert path, its error classification) stays in the store.
package tables

import (
	"context"
	"errors"
	"fmt"

	"github.com/meterd/meterd/storage"
)

// Row is one row of a result: database/sql's *sql.Rows and clickhouse-go's
// driver.Rows both are.
type Row interface {
	Scan(dest ...any) error
}

// DB is a store's connection as the shared reads use it.
type DB struct {
	// Query runs a query on the driver; its errors are not marked yet.
	Query func(ctx context.Context, query string, args ...any) (storage.Rows, error)
	// Unavailable marks the driver's errors that mean the store cannot be
	// used now with storage.ErrUnavailable (MarkUnavailable).
	Unavailable func(error) error
}

// Each runs query, reads each row with scan and hands it to fn, streaming.
// A failed query or result (rows.Err) is marked by db.Unavailable and, like
// a failed scan, named by what; fn's own error is returned as it is.
func Each[T any](ctx context.Context, db DB, what, query string, args []any,
	scan func(Row) (T, error), fn func(T) error) error {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, db.Unavailable(err))
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, db.Unavailable(err))
	}
	return nil
}

// Read is Each gathering every row.
func Read[T any](ctx context.Context, db DB, what, query string, args []any, scan func(Row) (T, error)) ([]T, error) {
	var out []T
	err := Each(ctx, db, what, query, args, scan, func(v T) error { out = append(out, v); return nil })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Query is the stores' storage.Store.Query: the rows of query, its error
// marked.
func Query(ctx context.Context, db DB, query string, args ...any) (storage.Rows, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, db.Unavailable(err)
	}
	return rows, nil
}

// MarkUnavailable wraps err with storage.ErrUnavailable when transient
// says the store cannot be used now (a retry later may succeed), keeping
// err's own chain. A canceled or timed-out context is never marked: the
// caller gave up, whatever error the driver joined to it.
func MarkUnavailable(err error, transient func(error) bool) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || !transient(err) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// ScanOne reads a row of one column.
func ScanOne[T any](r Row) (T, error) {
	var v T
	return v, r.Scan(&v)
}
