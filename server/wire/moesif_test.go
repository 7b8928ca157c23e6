package wire

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// Decoding what EncodeMoesif wrote gives the event back, id included.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	events := eventgen.Generate(5, 500, now.Add(-time.Hour), now)
	body := []byte{'['}
	for i, e := range events {
		b, err := EncodeMoesif(e)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	body = append(body, ']')
	got, werr := DecodeMoesifEvents(body, Limits{Now: now, MaxAge: time.Hour * 2, MaxSkew: time.Hour, MaxBatch: 1000})
	if werr != nil {
		t.Fatal(werr)
	}
	for i := range events {
		want := events[i]
		want.ReceivedAt = now
		want.UserTraits, want.CompanyTraits = "", "" // stamped by the server, not the wire
		if want.RequestHeaders == nil {
			want.RequestHeaders = Headers{}
		}
		g := got[i]
		if !reflect.DeepEqual(map[string]string(g.RequestHeaders), map[string]string(want.RequestHeaders)) ||
			!reflect.DeepEqual(map[string]string(g.ResponseHeaders), map[string]string(want.ResponseHeaders)) {
			t.Fatalf("event %d headers differ", i)
		}
		g.RequestHeaders, g.ResponseHeaders, want.RequestHeaders, want.ResponseHeaders = nil, nil, nil, nil
		if flat, _ := storage.FlattenJSON(want.Metadata); g.Flat == nil || !reflect.DeepEqual(g.Flat.Meta, flat) {
			t.Fatalf("event %d: decoded Flat.Meta %+v, want %+v", i, g.Flat, flat)
		}
		g.Flat = nil
		if !reflect.DeepEqual(g, want) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, g, want)
		}
	}
}

func TestContentIDIgnoresSpelling(t *testing.T) {
	l := Limits{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), MaxAge: time.Hour, MaxSkew: time.Hour, MaxBatch: 10}
	id := func(body string) string {
		t.Helper()
		evs, err := DecodeMoesifEvents([]byte(body), l)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return evs[0].ID
	}
	a := id(`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"get","body":{"q":"x","n":[1,2]}},"metadata":{"x":1,"y":"z"}}`)
	same := []string{
		// other key order, spacing, escaping, number and time spelling
		`{"metadata":{"y":"z","x":1.0},"request":{"verb":"GET","uri":"/a","time":"2026-11-25T11:00:00.000+00:00","body":{"n":[1,2.0],"q":"\u0078"}}}`,
		"{ \"request\" : { \"time\" : 1795604400000 , \"uri\":\"/a\",\"verb\":\"GET\",\"body\":{\"q\":\"x\",\"n\":[1e0, 2]} },\n\"metadata\":{\"x\":1,\"y\":\"z\"}}",
		// unknown fields are not part of the event
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[1,2]}},"metadata":{"x":1,"y":"z"},"tags":"t"}`,
		// a call no rule blocked, said explicitly
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[1,2]}},"metadata":{"x":1,"y":"z"},"blocked_by":""}`,
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[1,2]}},"metadata":{"x":1,"y":"z"},"blocked_by":null}`,
	}
	for _, b := range same {
		if got := id(b); got != a {
			t.Errorf("same event, other id: %s\n%s", b, got)
		}
	}
	// The id of a call is stable across versions: a retry sent after an
	// upgrade is still a duplicate (this one was derived before blocked_by).
	if a != "mh_201ea26f7d6aaaab20c5458bdb7a1998" {
		t.Fatalf("id %q changed", a)
	}
	different := []string{
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[1,2]}},"metadata":{"x":2,"y":"z"}}`,
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"y","n":[1,2]}},"metadata":{"x":1,"y":"z"}}`,
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[2,1]}},"metadata":{"x":1,"y":"z"}}`,
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[1,2]}},"metadata":{"x":1,"y":"z"},"user_id":"u"}`,
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[1,2]}},"response":{"status":200},"metadata":{"x":1,"y":"z"}}`,
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[1,2]}},"metadata":{"x":1,"y":"z"},"blocked_by":"r1"}`,
		`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":{"q":"x","n":[1,2]}},"metadata":{"x":1,"y":"z"},"blocked_by":"r2"}`,
	}
	seen := map[string]string{a: "first"}
	for _, b := range different {
		got := id(b)
		if prev, ok := seen[got]; ok {
			t.Errorf("different events share id %s:\n%s\n%s", got, b, prev)
		}
		seen[got] = b
	}
}

// Typed fields are checked in place: the error names the JSON path and
// the element.
func TestFieldErrors(t *testing.T) {
	l := Limits{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), MaxAge: time.Hour, MaxSkew: time.Hour, MaxBatch: 10}
	ok := `{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET"}}`
	cases := []struct {
		body, code, field string
		index             int // -1: none
		inMessage         string
	}{
		{`[` + ok + `,{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","headers":{"X-A":{"b":1}}}}]`, CodeInvalidType, "request.headers.x-a", 1, "must be a string, got an object"},
		{`[` + ok + `,{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","headers":[]}}]`, CodeInvalidType, "request.headers", 1, "must be an object, got an array"},
		{`[{"request":"GET /"}]`, CodeInvalidType, "request", 0, "must be an object, got a string"},
		{`[{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET"},"response":{"status":200.5}}]`, CodeInvalidType, "response.status", 0, "integer"},
		{`[{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET"},"weight":"2"}]`, CodeInvalidType, "weight", 0, "must be an integer, got a string"},
		{`[{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET"},"user_id":42}]`, CodeInvalidType, "user_id", 0, "must be a string, got a number"},
		{`[` + ok + `,{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET"},"blocked_by":42}]`, CodeInvalidType, "blocked_by", 1, "blocked_by must be a string, got a number"},
		{`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET"},"blocked_by":{"_id":"r1"}}`, CodeInvalidType, "blocked_by", -1, "blocked_by must be a string, got an object"},
		{`[{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET","body":"@@","transfer_encoding":"base64"}}]`, CodeInvalidValue, "request.body", 0, "base64"},
		{"[" + ok + ",\n" + ok + " " + ok + "]", CodeInvalidJSON, "", -1, "line 2, column 69"},
		{"[" + ok + ",\n" + `{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET",}}` + "]", CodeInvalidJSON, "", 1, "line 2, column 67"},
		{`[` + ok + `,"x"]`, CodeInvalidType, "", 1, "expected a JSON object, got a string"},
		{ok + ` x`, CodeInvalidJSON, "", -1, "unexpected data after the JSON value"},
	}
	for _, c := range cases {
		_, err := DecodeMoesifEvents([]byte(c.body), l)
		if err == nil {
			t.Errorf("%s: accepted", c.body)
			continue
		}
		idx := -1
		if err.Index != nil {
			idx = *err.Index
		}
		if err.Code != c.code || err.Field != c.field || idx != c.index || !strings.Contains(err.Message, c.inMessage) {
			t.Errorf("%s:\n got %s field %q index %d: %s\nwant %s field %q index %d, message with %q",
				c.body, err.Code, err.Field, idx, err.Message, c.code, c.field, c.index, c.inMessage)
		}
	}
}

// Headers may carry numbers, booleans, null and arrays; sizes come from
// content_length, then Content-Length, then the body.
func TestHeadersAndSizes(t *testing.T) {
	l := Limits{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), MaxAge: time.Hour, MaxSkew: time.Hour, MaxBatch: 10}
	evs, err := DecodeMoesifEvents([]byte(`[
		{"request":{"time":"2026-11-25T11:00:00","uri":"http://h.example/p?q","verb":"post","body":"aGVsbG8=","transfer_encoding":"base64",
		  "headers":{"X-N":5,"X-B":true,"X-Null":null,"Accept":["a","b"],"Host":"ignored.example"}},
		 "response":{"time":1795604400250,"status":201,"headers":{"Content-Length":"77"},"body":{"ok":true}}},
		{"request":{"time":"2026-11-25T11:00:00Z","uri":"/p","verb":"GET","headers":{"host":"h2.example"},"body":"h\u00e9"},
		 "response":{"time":"2026-11-25T11:00:00Z","status":200,"body":{"ok":true}}},
		{"request":{"time":"2026-11-25T11:00:00Z","uri":"/p","verb":"GET","content_length":9,"headers":{"content-length":"4"}}}
	]`), l)
	if err != nil {
		t.Fatal(err)
	}
	e := evs[0]
	want := map[string]string{"x-n": "5", "x-b": "true", "x-null": "", "accept": "a, b", "host": "ignored.example"}
	if !reflect.DeepEqual(map[string]string(e.RequestHeaders), want) {
		t.Errorf("headers %v", e.RequestHeaders)
	}
	if e.Host != "h.example" || e.Route != "/p" || e.Verb != "POST" || e.RequestSize != 5 || e.ResponseSize != 77 || e.DurationMs != 250 {
		t.Errorf("event 0: host %q route %q verb %q sizes %d/%d duration %d", e.Host, e.Route, e.Verb, e.RequestSize, e.ResponseSize, e.DurationMs)
	}
	if e := evs[1]; e.Host != "h2.example" || e.RequestSize != 3 || e.ResponseSize != len64(`{"ok":true}`) {
		t.Errorf("event 1: host %q sizes %d/%d", e.Host, e.RequestSize, e.ResponseSize)
	}
	if e := evs[2]; e.RequestSize != 9 || e.HasResponse {
		t.Errorf("event 2: size %d, has response %v", e.RequestSize, e.HasResponse)
	}
}

func len64(s string) int64 { return int64(len(s)) }
