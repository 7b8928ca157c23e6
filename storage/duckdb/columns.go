package duckdb

import (
	"runtime"
	"unsafe"

	"github.com/marcboeker/go-duckdb/mapping"
)

// The column kinds chunkAppender writes. Each gathers a chunk's values in
// a Go slice and copies them into the vector in write, in the layout of
// DuckDB's C API (duckdb.h): fixed-width values as they are, strings as
// duckdb_string_t, lists as duckdb_list_entry plus a child vector.

// strCol is a VARCHAR column.
type strCol struct{ v []string }

func (c *strCol) add(s string)                      { c.v = append(c.v, s) }
func (c *strCol) addAll(s []string)                 { c.v = append(c.v, s...) }
func (c *strCol) count() int                        { return len(c.v) }
func (c *strCol) check(t mapping.LogicalType) error { return checkType(t, mapping.TypeVarchar) }

func (c *strCol) write(vec mapping.Vector, p *runtime.Pinner) {
	writeStrings(vec, c.v, p)
	clear(c.v) // drop references to the events' strings
	c.v = c.v[:0]
}

// writeStrings fills a VARCHAR vector. A duckdb_string_t is 16 bytes: the
// length (uint32), then either the string itself when it fits in 12 bytes
// (zero-padded: DuckDB compares all 16), or its first 4 bytes and a
// pointer to the whole, here into one pinned buffer per call.
func writeStrings(vec mapping.Vector, v []string, p *runtime.Pinner) {
	if len(v) == 0 {
		return
	}
	long := 0
	for _, s := range v {
		if len(s) > 12 {
			long += len(s)
		}
	}
	var buf []byte
	if long > 0 {
		buf = make([]byte, 0, long) // never grows: the pointers stay valid
		p.Pin(unsafe.SliceData(buf))
	}
	dst := unsafe.Slice((*[16]byte)(mapping.VectorGetData(vec)), len(v))
	for i, s := range v {
		d := &dst[i]
		*d = [16]byte{}
		*(*uint32)(unsafe.Pointer(d)) = uint32(len(s))
		if len(s) <= 12 {
			copy(d[4:], s)
			continue
		}
		copy(d[4:8], s)
		off := len(buf)
		buf = append(buf, s...)
		*(*uintptr)(unsafe.Pointer(&d[8])) = uintptr(unsafe.Pointer(&buf[off]))
	}
}

// fixed are the Go types whose memory layout is DuckDB's for typ.
type fixed interface {
	~bool | ~uint8 | ~int32 | ~int64 | ~uint64 | ~float64
}

// fixedCol is a fixed-width column: BOOLEAN (bool), UTINYINT (uint8),
// INTEGER or DATE (int32, days since 1970), BIGINT (int64), UBIGINT
// (uint64), DOUBLE.
type fixedCol[T fixed] struct {
	typ mapping.Type
	v   []T
}

func (c *fixedCol[T]) add(x T)                           { c.v = append(c.v, x) }
func (c *fixedCol[T]) addAll(x []T)                      { c.v = append(c.v, x...) }
func (c *fixedCol[T]) count() int                        { return len(c.v) }
func (c *fixedCol[T]) check(t mapping.LogicalType) error { return checkType(t, c.typ) }

func (c *fixedCol[T]) write(vec mapping.Vector, _ *runtime.Pinner) {
	if len(c.v) > 0 {
		copy(unsafe.Slice((*T)(mapping.VectorGetData(vec)), len(c.v)), c.v)
	}
	c.v = c.v[:0]
}

// listCol is a LIST column whose elements child gathers.
type listCol[T any, C listChild[T]] struct {
	child C
	lens  []uint64
}

type listChild[T any] interface {
	column
	addAll([]T)
	count() int
}

func (c *listCol[T, C]) add(v []T) {
	c.child.addAll(v)
	c.lens = append(c.lens, uint64(len(v)))
}

func (c *listCol[T, C]) check(t mapping.LogicalType) error {
	if err := checkType(t, mapping.TypeList); err != nil {
		return err
	}
	elem := mapping.ListTypeChildType(t)
	defer mapping.DestroyLogicalType(&elem)
	return c.child.check(elem)
}

// listEntry is duckdb_list_entry.
type listEntry struct{ offset, length uint64 }

func (c *listCol[T, C]) write(vec mapping.Vector, p *runtime.Pinner) {
	total := mapping.IdxT(c.child.count())
	mapping.ListVectorReserve(vec, total)
	mapping.ListVectorSetSize(vec, total)
	if len(c.lens) > 0 {
		entries := unsafe.Slice((*listEntry)(mapping.VectorGetData(vec)), len(c.lens))
		var off uint64
		for i, n := range c.lens {
			entries[i] = listEntry{off, n}
			off += n
		}
	}
	c.child.write(mapping.ListVectorGetChild(vec), p)
	c.lens = c.lens[:0]
}

func strList() *listCol[string, *strCol] { return &listCol[string, *strCol]{child: &strCol{}} }

func fixedList[T fixed](typ mapping.Type) *listCol[T, *fixedCol[T]] {
	return &listCol[T, *fixedCol[T]]{child: &fixedCol[T]{typ: typ}}
}
