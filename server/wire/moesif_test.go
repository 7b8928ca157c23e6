package wire

import (
	"reflect"
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
	got, werr := DecodeMoesifEvents(body, false, Limits{Now: now, MaxAge: time.Hour * 2, MaxSkew: time.Hour, MaxBatch: 1000})
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
	a, _ := DecodeMoesifEvents([]byte(`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"get"},"metadata":{"x":1,"y":"z"}}`), true, l)
	b, _ := DecodeMoesifEvents([]byte(`{"metadata":{"y":"z","x":1.0},"request":{"verb":"GET","uri":"/a","time":"2026-11-25T11:00:00.000+00:00"}}`), true, l)
	c, _ := DecodeMoesifEvents([]byte(`{"request":{"time":"2026-11-25T11:00:00Z","uri":"/a","verb":"GET"},"metadata":{"x":2,"y":"z"}}`), true, l)
	if a[0].ID != b[0].ID || a[0].ID[:3] != "mh_" {
		t.Fatalf("same event, different ids: %s %s", a[0].ID, b[0].ID)
	}
	if a[0].ID == c[0].ID {
		t.Fatal("different events share an id")
	}
}
