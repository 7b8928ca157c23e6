package server

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage/duckdb"
)

// withMetadata is event(txn, 0) with its metadata replaced.
func withMetadata(txn, meta string) string {
	return strings.Replace(event(txn, 0), `{"tokens":5}`, meta, 1)
}

// The case: 32 nested objects around a large string used to store
// the string once per level (655 MB in the DuckDB file for a 15 MB
// request). Stored is now about what was sent.
func TestNestedMetadataIsStoredOnce(t *testing.T) {
	h := newHarness(t, nil)
	const depth, size = 32, 4 << 20
	meta := strings.Repeat(`{"a":`, depth) + `"` + strings.Repeat("x", size) + `"` + strings.Repeat("}", depth)
	if a := h.ingest("/v1/events", withMetadata("nested", meta)); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var keys, strs, text int64
	err := h.store.Store.(*duckdb.Store).DB().QueryRowContext(context.Background(), `SELECT
		list_sum(list_transform(meta_keys, k -> strlen(k))), list_sum(list_transform(meta_strs, s -> strlen(s))), strlen(metadata)
		FROM events`).Scan(&keys, &strs, &text)
	if err != nil {
		t.Fatal(err)
	}
	if text != int64(len(meta)) || keys+strs > int64(len(meta))+4096 {
		t.Fatalf("stored %d bytes of metadata text and %d of flattened keys and values for %d bytes sent", text, keys+strs, len(meta))
	}
}

// Past the caps, the event is refused with its index and the field.
func TestMetadataCapsAnswer413(t *testing.T) {
	h := newHarness(t, nil)
	var many strings.Builder
	many.WriteString(`{"k":1`)
	for i := range wire.MaxObjectKeys {
		many.WriteString(`,"k` + strconv.Itoa(i) + `":1`)
	}
	many.WriteString(`}`)
	long := `{"` + strings.Repeat("k", 4096) + `":{` + strings.Repeat(`"a":1,`, 499) + `"a":1}}`
	cloud := func(data string) string {
		return `[{"specversion":"1.0","id":"1","source":"s","type":"t","data":{}},` +
			`{"specversion":"1.0","id":"2","source":"s","type":"t","data":` + data + `}]`
	}
	for _, c := range []struct {
		name, path, body string
		headers          []string
		field            string
		index            int
	}{
		{"too many keys", "/v1/events/batch", batch(event("a", 0), withMetadata("b", many.String())), nil, "metadata", 1},
		{"key paths too long", "/v1/events", withMetadata("b", long), nil, "metadata", -1},
		{"CloudEvents data", "/api/v1/events", cloud(many.String()), []string{"Content-Type", "application/cloudevents-batch+json"}, "data", 1},
		{"profile metadata", "/v1/users", `{"user_id":"u","metadata":` + many.String() + `}`, nil, "metadata", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, h.ingest(c.path, c.body, c.headers...), 413, wire.CodeMetadataTooLarge, c.field, c.index)
		})
	}
	if n := h.count(); n != 0 {
		t.Fatalf("%d events stored from refused requests", n)
	}
}
