package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/engine/sqlgen"
	"github.com/meterd/meterd/rules"
	gov "github.com/meterd/meterd/rules/governance"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/server/ingest"
	"github.com/meterd/meterd/storage"
)

// corruptEvents is the real store, its events read back with metadata
// that is not JSON (fault injection: what a damaged store would return).
type corruptEvents struct{ storage.Store }

func (c corruptEvents) ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error) {
	evs, err := c.Store.ListEvents(ctx, f)
	for i := range evs {
		evs[i].Metadata = `{"plan":`
	}
	return evs, err
}

// An unexpected failure answers 500 internal with the request id, and
// nothing of what failed: that is in the log line carrying the same id.
func TestInternalErrorAnswersTheRequestIDOnly(t *testing.T) {
	var log syncBuffer
	h := newHarness(t, func(c *Config) {
		c.Store = corruptEvents{c.Store}
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	if a := h.ingest("/v1/events", event("i-1", -60)); a.status != 200 {
		t.Fatalf("ingest: %d %s", a.status, a.body)
	}
	a := h.adminDo("POST", "/v1/backtest/samples", `{"filter":"true","aggregation":"count"}`)
	wantError(t, a, 500, "internal", "", -1)
	id := a.header.Get("X-Request-Id")
	var body map[string]string
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"code": "internal", "message": "internal error; request id " + id, "request_id": id}; fmt.Sprint(body) != fmt.Sprint(want) {
		t.Fatalf("body %s, want %v", a.body, want)
	}
	line := logLine(log.String(), id)
	if !strings.Contains(line, `msg="request failed"`) || !strings.Contains(line, "not a JSON object") || !strings.Contains(line, "path=/v1/backtest/samples") {
		t.Fatalf("the log line of request %s: %q\nlog:\n%s", id, line, log.String())
	}
}

// A failed store write answers 503 store_unavailable saying nothing was
// stored, without the store's words, which the log line of its request
// id has.
func TestStoreWriteFailureIsLoggedNotAnswered(t *testing.T) {
	var log syncBuffer
	h := newHarness(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	h.store.set(func(s *slowStore) { s.fail = errors.New("disk full at /var/lib/meterd") })
	a := h.ingest("/v1/events", event("w-1", -60))
	wantError(t, a, 503, "store_unavailable", "", -1)
	if m := a.json(t)["message"].(string); !strings.Contains(m, "nothing of this request was stored") || strings.Contains(string(a.body), "disk full") {
		t.Fatalf("answer: %s", a.body)
	}
	if line := logLine(log.String(), a.header.Get("X-Request-Id")); !strings.Contains(line, `msg="store write failed"`) || !strings.Contains(line, "disk full at /var/lib/meterd") {
		t.Fatalf("the log line of the request: %q\nlog:\n%s", line, log.String())
	}
}

// A key check that cannot reach Stripe answers 502 stripe_error without
// what the library said (a host and port); the log line of the request
// id has it.
func TestStripeUnreachableIsLoggedNotAnswered(t *testing.T) {
	var log syncBuffer
	h := newHarness(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() // nothing listens once closed
	ln.Close()
	if a := h.putStripe(`{"api_key":"` + testStripeKey + `","api_base":"` + closed + `"}`); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	a := h.adminDo("POST", "/v1/billing/stripe/check", "")
	wantError(t, a, 502, "stripe_error", "", -1)
	if strings.Contains(string(a.body), ln.Addr().String()) {
		t.Fatalf("answer: %s", a.body)
	}
	if line := logLine(log.String(), a.header.Get("X-Request-Id")); !strings.Contains(line, ln.Addr().String()) {
		t.Fatalf("the log line of the request: %q\nlog:\n%s", line, log.String())
	}
}

// Every answer has an X-Request-Id: a client's own when it is a short
// token, else one meterd makes, new for each request.
func TestRequestID(t *testing.T) {
	h := newHarness(t, nil)
	a, b := h.do("GET", "/healthz", nil), h.do("GET", "/healthz", nil)
	if a.status != 200 || a.header.Get("X-Request-Id") == "" || a.header.Get("X-Request-Id") == b.header.Get("X-Request-Id") {
		t.Fatalf("ids %q and %q", a.header.Get("X-Request-Id"), b.header.Get("X-Request-Id"))
	}
	own := h.do("GET", "/v1/events", nil, "X-Request-Id", "lb-7f3a:42")
	wantError(t, own, 401, "unauthorized", "", -1)
	if own.header.Get("X-Request-Id") != "lb-7f3a:42" {
		t.Fatalf("the client's id became %q", own.header.Get("X-Request-Id"))
	}
	for _, bad := range []string{"two words", strings.Repeat("x", maxRequestID+1), `a"b`} {
		if got := h.do("GET", "/healthz", nil, "X-Request-Id", bad).header.Get("X-Request-Id"); got == bad || got == "" {
			t.Errorf("X-Request-Id %q answered %q, want one of meterd's", bad, got)
		}
	}
	// Unknown routes, and the OpenMeter API's problems, have it too.
	wantError(t, h.do("GET", "/v1/nope", nil), 404, "not_found", "", -1)
	wantProblem(t, h.do("GET", "/api/v1/meters", nil), 401, "unauthorized", "", -1)
}

// answerOf, the one mapping of errors to HTTP, answers what the four
// mappers it replaced did (writeError, meterError, backtestError,
// billingError, and readError beside them), from the errors the packages
// return.
func TestAnswerOfFormerMappers(t *testing.T) {
	driver := errors.New("dial tcp 10.0.0.7:9000: connection refused")
	_, compileErr := rules.Compile(rules.Definition{Name: "x", Filter: "response.stauts == 200", Aggregation: rules.AggCount})
	windowErr := (&backtest.Window{From: testNow, To: testNow.Add(-time.Hour), Bucket: backtest.BucketHour}).Validate()
	settingsErr := (&billing.Settings{APIKey: "pk_live_1"}).Normalize()
	type want struct {
		status     int
		code       string
		field      string
		retryAfter int
	}
	for _, c := range []struct {
		mapper, name string
		err          error
		want         want
	}{
		{"writeError", "queue full", ingest.ErrOverloaded, want{503, "overloaded", "", 1}},
		{"writeError", "closing", ingest.ErrClosed, want{503, "shutting_down", "", 5}},
		{"writeError", "canceled", writeFailed(context.Canceled), want{499, "canceled", "", 0}},
		{"writeError", "deadline", writeFailed(context.DeadlineExceeded), want{499, "canceled", "", 0}},
		{"writeError", "store", writeFailed(driver), want{503, "store_unavailable", "", 5}},
		{"readError", "canceled", readFailed(context.Canceled), want{499, "canceled", "", 0}},
		{"readError", "deadline", readFailed(context.DeadlineExceeded), want{504, "timeout", "", 0}},
		{"readError", "store", readFailed(driver), want{503, "store_unavailable", "", 5}},
		{"readError", "unavailable, unmarked", fmt.Errorf("%w: %w", storage.ErrUnavailable, driver), want{503, "store_unavailable", "", 5}},
		{"meterError", "not found", readFailed(registry.ErrNotFound), want{404, "not_found", "", 0}},
		{"meterError", "archived", writeFailed(registry.ErrArchived), want{409, "archived", "", 0}},
		{"meterError", "slug taken", writeFailed(fault.Conflict(registry.CodeSlugTaken, "slug", "taken")), want{409, "slug_taken", "slug", 0}},
		{"meterError", "definition", writeFailed(compileErr), want{400, "unknown_field", "filter", 0}},
		{"meterError", "store", writeFailed(driver), want{503, "store_unavailable", "", 5}},
		{"ruleError", "not found", readFailed(gov.ErrNotFound), want{404, "not_found", "", 0}},
		{"ruleError", "archived", writeFailed(gov.ErrArchived), want{409, "archived", "", 0}},
		{"backtestError", "window", windowErr, want{400, "invalid_window", "to", 0}},
		{"backtestError", "not exact", readFailed(&sqlgen.ErrUntranslatable{Construct: "**", Reason: "no exact power"}), want{422, "not_translatable", "engine", 0}},
		{"backtestError", "store", readFailed(driver), want{503, "store_unavailable", "", 5}},
		{"billingError", "secret key", readFailed(fmt.Errorf("%w is not set here", billing.ErrSecretKey)), want{500, "secret_key", "", 0}},
		{"billingError", "settings", settingsErr, want{400, "invalid_value", "api_key", 0}},
		{"billingError", "store", readFailed(driver), want{503, "store_unavailable", "", 5}},
		{"handleError", "route", echo.ErrNotFound, want{404, "not_found", "", 0}},
		{"handleError", "unexpected", driver, want{500, "internal", "", 0}},
	} {
		fe, _ := answerOf(c.err, "r-1")
		if got := (want{fe.Status, fe.Code, fe.Field, fe.RetryAfter}); got != c.want {
			t.Errorf("%s, %s: %+v, want %+v", c.mapper, c.name, got, c.want)
		}
		if strings.Contains(fe.Message, "connection refused") || fe.Message == "" {
			t.Errorf("%s, %s: message %q", c.mapper, c.name, fe.Message)
		}
		if logged := fe.Cause != nil; logged != (fe.Status == 503 && fe.Code == "store_unavailable" || fe.Code == "internal") {
			t.Errorf("%s, %s: cause %v logged %v", c.mapper, c.name, fe.Cause, logged)
		}
	}
	if _, list := answerOf(writeFailed(compileErr), ""); len(list) != 1 {
		t.Errorf("a definition's problems: %v", list)
	}
	if fe, _ := answerOf(errors.New("x"), "r-9"); fe.Message != "internal error; request id r-9" || fe.Status != http.StatusInternalServerError {
		t.Errorf("internal: %+v", fe)
	}
}
