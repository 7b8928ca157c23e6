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
// group commit: the struct, its strings, its header maps and the header
// columns the server adds (storage.HeaderCols), its flattened metadata.
// Strings are counted even when they share the request body's copy, which
// the server counts too: the estimate errs high, never low. The traits'
// flattened form is shared with the profile cache and not counted here.
func EventBytes(e *storage.Event) int64 {
	n := int64(unsafe.Sizeof(*e)) + int64(unsafe.Sizeof(storage.Flat{})) + int64(unsafe.Sizeof(storage.HeaderCols{}))
	for _, s := range []string{e.ID, e.ExternalID, e.Type, e.Source, e.Subject, e.Verb, e.URI, e.Route, e.Host,
		e.IP, e.APIVersion, e.RequestBody, e.ResponseBody, e.UserID, e.CompanyID, e.SessionToken,
		e.SubscriptionID, e.Direction, e.Metadata} {
		n += int64(len(s))
	}
	for _, h := range []map[string]string{e.RequestHeaders, e.ResponseHeaders} {
		if h == nil {
			continue
		}
		n += mapOverhead
		for k, v := range h {
			// The entry, its strings, and its two places in HeaderCols.
			n += mapEntry + int64(len(k)+len(v)) + 2*stringHeader
		}
	}
	if e.Flat != nil {
		n += AttrsBytes(e.Flat.Meta)
	}
	return n
}

// AttrsBytes estimates the memory of flattened attributes: the four
// columns (by capacity) and their strings.
func AttrsBytes(a storage.Attrs) int64 {
	n := int64(cap(a.Keys)+cap(a.Strs))*stringHeader + int64(cap(a.Types)) + int64(cap(a.Nums))*8
	for i := range a.Keys {
		n += int64(len(a.Keys[i]))
	}
	for i := range a.Strs {
		n += int64(len(a.Strs[i]))
	}
	return n
}
