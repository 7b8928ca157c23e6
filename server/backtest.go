package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
)

// backtestRequest is POST /v1/backtest's body: a meter definition (its
// fields at the top level, or under "meter") and a window.
type backtestRequest struct {
	rules.Definition
	Meter  *rules.Definition `json:"meter"`
	From   json.RawMessage   `json:"from"`
	To     json.RawMessage   `json:"to"`
	Bucket string            `json:"bucket"`
	Top    int               `json:"top"`
	Engine string            `json:"engine"` // auto (default), sql or vm
	Limit  int               `json:"limit"`  // samples only
}

// Window defaults when the request leaves them out.
const (
	defaultWindow = 30 * 24 * time.Hour
	hourlyUpTo    = 7 * 24 * time.Hour // longer windows default to daily buckets
)

// meter compiles the request's definition (inactive: it is not saved).
func (r *backtestRequest) meter() (*rules.Meter, error) {
	d := r.Definition
	if r.Meter != nil {
		if d != (rules.Definition{}) {
			return nil, fault.Invalid("ambiguous_meter", "meter", "give the meter's fields either at the top level or under \"meter\", not both")
		}
		d = *r.Meter
	}
	if d.Status == "" {
		d.Status = rules.StatusInactive
	}
	if d.Name == "" { // a backtest needs no name
		d.Name = "backtest"
	}
	return rules.Compile(d)
}

// window reads from, to, bucket and top, filling the documented defaults.
func (r *backtestRequest) window(now time.Time) (backtest.Window, error) {
	from, err := jsonTime("from", r.From)
	if err != nil {
		return backtest.Window{}, err
	}
	to, err := jsonTime("to", r.To)
	if err != nil {
		return backtest.Window{}, err
	}
	return defaultWindowOf(from, to, r.Bucket, r.Top, now), nil
}

// defaultWindowOf fills what a caller left out: to is now, from is 30 days
// before to, bucket is hour up to 7 days and day beyond.
func defaultWindowOf(from, to time.Time, bucket string, top int, now time.Time) backtest.Window {
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-defaultWindow)
	}
	if bucket == "" {
		bucket = backtest.BucketDay
		if to.Sub(from) <= hourlyUpTo {
			bucket = backtest.BucketHour
		}
	}
	return backtest.Window{From: from.UTC(), To: to.UTC(), Bucket: bucket, Top: top}
}

// jsonTime reads an RFC 3339 string or unix milliseconds; null or absent
// is the zero time.
func jsonTime(field string, raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var ms int64
	if err := json.Unmarshal(raw, &ms); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fault.Invalid(wire.CodeInvalidValue, field, field+" must be an RFC 3339 time (2026-11-25T10:00:00Z) or unix milliseconds, got "+string(raw))
}

func engineOf(name string) (backtest.Engine, error) {
	switch name {
	case "", "auto":
		return backtest.Auto, nil
	case backtest.EngineSQL:
		return backtest.SQL, nil
	case backtest.EngineVM:
		return backtest.VM, nil
	}
	return "", fault.Invalid(wire.CodeInvalidValue, "engine", "engine must be auto, sql or vm, got "+strconvQuote(name))
}

// readBacktest decodes a backtest request: its meter, compiled, and its
// window, checked.
func (s *Server) readBacktest(c echo.Context) (*backtestRequest, *rules.Meter, backtest.Window, error) {
	var req backtestRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return nil, nil, backtest.Window{}, err
	}
	m, err := req.meter()
	if err != nil {
		return nil, nil, backtest.Window{}, err
	}
	w, err := req.window(s.cfg.Now())
	if err != nil {
		return nil, nil, backtest.Window{}, err
	}
	if err := w.Validate(); err != nil {
		return nil, nil, backtest.Window{}, err
	}
	return &req, m, w, nil
}

// postBacktest runs an unsaved meter over a window.
func (s *Server) postBacktest(c echo.Context) error {
	req, m, w, err := s.readBacktest(c)
	if err != nil {
		return err
	}
	e, err := engineOf(req.Engine)
	if err != nil {
		return err
	}
	if req.Limit != 0 {
		return fault.Invalid("unknown_field", "limit", "limit belongs to POST /v1/backtest/samples")
	}
	res, err := s.run(c.Request().Context(), metrics.SourceBacktest, []backtest.Version{{Meter: m}}, w, e)
	if err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, res)
}

// usageJSON is a saved meter's usage: the backtest answer and the
// versions that produced it.
type usageJSON struct {
	MeterID string `json:"meter_id"`
	*backtest.Result
	Versions []usageSpan `json:"versions"`
}

type usageSpan struct {
	Version int       `json:"version"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
}

// meterUsage runs a saved meter over a window, each version over the span
// where it was effective, from the usage kept per closed hour.
func (s *Server) meterUsage(c echo.Context) error {
	from, err := queryTime(c, "from")
	if err != nil {
		return err
	}
	to, err := queryTime(c, "to")
	if err != nil {
		return err
	}
	top := 0
	if v := c.QueryParam("top"); v != "" {
		if top, err = strconv.Atoi(v); err != nil {
			return fault.Invalid(wire.CodeInvalidValue, "top", "top must be a whole number from 1 to "+strconv.Itoa(backtest.MaxTop))
		}
	}
	w := defaultWindowOf(from, to, c.QueryParam("bucket"), top, s.cfg.Now())
	if err := w.Validate(); err != nil {
		return err
	}
	w.Group = c.QueryParam("customer") // one customer's buckets, to audit a bill
	ctx := c.Request().Context()
	m, err := s.meters.Get(ctx, c.Param("id"))
	if err != nil {
		return readFailed(err)
	}
	out, err := s.usage(ctx, m, w)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// usage runs a saved meter over a checked window, each version over the
// span where it was effective (GET /v1/meters/{id}/usage and OpenMeter's
// meter query): from the usage kept per closed hour (engine/hours), which
// queries only the hours that changed, when the window is cut in hours or
// days; minute windows and per-customer buckets run on the backtest.
func (s *Server) usage(ctx context.Context, m *registry.Meter, w backtest.Window) (*usageJSON, error) {
	spans, err := m.Spans(w.From, w.To)
	if err != nil {
		return nil, err
	}
	out := &usageJSON{MeterID: m.ID, Versions: make([]usageSpan, len(spans))}
	versions := make([]backtest.Version, len(spans))
	for i, sp := range spans {
		out.Versions[i] = usageSpan{Version: sp.Version, From: sp.From, To: sp.To}
		versions[i] = backtest.Version{Meter: sp.Meter, From: sp.From}
	}
	if len(versions) == 0 { // cannot happen: version 1 covers all history
		return nil, errors.New("server: meter " + m.ID + " has no version in the window")
	}
	versions[0].From = time.Time{}
	if w.Bucket == backtest.BucketMinute || w.GroupBuckets || len(w.GroupFrom) > 0 {
		out.Result, err = s.run(ctx, metrics.SourceUsage, versions, w, backtest.Auto)
	} else {
		out.Result, err = s.fromHours(ctx, m, w)
	}
	if err != nil {
		return nil, readFailed(err)
	}
	return out, nil
}

// fromHours answers from the usage kept per closed hour.
func (s *Server) fromHours(ctx context.Context, m *registry.Meter, w backtest.Window) (*backtest.Result, error) {
	return s.observed(metrics.SourceUsage, func() (*backtest.Result, error) { return s.cfg.Hours.Result(ctx, m, w, s.cfg.Now()) })
}

// run runs meter versions on the engine.
func (s *Server) run(ctx context.Context, source string, versions []backtest.Version, w backtest.Window, e backtest.Engine) (*backtest.Result, error) {
	return s.observed(source, func() (*backtest.Result, error) { return backtest.Run(ctx, s.cfg.Store, versions, w, e) })
}

// observed records a backtest's run: its duration, engine and outcome
// (GET /metrics).
func (s *Server) observed(source string, run func() (*backtest.Result, error)) (*backtest.Result, error) {
	start := time.Now()
	res, err := run()
	if err != nil {
		s.metrics.Backtest(source, "", false, time.Since(start), err)
		return nil, err
	}
	s.metrics.Backtest(source, res.Engine, res.Fallback != "", time.Since(start), nil)
	return res, nil
}

// Samples: how many of each kind at most, and how many events are read
// to find them.
const (
	defaultSamples = 10
	maxSamples     = 100
	sampleScan     = 5000
)

type sampleJSON struct {
	Event      eventJSON `json:"event"`
	Value      any       `json:"value"` // number, or text for unique meters; null when unmatched or failed
	ValueError bool      `json:"value_error,omitempty"`
}

type samplesJSON struct {
	Matched   []sampleJSON `json:"matched"`
	Unmatched []sampleJSON `json:"unmatched"`
	Scanned   int          `json:"scanned"`
}

// postSamples evaluates an unsaved meter on the newest events of a window
// (through the VM, the reference) and returns some that match and some
// that do not, so a person can see why.
func (s *Server) postSamples(c echo.Context) error {
	req, m, w, err := s.readBacktest(c)
	if err != nil {
		return err
	}
	limit := req.Limit
	if limit == 0 {
		limit = defaultSamples
	}
	if limit < 1 || limit > maxSamples {
		return fault.Invalid(wire.CodeInvalidValue, "limit", "limit must be a whole number from 1 to "+strconv.Itoa(maxSamples))
	}
	if req.Engine != "" {
		return fault.Invalid("unknown_field", "engine", "samples are always evaluated by the VM")
	}
	out := samplesJSON{Matched: []sampleJSON{}, Unmatched: []sampleJSON{}}
	ctx := c.Request().Context()
	f := eventFilterOf(w)
	for out.Scanned < sampleScan && (len(out.Matched) < limit || len(out.Unmatched) < limit) {
		events, err := s.cfg.Store.ListEvents(ctx, f)
		if err != nil {
			return readFailed(err)
		}
		for i := range events {
			e := &events[i]
			out.Scanned++
			env, err := rules.EnvFromEvent(*e)
			if err != nil {
				return err
			}
			r := m.Eval(&env)
			switch {
			case r.Matched && len(out.Matched) < limit:
				smp := sampleJSON{Event: renderEvent(e), ValueError: r.ValueError}
				if !r.ValueError {
					smp.Value = r.Value
					if r.IsText {
						smp.Value = r.Text
					}
				}
				out.Matched = append(out.Matched, smp)
			case !r.Matched && len(out.Unmatched) < limit:
				out.Unmatched = append(out.Unmatched, sampleJSON{Event: renderEvent(e)})
			}
		}
		if len(events) < f.Limit {
			break
		}
		last := events[len(events)-1]
		f.BeforeTime, f.BeforeID = last.Time, last.ID
	}
	return c.JSON(http.StatusOK, out)
}

// eventFilterOf pages through a window's events, newest first.
func eventFilterOf(w backtest.Window) storage.EventFilter {
	return storage.EventFilter{From: w.From, To: w.To, Limit: 500}
}
