package wire

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/storage"
)

var shapeSeeds = []string{
	`{"request":`, `xyz`, `not json`, `[{"request":{}},{"x":`, `{"user_id":"u"} x`, `"an event"`,
	`[{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET"}}]`, `{"specversion":"1.0","id":"1"`,
}

// Every decoder answers invalid_json exactly when the body is not JSON,
// whatever else is wrong with it.
func FuzzInvalidJSONMeansNotJSON(f *testing.F) {
	for _, s := range append(jsonSeeds, shapeSeeds...) {
		f.Add([]byte(s))
	}
	l := Limits{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), MaxAge: time.Hour, MaxSkew: time.Hour, MaxBatch: 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) || len(bytes.TrimSpace(data)) == 0 {
			return
		}
		decoders := map[string]func() *fault.Error{
			"moesif":           func() *fault.Error { _, err := DecodeMoesifEvents(data, l); return err },
			"profiles":         func() *fault.Error { _, err := DecodeProfiles(data, storage.KindUser, l); return err },
			"cloudevent":       func() *fault.Error { _, err := DecodeCloudEvents(data, StructuredEvent, l); return err },
			"cloudevent batch": func() *fault.Error { _, err := DecodeCloudEvents(data, EventBatch, l); return err },
		}
		for name, decode := range decoders {
			err := decode()
			if got, want := err != nil && err.Code == CodeInvalidJSON, !json.Valid(data); got != want {
				t.Errorf("%s %q: %v; json.Valid says %v", name, data, err, !want)
			}
		}
	})
}
