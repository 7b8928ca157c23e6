package duckdb

import (
	"fmt"
	"reflect"
	"runtime"
	"unsafe"

	"github.com/marcboeker/go-duckdb/mapping"
)

// chunkAppender appends rows to a table by filling DuckDB data chunks
// directly in their vectors' memory.
//
// Why not go-duckdb's Appender: it sets every value through cgo (a string
// costs three calls: copy to C, assign, free), about 12 µs per event, which
// made it the ingestion ceiling. Here each column of a 2048-row chunk is
// gathered in Go slices and written in one pass: a few cgo calls per
// column per chunk, none per value.
//
// Strings longer than 12 bytes are copied into Go buffers that stay pinned
// (runtime.Pinner allows pinned pointers in C memory) until close, after
// the appender has copied the rows into the table.
type chunkAppender struct {
	app    mapping.Appender
	chunk  mapping.DataChunk
	cols   []column
	rows   int
	pinner runtime.Pinner
}

// column gathers one table column's values for the current chunk.
type column interface {
	// check says why the table's column type t is not the one this
	// column writes, or nil.
	check(t mapping.LogicalType) error
	// write copies the gathered values into vec and forgets them.
	write(vec mapping.Vector, p *runtime.Pinner)
}

var chunkCapacity = int(mapping.VectorSize())

// newChunkAppender opens an appender on table, whose columns must have
// the types of cols, in order.
func newChunkAppender(conn mapping.Connection, table string, cols []column) (*chunkAppender, error) {
	a := &chunkAppender{cols: cols}
	if mapping.AppenderCreateExt(conn, "", "", table, &a.app) == mapping.StateError {
		err := fmt.Errorf("appender on %s: %s", table, mapping.AppenderError(a.app))
		mapping.AppenderDestroy(&a.app)
		return nil, err
	}
	n := int(mapping.AppenderColumnCount(a.app))
	if n != len(cols) {
		mapping.AppenderDestroy(&a.app)
		return nil, fmt.Errorf("appender on %s: table has %d columns, meterd writes %d", table, n, len(cols))
	}
	types := make([]mapping.LogicalType, n)
	defer func() {
		for i := range types {
			mapping.DestroyLogicalType(&types[i])
		}
	}()
	for i := range types {
		types[i] = mapping.AppenderColumnType(a.app, mapping.IdxT(i))
		if err := cols[i].check(types[i]); err != nil {
			mapping.AppenderDestroy(&a.app)
			return nil, fmt.Errorf("appender on %s, column %d: %w", table, i, err)
		}
	}
	a.chunk = mapping.CreateDataChunk(types)
	return a, nil
}

// rowDone counts a row whose values were added to every column, and hands
// a full chunk to DuckDB.
func (a *chunkAppender) rowDone() error {
	a.rows++
	if a.rows == chunkCapacity {
		return a.appendChunk()
	}
	return nil
}

func (a *chunkAppender) appendChunk() error {
	if a.rows == 0 {
		return nil
	}
	for i, c := range a.cols {
		c.write(mapping.DataChunkGetVector(a.chunk, mapping.IdxT(i)), &a.pinner)
	}
	mapping.DataChunkSetSize(a.chunk, mapping.IdxT(a.rows))
	state := mapping.AppendDataChunk(a.app, a.chunk)
	mapping.DataChunkReset(a.chunk)
	a.rows = 0
	if state == mapping.StateError {
		return fmt.Errorf("append: %s", mapping.AppenderError(a.app))
	}
	return nil
}

// close appends what is left, flushes the rows into the table and frees
// everything; the appender is unusable afterwards, whatever the result.
func (a *chunkAppender) close() error {
	err := a.appendChunk()
	if err == nil && mapping.AppenderClose(a.app) == mapping.StateError {
		err = fmt.Errorf("flush: %s", mapping.AppenderError(a.app))
	}
	mapping.AppenderDestroy(&a.app)
	mapping.DestroyDataChunk(&a.chunk)
	a.pinner.Unpin()
	return err
}

// rawConn is go-duckdb's C connection behind a driver connection. go-duckdb
// does not export it; the field is looked up by name and type, so that a
// different layout after an upgrade is an error here, not a crash.
func rawConn(driverConn any) (mapping.Connection, error) {
	v := reflect.ValueOf(driverConn)
	if v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		f := v.Elem().FieldByName("conn")
		if f.IsValid() && f.Type() == reflect.TypeOf(mapping.Connection{}) {
			return *(*mapping.Connection)(unsafe.Pointer(f.UnsafeAddr())), nil
		}
	}
	return mapping.Connection{}, fmt.Errorf("duckdb: %T has no C connection where meterd expects one (go-duckdb upgraded?)", driverConn)
}

// checkType compares a table column's type with the one a column writes.
func checkType(t mapping.LogicalType, want mapping.Type) error {
	if got := mapping.GetTypeId(t); got != want {
		return fmt.Errorf("type %d, meterd writes %d", got, want)
	}
	return nil
}
