package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
)

// OpenMeter's API (/api/v1): what its SDKs call, in its shapes, so that
// teams metering with them point them at meterd unchanged. docs/api.md,
// "OpenMeter compatibility", says what is supported and what differs.

// openMeterPrefix is where errors answer as RFC 7807 problems
// (application/problem+json, what OpenMeter's SDKs read).
const openMeterPrefix = "/api/"

func (s *Server) openMeterRoutes(e *echo.Echo) {
	e.POST("/api/v1/events", s.postCloudEvents, s.ingestMetrics, s.ingestAuth) // the admin token ingests too
	adm := s.adminAuth
	e.GET("/api/v1/events", s.listOpenMeterEvents, adm)
	e.GET("/api/v1/meters", s.listOpenMeterMeters, adm)
	e.GET("/api/v1/meters/:idOrSlug", s.getOpenMeterMeter, adm)
	e.GET("/api/v1/meters/:idOrSlug/query", s.queryOpenMeterMeter, adm)
}

// problemJSON is an error on the OpenMeter API: RFC 7807's members, with
// meterd's as extension members, so that a client of either API finds
// what it reads.
type problemJSON struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	errorBody
}

// answerError writes an error in the API's shape: a problem under
// /api/ (openMeterPrefix), else meterd's.
func answerError(c echo.Context, status int, body errorBody) {
	path := c.Request().URL.Path
	if !strings.HasPrefix(path, openMeterPrefix) {
		_ = c.JSON(status, body)
		return
	}
	title := http.StatusText(status)
	if title == "" {
		title = body.Code
	}
	b, _ := json.Marshal(problemJSON{Type: "about:blank", Title: title, Status: status, Detail: body.Message, Instance: path, errorBody: body})
	_ = c.Blob(status, "application/problem+json", b)
}

// unsupportedParam refuses an OpenMeter parameter meterd cannot honour,
// rather than answering as if it had.
func unsupportedParam(name, why string) error {
	return fault.Invalid("unsupported_parameter", name, name+" is not supported by meterd: "+why)
}

// List-events defaults, as OpenMeter's.
const (
	openMeterEventsLimit = 100
	openMeterEventsFrom  = 32 * 24 * time.Hour
)

// ingestedEventJSON is one event of GET /api/v1/events (OpenMeter's
// IngestedEvent).
type ingestedEventJSON struct {
	Event      cloudEventJSON `json:"event"`
	IngestedAt string         `json:"ingestedAt"`
	StoredAt   string         `json:"storedAt"`
}

type cloudEventJSON struct {
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// listOpenMeterEvents answers OpenMeter's list-events: the CloudEvents
// received, newest first, filtered by from/to (event time),
// ingestedAtFrom/ingestedAtTo (arrival), id and subject (exact).
func (s *Server) listOpenMeterEvents(c echo.Context) error {
	if c.QueryParams().Has("customerId") {
		return unsupportedParam("customerId", "meterd has no OpenMeter customers; filter by subject, the billed customer")
	}
	f := storage.EventFilter{Format: storage.FormatCloudEvents, ExternalID: c.QueryParam("id"), Subject: c.QueryParam("subject"),
		Limit: openMeterEventsLimit}
	var err error
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}, {"ingestedAtFrom", &f.ReceivedFrom}, {"ingestedAtTo", &f.ReceivedTo}} {
		if *p.t, err = queryTime(c, p.name); err != nil {
			return err
		}
	}
	if f.From.IsZero() {
		f.From = s.cfg.Now().Add(-openMeterEventsFrom).UTC()
	}
	if !f.To.IsZero() && !f.To.After(f.From) {
		return fault.Invalid(wire.CodeInvalidValue, "to", "to must be after from")
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > openMeterEventsLimit {
			return fault.Invalid(wire.CodeInvalidValue, "limit", "limit must be a whole number from 1 to "+strconv.Itoa(openMeterEventsLimit))
		}
		f.Limit = n
	}
	events, err := s.cfg.Store.ListEvents(c.Request().Context(), f)
	if err != nil {
		return readFailed(err)
	}
	out := make([]ingestedEventJSON, len(events))
	for i := range events {
		e := &events[i]
		ce := cloudEventJSON{ID: e.ExternalID, Source: e.Source, SpecVersion: "1.0", Type: e.Type, Subject: e.Subject,
			Time: e.Time.UTC().Format(timeFormat)}
		if e.Metadata != "" {
			ce.DataContentType, ce.Data = "application/json", json.RawMessage(e.Metadata)
		}
		at := e.ReceivedAt.UTC().Format(timeFormat) // stored when received: the answer waits for the commit
		out[i] = ingestedEventJSON{Event: ce, IngestedAt: at, StoredAt: at}
	}
	return c.JSON(http.StatusOK, out)
}
