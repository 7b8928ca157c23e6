package server

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestIngestSingleAndBatch(t *testing.T) {
	h := newHarness(t, nil)
	a := h.ingest("/v1/events", event("t1", 0))
	if a.status != 200 || a.json(t)["accepted"] != float64(1) {
		t.Fatalf("single: %d %s", a.status, a.body)
	}
	if a.header.Get("X-Moesif-Config-ETag") == "" {
		t.Fatal("no X-Moesif-Config-ETag on the events answer")
	}
	a = h.ingest("/v1/events/batch", batch(event("t2", 1), event("t3", 2)))
	if a.status != 200 || a.json(t)["accepted"] != float64(2) {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	if n := h.count(); n != 3 {
		t.Fatalf("stored %d, want 3", n)
	}
	ev := h.admin("/v1/events?limit=1").json(t)["events"].([]any)[0].(map[string]any)
	req := ev["request"].(map[string]any)
	if req["route"] != "/v1/search" || req["host"] != "api.example.com" || req["verb"] != "GET" ||
		req["headers"].(map[string]any)["x-api-key"] != "k" {
		t.Fatalf("request not normalised: %v", req)
	}
	if resp := ev["response"].(map[string]any); resp["status"] != float64(200) || resp["body_size"] != float64(512) {
		t.Fatalf("response: %v", resp)
	}
}

func TestRetriedBatchIsNotCountedTwice(t *testing.T) {
	h := newHarness(t, nil)
	body := batch(event("", 0), event("", 1), event("tx-3", 2))
	if a := h.ingest("/v1/events/batch", body); a.json(t)["accepted"] != float64(3) {
		t.Fatalf("first: %s", a.body)
	}
	a := h.ingest("/v1/events/batch", body)
	if m := a.json(t); m["accepted"] != float64(0) || m["duplicates"] != float64(3) {
		t.Fatalf("retry: %s", a.body)
	}
	// The same events re-serialised: other key order, other time spelling.
	at := testNow.Format("2006-01-02T15:04:05.000000Z")
	reordered := `{"metadata":{"tokens":5},"company_id":"c1","user_id":"u1",` +
		`"response":{"headers":{"Content-Length":"512"},"status":200,"time":"` + at + `"},` +
		`"request":{"verb":"GET","headers":{"X-Api-Key":"k","Host":"api.example.com"},"uri":"https://api.example.com/v1/search?q=1","time":"` + at + `"}}`
	if m := h.ingest("/v1/events", reordered).json(t); m["duplicates"] != float64(1) {
		t.Fatalf("re-serialised event counted again: %v", m)
	}
	stats := h.admin("/v1/events/stats").json(t)
	if stats["count"] != float64(3) {
		t.Fatalf("stats count %v after retries, want 3", stats["count"])
	}
}

func TestBadInputIsRejectedAndHarmsNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.ingest("/v1/events", event("kept", 0))
	kept := string(h.admin("/v1/events").body)
	many := make([]string, 100_000)
	for i := range many {
		many[i] = `{"request":{"time":` + strconv.FormatInt(testNow.UnixMilli(), 10) + `,"uri":"/","verb":"GET"}}`
	}
	invalidUTF8 := batch(event("a", 1), strings.Replace(event("b", 2), `"u1"`, "\"u\xff\"", 1))
	cases := []struct {
		name, path, body string
		headers          []string
		status           int
		code, field      string
		index            int
	}{
		{"malformed JSON", "/v1/events/batch", `[{"request": {]`, nil, 400, "invalid_json", "", 0},
		{"trailing garbage", "/v1/events", event("x", 0) + "}", nil, 400, "invalid_json", "", -1},
		{"not an object or an array", "/v1/events/batch", `"x"`, nil, 400, "invalid_type", "", -1},
		{"wrong type", "/v1/events/batch", batch(event("a", 1), strings.Replace(event("b", 2), `"verb":"GET"`, `"verb":7`, 1)), nil, 400, "invalid_type", "request.verb", 1},
		{"wrong status type", "/v1/events", strings.Replace(event("b", 2), `"status":200`, `"status":"ok"`, 1), nil, 400, "invalid_type", "response.status", -1},
		{"missing request", "/v1/events/batch", batch(event("a", 1), `{"user_id":"u"}`), nil, 400, "missing_field", "request", 1},
		{"missing time", "/v1/events", `{"request":{"uri":"/","verb":"GET"}}`, nil, 400, "missing_field", "request.time", -1},
		{"missing uri", "/v1/events/batch", batch(`{"request":{"time":"2026-11-25T12:00:00Z","verb":"GET"}}`), nil, 400, "missing_field", "request.uri", 0},
		{"bad time", "/v1/events", strings.Replace(event("b", 0), testNow.Format(time.RFC3339Nano), "yesterday", 1), nil, 400, "invalid_value", "request.time", -1},
		{"time far in the future", "/v1/events/batch", batch(event("a", 0), event("b", 7200)), nil, 400, "time_out_of_range", "request.time", 1},
		{"time far in the past", "/v1/events/batch", batch(event("a", -40*24*3600)), nil, 400, "time_out_of_range", "request.time", 0},
		{"metadata not an object", "/v1/events", strings.Replace(event("b", 0), `{"tokens":5}`, `[5]`, 1), nil, 400, "invalid_type", "metadata", -1},
		{"metadata number out of range", "/v1/events", strings.Replace(event("b", 0), `{"tokens":5}`, `{"tokens":1e999}`, 1), nil, 400, "invalid_value", "metadata", -1},
		{"metadata nested too deep", "/v1/events", strings.Replace(event("b", 0), `{"tokens":5}`, strings.Repeat(`{"a":`, 40)+"1"+strings.Repeat("}", 40), 1), nil, 400, "invalid_value", "metadata", -1},
		{"zero weight", "/v1/events", strings.Replace(event("b", 0), `"user_id"`, `"weight":0,"user_id"`, 1), nil, 400, "invalid_value", "weight", -1},
		{"invalid UTF-8", "/v1/events/batch", invalidUTF8, nil, 400, "invalid_utf8", "", 1},
		{"100k events", "/v1/events/batch", "[" + strings.Join(many, ",") + "]", nil, 413, "batch_too_large", "", 10_000},
		{"empty body", "/v1/events", "", nil, 400, "invalid_json", "", -1},
		{"unknown encoding", "/v1/events", event("x", 0), []string{"Content-Encoding", "br"}, 415, "unsupported_encoding", "", -1},
		{"not gzip", "/v1/events", event("x", 0), []string{"Content-Encoding", "gzip"}, 400, "invalid_json", "", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, h.ingest(c.path, c.body, c.headers...), c.status, c.code, c.field, c.index)
		})
	}
	if got := string(h.admin("/v1/events").body); got != kept {
		t.Fatalf("stored events changed after rejected requests:\n%s\n%s", kept, got)
	}
}

// zeros is an endless body that reads as zeros without allocating.
type zeros struct{ left int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > z.left {
		n = z.left
	}
	clear(p[:n])
	z.left -= n
	return int(n), nil
}

func TestHugeBodiesAreCutOff(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 1 << 20 })
	const fifty = 50 << 20
	// Declared length: refused before reading.
	a := h.do("POST", "/v1/events/batch", io.LimitReader(&zeros{fifty}, fifty), "X-Moesif-Application-Id", testIngest)
	wantError(t, a, 413, "body_too_large", "", -1)
	// Chunked (no length): refused once past the cap.
	req, _ := http.NewRequest("POST", h.url+"/v1/events/batch", io.MultiReader(&zeros{fifty}))
	req.ContentLength = -1
	req.Header.Set("X-Moesif-Application-Id", testIngest)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, answer{resp.StatusCode, resp.Header, b}, 413, "body_too_large", "", -1)
	}
	// A gzip bomb: 50 MB of zeros compress to ~50 KB.
	bomb := gz(bytes.Repeat([]byte{' '}, fifty))
	a = h.do("POST", "/v1/events/batch", bytes.NewReader(bomb), "X-Moesif-Application-Id", testIngest, "Content-Encoding", "gzip")
	wantError(t, a, 413, "body_too_large", "", -1)
	if h.count() != 0 {
		t.Fatal("something was stored")
	}
}

func TestGzipBodies(t *testing.T) {
	h := newHarness(t, nil)
	a := h.do("POST", "/v1/events/batch", bytes.NewReader(gz([]byte(batch(event("g1", 0), event("g2", 1))))),
		"X-Moesif-Application-Id", testIngest, "Content-Encoding", "gzip", "Content-Type", "application/json")
	if a.status != 200 || a.json(t)["accepted"] != float64(2) {
		t.Fatalf("gzip batch: %d %s", a.status, a.body)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, nil)
	wantError(t, h.do("POST", "/v1/events", strings.NewReader(event("x", 0))), 401, "unauthorized", "", -1)
	wantError(t, h.do("POST", "/v1/events", strings.NewReader(event("x", 0)), "X-Moesif-Application-Id", "nope"), 401, "unauthorized", "", -1)
	if a := h.do("POST", "/v1/events", strings.NewReader(event("x", 0)), "Authorization", "Bearer "+testIngest); a.status != 200 {
		t.Fatalf("bearer ingest key: %d %s", a.status, a.body)
	}
	wantError(t, h.do("GET", "/v1/events", nil, "Authorization", "Bearer "+testIngest), 401, "unauthorized", "", -1)
	wantError(t, h.do("GET", "/v1/events", nil, "X-Moesif-Application-Id", testAdmin), 401, "unauthorized", "", -1)
	if a := h.admin("/v1/events"); a.status != 200 {
		t.Fatalf("admin read: %d", a.status)
	}
	wantError(t, h.admin("/v1/nothing"), 404, "not_found", "", -1)
}

func TestCloudEvents(t *testing.T) {
	h := newHarness(t, nil)
	ce := func(id, extra string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"svc","type":"tokens","subject":"acme",` +
			`"time":"2026-11-25T11:00:00Z","data":{"tokens":12}` + extra + `}`
	}
	post := func(ct, body string) answer {
		return h.do("POST", "/api/v1/events", strings.NewReader(body), "Authorization", "Bearer "+testIngest, "Content-Type", ct)
	}
	if a := post("application/cloudevents+json", ce("e1", "")); a.status != 200 {
		t.Fatalf("single: %d %s", a.status, a.body)
	}
	if m := post("application/cloudevents-batch+json", "["+ce("e1", "")+","+ce("e2", "")+"]").json(t); m["accepted"] != float64(1) || m["duplicates"] != float64(1) {
		t.Fatalf("batch with a repeated id+source: %v", m)
	}
	wantError(t, post("text/plain", ce("e3", "")), 415, "unsupported_media_type", "", -1)
	wantError(t, post("application/cloudevents-batch+json", "["+ce("e3", "")+`,{"id":"x","source":"s","type":"t"}]`), 400, "missing_field", "specversion", 1)
	wantError(t, post("application/cloudevents+json", strings.Replace(ce("e4", ""), `{"tokens":12}`, `"12"`, 1)), 400, "invalid_type", "data", -1)
	ev := h.admin("/v1/events?limit=1").json(t)["events"].([]any)[0].(map[string]any)
	if ev["format"] != "cloudevents" || ev["company_id"] != "acme" || ev["subject"] != "acme" ||
		ev["metadata"].(map[string]any)["tokens"] != float64(12) || ev["request"] != nil {
		t.Fatalf("stored CloudEvent: %v", ev)
	}
}

func TestOverloadAnswersRetryAfter(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxQueuedEvents = 2 })
	gate := make(chan struct{})
	h.store.set(func(s *slowStore) { s.gate = gate })
	done := make(chan answer, 2)
	go func() { done <- h.ingest("/v1/events/batch", batch(event("a", 0), event("b", 1))) }()
	h.waitFor("the first insert to be held", func() bool { return h.insertCalls() == 1 })
	go func() { done <- h.ingest("/v1/events/batch", batch(event("c", 2), event("d", 3))) }()
	h.waitFor("the second request to queue", func() bool { return h.srv.writer.Queued() == 2 })
	a := h.ingest("/v1/events/batch", batch(event("e", 4)))
	wantError(t, a, 503, "overloaded", "", -1)
	if a.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on 503")
	}
	if q := h.srv.writer.Queued(); q != 2 {
		t.Fatalf("queue holds %d events past its bound of 2", q)
	}
	close(gate)
	for i := 0; i < 2; i++ {
		if a := <-done; a.status != 200 {
			t.Fatalf("held request: %d %s", a.status, a.body)
		}
	}
	if h.count() != 4 {
		t.Fatalf("stored %d, want 4", h.count())
	}
}
