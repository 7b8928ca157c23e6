package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/clickhouse"
	"github.com/meterd/meterd/storage/storetest"
)

// eachStore runs f on a server over DuckDB and, when the test ClickHouse
// is configured, over ClickHouse.
func eachStore(t *testing.T, f func(t *testing.T, h *harness)) {
	t.Run("duckdb", func(t *testing.T) { f(t, newHarness(t, nil)) })
	t.Run("clickhouse", func(t *testing.T) {
		dsn := storetest.FreshClickHouseDSN(t, "meterd_server")
		if dsn == "" {
			t.Skip("METERD_TEST_CLICKHOUSE not set")
		}
		st, err := clickhouse.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f(t, newHarness(t, func(c *Config) { c.Store = st }))
	})
}

// A meter never answers 503 for its own text. A pattern too large for the
// stores' RE2 is refused where it is written, on save, validation and
// backtest; a version saved before that check, and a meter whose query is
// longer than ClickHouse parses, answer from the VM and say why.
func TestMeterTextNeverFailsInTheStore(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		at := testNow.Add(-time.Hour)
		if a := h.ingest("/v1/events/batch", batch(call(at, 200, "/api/1", "c1", nil), call(at.Add(time.Second), 200, "/v1/search", "c2", nil))); a.status != 200 {
			t.Fatalf("ingest: %d %s", a.status, a.body)
		}
		huge := `"filter":"request.route matches \"\\\\pL{1000}\"","aggregation":"count"`
		for _, path := range []string{"/v1/meters", "/v1/backtest"} {
			a := h.adminDo("POST", path, `{"name":"letters",`+huge+`}`)
			wantError(t, a, 400, "too_large", "filter", -1)
			if m := a.json(t); m["line"] != float64(1) || m["column"] != float64(23) || !strings.Contains(m["message"].(string), "RE2") {
				t.Errorf("%s: want the pattern's position (1:23): %s", path, a.body)
			}
		}
		if v := h.adminDo("POST", "/v1/meters/validate", `{"name":"letters",`+huge+`}`).json(t); v["valid"] != false {
			t.Errorf("validate: %v", v)
		}
		window := "?from=" + at.Add(-time.Hour).Format(time.RFC3339) + "&to=" + testNow.Format(time.RFC3339)
		fallback := map[string]string{"duckdb": "", "clickhouse": "more than clickhouse parses"}[h.srv.cfg.Store.Backend()]

		// 30 patterns holding \pL: 10 KB each as RE2 reads them.
		var clauses []string
		for i := range 30 {
			clauses = append(clauses, `request.route matches \"\\\\pL/`+strconv.Itoa(i)+`\"`)
		}
		long := `"filter":"` + strings.Join(clauses, " or ") + `","aggregation":"count"`
		wantVMIf(t, h.adminDo("POST", "/v1/backtest", `{`+long+`,"from":"`+at.Add(-time.Hour).Format(time.RFC3339)+`"}`), fallback)
		a := h.adminDo("POST", "/v1/meters", `{"name":"long",`+long+`}`)
		if a.status != 201 {
			t.Fatalf("create: %d %s", a.status, a.body)
		}
		wantVMIf(t, h.admin("/v1/meters/"+a.json(t)["id"].(string)+"/usage"+window), fallback)

		// A version saved by an older meterd, which did not check sizes.
		saved := savedMeter(t, h, `request.route matches "\\pL{1000}" or request.route matches "^/api"`)
		wantVMIf(t, h.admin("/v1/meters/"+saved+"/usage"+window), "the pattern is too large for the stores' RE2")
	})
}

// wantVMIf checks a usage answer: 1 matched call, answered by the VM with
// a fallback holding why when why is not "", else by SQL.
func wantVMIf(t *testing.T, a answer, why string) {
	t.Helper()
	r := decodeResult(t, a)
	var fb struct{ Fallback string }
	json.Unmarshal(a.body, &fb)
	wantEngine := map[bool]string{true: "sql", false: "vm"}[why == ""]
	if r.MatchedEvents != 1 || r.Engine != wantEngine || !strings.Contains(fb.Fallback, why) {
		t.Errorf("matched %d by %s (fallback %q); want 1 by %s, saying %q", r.MatchedEvents, r.Engine, fb.Fallback, wantEngine, why)
	}
}

// savedMeter writes a count meter straight into the meter log, as an older
// meterd would have saved it, and returns its id.
func savedMeter(t *testing.T, h *harness, filter string) string {
	t.Helper()
	body, _ := json.Marshal(struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		registry.Spec
	}{"old", "active", registry.Spec{Filter: filter, Value: "1", Aggregation: "count", GroupBy: "company_id"}})
	id := "mtr_old" + strconv.FormatInt(time.Now().UnixNano(), 36)
	err := h.srv.cfg.Store.AppendMeterRecord(context.Background(), storage.MeterRecord{MeterID: id, Seq: 1,
		Kind: storage.MeterCreated, At: testNow.Add(-48 * time.Hour), Actor: "admin", Version: 1, Body: string(body)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// failingReads is the real store with its reads failing (fault injection).
type failingReads struct {
	storage.Store
	err error
}

func (f failingReads) Query(context.Context, string, ...any) (storage.Rows, error) { return nil, f.err }
func (f failingReads) ListEvents(context.Context, storage.EventFilter) ([]storage.Event, error) {
	return nil, f.err
}

// syncBuffer is a log destination that tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A failed read is logged and answered as a read, not as a failed insert
// ("nothing of this request was stored"). The store's own words are in
// the log line, under the request id the answer gives, never in the
// answer.
func TestStoreReadFailureIsNotAnInsert(t *testing.T) {
	var log syncBuffer
	h := newHarness(t, func(c *Config) {
		c.Store = failingReads{Store: c.Store, err: errors.New("disk on fire")}
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/backtest", `{"filter":"true","aggregation":"count"}`},
		{"POST", "/v1/backtest/samples", `{"filter":"true","aggregation":"count"}`},
		{"GET", "/v1/events", ""},
	} {
		a := h.adminDo(c.method, c.path, c.body)
		wantError(t, a, 503, "store_unavailable", "", -1)
		if strings.Contains(string(a.body), "stored") || strings.Contains(string(a.body), "disk on fire") || a.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %s (Retry-After %q)", c.method, c.path, a.body, a.header.Get("Retry-After"))
		}
		if line := logLine(log.String(), a.json(t)["request_id"].(string)); !strings.Contains(line, `msg="store read failed"`) || !strings.Contains(line, "disk on fire") {
			t.Errorf("%s %s: the log line of its request id: %q\nlog:\n%s", c.method, c.path, line, log.String())
		}
	}
	if got := log.String(); strings.Contains(got, "insert") || strings.Count(got, `msg="store read failed"`) != 3 {
		t.Errorf("log:\n%s", got)
	}
}

// logLine is the one line of a text log that names the request id ("" if
// none does, or several).
func logLine(log, requestID string) string {
	var found []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "request_id="+requestID+" ") {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}
