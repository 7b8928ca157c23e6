package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/duckdb"
)

const (
	testAdmin  = "admin-token"
	testIngest = "ingest-key-0123456789abcdef0123456789abcdef0123456789"
)

// testNow is the server's clock in tests.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type harness struct {
	t     *testing.T
	store *slowStore
	srv   *Server
	url   string
	// openapi checks every request and its answer against the OpenAPI
	// document (server/openapi_test.go): every test of the package checks
	// the document too.
	openapi *validator
}

// slowStore wraps the real DuckDB store to count inserts, hold them at a
// gate or fail them (fault injection).
type slowStore struct {
	storage.Store
	mu    sync.Mutex
	gate  chan struct{}
	fail  error
	calls int
}

func (s *slowStore) Insert(ctx context.Context, ev []storage.Event) (storage.InsertResult, error) {
	s.mu.Lock()
	g, fail := s.gate, s.fail
	s.calls++
	s.mu.Unlock()
	if g != nil {
		<-g
	}
	if fail != nil {
		return storage.InsertResult{}, fail
	}
	return s.Store.Insert(ctx, ev)
}

func (s *slowStore) set(f func(s *slowStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	st, err := duckdb.Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ss := &slowStore{Store: st}
	cfg := Config{Store: ss, AdminToken: testAdmin, IngestKey: testIngest, Now: func() time.Time { return testNow }}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return &harness{t: t, store: ss, srv: srv, url: ts.URL, openapi: newValidator(t)}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %q", a.status, a.body)
	}
	return m
}

// do sends a request; headers alternate name, value.
func (h *harness) do(method, path string, body io.Reader, headers ...string) answer {
	h.t.Helper()
	var sent []byte
	if body != nil {
		sent, _ = io.ReadAll(body)
		body = bytes.NewReader(sent)
	}
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{resp.StatusCode, resp.Header, b}
	h.openapi.validate(req, sent, a)
	return a
}

func (h *harness) ingest(path, body string, headers ...string) answer {
	h.t.Helper()
	return h.do("POST", path, strings.NewReader(body), append([]string{"X-Moesif-Application-Id", testIngest, "Content-Type", "application/json"}, headers...)...)
}

func (h *harness) admin(path string) answer {
	h.t.Helper()
	return h.do("GET", path, nil, "Authorization", "Bearer "+testAdmin)
}

func (h *harness) count() int64 {
	h.t.Helper()
	st, err := h.store.Stats(context.Background(), storage.EventFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	return st.Count
}

// wantError asserts an error answer's status and body fields, and its
// request id (body and header); index < 0 means the body must have no
// index.
func wantError(t *testing.T, a answer, status int, code, field string, index int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; body %s", a.status, status, a.body)
	}
	m := a.json(t)
	if m["code"] != code {
		t.Fatalf("code %v, want %s; body %s", m["code"], code, a.body)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Fatalf("no message: %s", a.body)
	}
	if f, _ := m["field"].(string); f != field {
		t.Fatalf("field %q, want %q; body %s", f, field, a.body)
	}
	idx, has := m["index"]
	switch {
	case index < 0 && has:
		t.Fatalf("unexpected index %v; body %s", idx, a.body)
	case index >= 0 && (!has || idx != float64(index)):
		t.Fatalf("index %v, want %d; body %s", idx, index, a.body)
	}
	if id, _ := m["request_id"].(string); id == "" || id != a.header.Get("X-Request-Id") {
		t.Fatalf("request_id %q, X-Request-Id %q: every error answer carries its request's id in both; body %s", id, a.header.Get("X-Request-Id"), a.body)
	}
}

// event is a valid Moesif event body at testNow plus offset seconds.
func event(txn string, offset int) string {
	at := testNow.Add(time.Duration(offset) * time.Second).Format(time.RFC3339Nano)
	tx := ""
	if txn != "" {
		tx = `"transaction_id":"` + txn + `",`
	}
	return `{` + tx + `"request":{"time":"` + at + `","uri":"https://api.example.com/v1/search?q=1","verb":"GET",` +
		`"headers":{"Host":"api.example.com","X-Api-Key":"k"}},` +
		`"response":{"time":"` + at + `","status":200,"headers":{"Content-Length":"512"}},` +
		`"user_id":"u1","company_id":"c1","metadata":{"tokens":5}}`
}

func batch(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func (h *harness) insertCalls() int {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	return h.store.calls
}

// waitFor polls cond (sequencing concurrent requests without sleeping a
// guessed time).
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	for i := 0; i < 2000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("timed out waiting for %s", what)
}
