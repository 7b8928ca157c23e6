package server

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // windowTimeZone names IANA zones, whatever the host has

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/server/wire"
)

// openMeterMeterJSON is a meter as OpenMeter's API shows one. What
// meterd's meters have beyond it (their filter and value expressions, the
// customer they bill, their status) is under annotations.
type openMeterMeterJSON struct {
	ID          string         `json:"id"`
	Slug        string         `json:"slug"`
	Name        string         `json:"name"`
	Aggregation string         `json:"aggregation"`
	EventType   string         `json:"eventType"`
	CreatedAt   time.Time      `json:"createdAt"`
	UpdatedAt   time.Time      `json:"updatedAt"`
	DeletedAt   *time.Time     `json:"deletedAt,omitempty"`
	Annotations map[string]any `json:"annotations"`
}

// openMeterAggregations maps meterd's aggregations to OpenMeter's.
var openMeterAggregations = map[string]string{rules.AggSum: "SUM", rules.AggCount: "COUNT",
	rules.AggMax: "MAX", rules.AggMin: "MIN", rules.AggUnique: "UNIQUE_COUNT"}

// anyEventType is the eventType of every meter: meterd's meters select
// their events with their filter expression, not by type.
const anyEventType = "*"

func renderOpenMeterMeter(m *registry.Meter) openMeterMeterJSON {
	v := m.Latest()
	out := openMeterMeterJSON{ID: m.ID, Slug: cmp.Or(m.Slug, m.ID), Name: m.Name, Aggregation: openMeterAggregations[v.Aggregation],
		EventType: anyEventType, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
		Annotations: map[string]any{"meterd.filter": v.Filter, "meterd.value": v.Value, "meterd.group_by": v.GroupBy,
			"meterd.status": m.Status, "meterd.version": m.CurrentVersion}}
	if m.Status == rules.StatusArchived {
		out.DeletedAt = &m.UpdatedAt // archiving is a meter's last change
	}
	return out
}

// listOpenMeterMeters answers OpenMeter's list-meters: archived meters
// only with includeDeleted=true, ordered by orderBy (key, name,
// aggregation, createdAt, updatedAt; key by default) and order (ASC by
// default). page and pageSize are accepted and, as OpenMeter does,
// ignored.
func (s *Server) listOpenMeterMeters(c echo.Context) error {
	var all bool
	switch v := c.QueryParam("includeDeleted"); v {
	case "", "false":
	case "true":
		all = true
	default:
		return fault.Invalid(wire.CodeInvalidValue, "includeDeleted", "includeDeleted must be true or false, got "+strconvQuote(v))
	}
	keys := map[string]func(m openMeterMeterJSON) string{
		"key": func(m openMeterMeterJSON) string { return m.Slug }, "name": func(m openMeterMeterJSON) string { return m.Name },
		"aggregation": func(m openMeterMeterJSON) string { return m.Aggregation },
		"createdAt":   func(m openMeterMeterJSON) string { return m.CreatedAt.Format(timeFormat) },
		"updatedAt":   func(m openMeterMeterJSON) string { return m.UpdatedAt.Format(timeFormat) },
	}
	key, ok := keys[cmp.Or(c.QueryParam("orderBy"), "key")]
	if !ok {
		return fault.Invalid(wire.CodeInvalidValue, "orderBy", "orderBy must be key, name, aggregation, createdAt or updatedAt, got "+strconvQuote(c.QueryParam("orderBy")))
	}
	dir := 1
	switch v := c.QueryParam("order"); v {
	case "", "ASC":
	case "DESC":
		dir = -1
	default:
		return fault.Invalid(wire.CodeInvalidValue, "order", "order must be ASC or DESC, got "+strconvQuote(v))
	}
	ms, err := s.meters.List(c.Request().Context())
	if err != nil {
		return readFailed(err)
	}
	out := []openMeterMeterJSON{}
	for _, m := range ms {
		if all || m.Status != rules.StatusArchived {
			out = append(out, renderOpenMeterMeter(m))
		}
	}
	slices.SortStableFunc(out, func(a, b openMeterMeterJSON) int {
		return dir * cmp.Or(strings.Compare(key(a), key(b)), strings.Compare(a.ID, b.ID))
	})
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getOpenMeterMeter(c echo.Context) error {
	m, err := s.meters.GetByIDOrSlug(c.Request().Context(), c.Param("idOrSlug"))
	if err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, renderOpenMeterMeter(m))
}

// OpenMeter's window sizes, as engine buckets.
var windowBuckets = map[string]string{"MINUTE": backtest.BucketMinute, "HOUR": backtest.BucketHour, "DAY": backtest.BucketDay}

// meterQuery is a meter query's parameters, read and checked.
type meterQuery struct {
	from, to   *time.Time // as given (the answer repeats them)
	windowSize string     // "" aggregates the whole window
	window     backtest.Window
	subjects   []string // only these customers ("" none: all)
	bySubject  bool     // a row per customer
}

// readMeterQuery reads OpenMeter's query parameters. Absent, to is now
// and from the longest window before it (400 days; 31 for MINUTE).
func (s *Server) readMeterQuery(c echo.Context) (*meterQuery, error) {
	q := &meterQuery{subjects: c.QueryParams()["subject"]}
	for name := range c.QueryParams() {
		if name == "filterCustomerId" || name == "advancedMeterGroupByFilters" || strings.HasPrefix(name, "filterGroupBy") {
			return nil, unsupportedParam(name, "meterd meters have no group-by dimensions to filter; filter by subject, the billed customer")
		}
	}
	if slices.Contains(q.subjects, "") {
		return nil, fault.Invalid(wire.CodeInvalidValue, "subject", "subject must not be empty")
	}
	for _, g := range c.QueryParams()["groupBy"] {
		if g != "subject" {
			return nil, unsupportedParam("groupBy", "meterd groups usage by subject (the billed customer) only, got "+strconvQuote(g))
		}
		q.bySubject = true
	}
	q.bySubject = q.bySubject || len(q.subjects) > 0 // as OpenMeter: a subject filter groups by subject
	w := backtest.Window{Bucket: backtest.BucketDay, Top: backtest.MaxTop}
	if q.windowSize = c.QueryParam("windowSize"); q.windowSize != "" {
		b, ok := windowBuckets[q.windowSize]
		if !ok {
			return nil, fault.Invalid(wire.CodeInvalidValue, "windowSize", "windowSize must be MINUTE, HOUR or DAY (meterd has no MONTH windows), got "+strconvQuote(q.windowSize))
		}
		w.Bucket = b
	}
	for _, p := range []struct {
		name string
		t    **time.Time
		at   *time.Time
	}{{"from", &q.from, &w.From}, {"to", &q.to, &w.To}} {
		t, err := queryTime(c, p.name)
		if err != nil {
			return nil, err
		}
		if !t.IsZero() {
			*p.t, *p.at = &t, t
		}
	}
	if w.To.IsZero() {
		w.To = s.cfg.Now().UTC()
	}
	if w.From.IsZero() {
		w.From = w.To.Add(-backtest.MaxSpan)
		if w.Bucket == backtest.BucketMinute {
			w.From = w.To.Add(-backtest.MaxMinuteSpan)
		}
	}
	if err := w.Validate(); err != nil {
		if fe, ok := fault.As(err); ok && fe.Code == backtest.CodeInvalidWindow && fe.Field == "bucket" {
			fe.Field = "windowSize" // OpenMeter's name for it
		}
		return nil, err
	}
	if err := checkWindowZone(c.QueryParam("windowTimeZone"), q.windowSize, w.From, w.To); err != nil {
		return nil, err
	}
	if len(q.subjects) == 1 {
		w.Group = q.subjects[0] // one customer: only its calls are read
	} else if q.bySubject {
		w.GroupBuckets, w.AllGroups = q.windowSize != "", q.windowSize == ""
	}
	q.window = w
	return q, nil
}

// checkWindowZone accepts a windowTimeZone whose windows are meterd's:
// meterd cuts windows at whole UTC minutes, hours and days, which are
// the zone's over [from, to) when its offset there is a whole number of
// them (any zone for MINUTE, whole-hour zones for HOUR, UTC for DAY).
func checkWindowZone(name, windowSize string, from, to time.Time) error {
	if name == "" || name == "UTC" {
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return fault.Invalid(wire.CodeInvalidValue, "windowTimeZone", "windowTimeZone must name an IANA time zone (UTC, Europe/Berlin), got "+strconvQuote(name))
	}
	unit := map[string]int{"MINUTE": 60, "HOUR": 3600, "DAY": 86400}[windowSize]
	if unit == 0 { // the whole window: no boundaries to cut
		return nil
	}
	for t := from; t.Before(to); {
		_, off := t.In(loc).Zone()
		if off%unit != 0 {
			return fault.Invalid(wire.CodeInvalidValue, "windowTimeZone", fmt.Sprintf(
				"meterd cuts %s windows at UTC boundaries, and %s is UTC%+.2g h at %s: its windows would start elsewhere. "+
					"Query in UTC, or with a smaller windowSize and add the windows up", windowSize, name, float64(off)/3600, t.Format(time.RFC3339)))
		}
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || !end.After(t) {
			break
		}
		t = end
	}
	return nil
}

// meterQueryJSON is OpenMeter's MeterQueryResult.
type meterQueryJSON struct {
	From       *time.Time     `json:"from,omitempty"`
	To         *time.Time     `json:"to,omitempty"`
	WindowSize string         `json:"windowSize,omitempty"`
	Data       []meterRowJSON `json:"data"`
}

type meterRowJSON struct {
	Value       float64            `json:"value"`
	WindowStart time.Time          `json:"windowStart"`
	WindowEnd   time.Time          `json:"windowEnd"`
	Subject     *string            `json:"subject"`
	GroupBy     map[string]*string `json:"groupBy"`
}

// queryOpenMeterMeter answers OpenMeter's meter query with the engine
// that answers GET /v1/meters/{id}/usage: each version over its span.
// Rows are the windows (or the whole window) with usage; with a subject
// filter or groupBy=subject, one per customer (the meter's company_id or
// user_id). Null values (a max or min whose calls all failed their
// value) are left out, as OpenMeter leaves them.
func (s *Server) queryOpenMeterMeter(c echo.Context) error {
	ctx := c.Request().Context()
	m, err := s.meters.GetByIDOrSlug(ctx, c.Param("idOrSlug"))
	if err != nil {
		return readFailed(err)
	}
	q, err := s.readMeterQuery(c)
	if err != nil {
		return err
	}
	u, err := s.usage(ctx, m, q.window)
	if err != nil {
		return err
	}
	out := meterQueryJSON{From: q.from, To: q.to, WindowSize: q.windowSize, Data: q.rows(u.Result)}
	return c.JSON(http.StatusOK, out)
}

// rows turns an engine result into OpenMeter's rows.
func (q *meterQuery) rows(r *backtest.Result) []meterRowJSON {
	w := q.window
	width := w.Width()
	out := []meterRowJSON{}
	add := func(v *float64, start, end time.Time, subject *string) {
		if v != nil {
			out = append(out, meterRowJSON{Value: *v, WindowStart: start.UTC(), WindowEnd: end.UTC(), Subject: subject, GroupBy: map[string]*string{}})
		}
	}
	wanted := func(g string) bool { return len(q.subjects) == 0 || slices.Contains(q.subjects, g) }
	switch {
	case w.Group != "" && q.windowSize == "":
		if r.MatchedEvents > 0 {
			add(r.Total, w.From, w.To, &w.Group)
		}
	case w.Group != "":
		for _, b := range r.Buckets {
			add(b.Value, b.Start, b.Start.Add(width), &w.Group)
		}
	case q.bySubject && q.windowSize == "":
		for _, g := range r.Groups {
			if wanted(g.Key) {
				add(g.Value, w.From, w.To, &g.Key)
			}
		}
		slices.SortStableFunc(out, func(a, b meterRowJSON) int { return strings.Compare(*a.Subject, *b.Subject) })
	case q.bySubject:
		for _, gb := range r.GroupBuckets {
			if wanted(gb.Group) {
				add(gb.Value, gb.Start, gb.Start.Add(width), &gb.Group)
			}
		}
		slices.SortStableFunc(out, func(a, b meterRowJSON) int {
			return cmp.Or(a.WindowStart.Compare(b.WindowStart), strings.Compare(*a.Subject, *b.Subject))
		})
	case q.windowSize == "":
		add(r.Total, w.From, w.To, nil)
	default:
		for _, b := range r.Buckets {
			add(b.Value, b.Start, b.Start.Add(width), nil)
		}
	}
	return out
}
