package ingest

import (
	"unsafe"

	"github.com/meterd/meterd/storage"
)

// Approximate costs of Go values, for EventBytes.
const (
	stringHeader = int64(unsafe.Sizeof(""))
	mapOverhead  = 64 // a map's header and first group
	mapEntry     = 48 // a string → string slot, its control byte and load factor
)

// EventBytes estimates the memory an event holds while it waits for the
// group commit beyond the strings that point into the request body's
// decoded copy (which the server counts per request, with as much again
// for strings decoding copies out of it: escapes, lower-cased header
// names): the struct, the header maps and the header columns the server
// adds (storage.HeaderCols), the flattened metadata's columns, key paths
// and the values flattening builds (arrays re-encoded, object digests), a
// content id. It errs high. The traits are counted apart (AttrsBytes):
// the store copies them into each row.
func EventBytes(e *storage.Event) int64 {
	n := int64(unsafe.Sizeof(*e)) + int64(unsafe.Sizeof(storage.Flat{})) + int64(unsafe.Sizeof(storage.HeaderCols{}))
	if e.ID != e.ExternalID { // built: a content id, a CloudEvents hash
		n += int64(len(e.ID))
	}
	n += int64(len(e.Verb) + len(e.Route)) // upper-cased, unescaped: maybe copies
	for _, h := range []map[string]string{e.RequestHeaders, e.ResponseHeaders} {
		if h == nil {
			continue
		}
		n += mapOverhead
		for k := range h {
			// The entry, its lower-cased name, its two places in HeaderCols.
			n += mapEntry + int64(len(k)) + 2*stringHeader
		}
	}
	if e.Flat != nil {
		a := e.Flat.Meta
		n += columnBytes(a)
		for i := range a.Keys {
			n += int64(len(a.Keys[i]))
			if t := a.Types[i]; t == storage.TypeArray || t == storage.TypeObject {
				n += int64(len(a.Strs[i]))
			}
		}
	}
	return n
}

// AttrsBytes estimates the memory of flattened attributes: the four
// columns (by capacity) and all their strings.
func AttrsBytes(a storage.Attrs) int64 {
	n := columnBytes(a)
	for i := range a.Keys {
		n += int64(len(a.Keys[i]))
	}
	for i := range a.Strs {
		n += int64(len(a.Strs[i]))
	}
	return n
}

// columnBytes is the four columns of flattened attributes, by capacity.
func columnBytes(a storage.Attrs) int64 {
	return int64(cap(a.Keys)+cap(a.Strs))*stringHeader + int64(cap(a.Types)) + int64(cap(a.Nums))*8
}
