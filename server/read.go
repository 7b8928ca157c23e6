package server

import (
	"encoding/base64"
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

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// eventFilter reads from, to, user_id, company_id, route, verb, type,
// status, blocked and blocked_by.
func eventFilter(c echo.Context) (storage.EventFilter, error) {
	var f storage.EventFilter
	var err error
	if f.From, err = queryTime(c, "from"); err != nil {
		return f, err
	}
	if f.To, err = queryTime(c, "to"); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return f, fault.Invalid(wire.CodeInvalidValue, "to", "to must be after from")
	}
	f.UserID, f.CompanyID = c.QueryParam("user_id"), c.QueryParam("company_id")
	f.Route, f.Verb, f.Type = c.QueryParam("route"), strings.ToUpper(c.QueryParam("verb")), c.QueryParam("type")
	if v := c.QueryParam("status"); v != "" {
		f.ByStatus = true
		if f.StatusMin, f.StatusMax, err = statusRange(v); err != nil {
			return f, err
		}
	}
	return f, blockedFilter(c, &f)
}

// blockedFilter reads blocked (true: calls a governance rule blocked,
// false: the others) and blocked_by (the calls one rule blocked).
func blockedFilter(c echo.Context, f *storage.EventFilter) error {
	f.BlockedBy = c.QueryParam("blocked_by")
	v := c.QueryParam("blocked")
	if v == "" {
		return nil
	}
	if v != "true" && v != "false" {
		return fault.Invalid(wire.CodeInvalidValue, "blocked", "blocked must be true or false, got "+strconvQuote(v))
	}
	b := v == "true"
	if !b && f.BlockedBy != "" {
		return fault.Invalid(wire.CodeInvalidValue, "blocked", "blocked=false keeps the calls no rule blocked: it cannot go with blocked_by")
	}
	f.ByBlocked, f.Blocked = true, b
	return nil
}

// statusRange reads a status filter: a code (404), a class (4xx), or 0
// for calls without a response.
func statusRange(v string) (int32, int32, error) {
	if len(v) == 3 && v[0] >= '1' && v[0] <= '5' && strings.EqualFold(v[1:], "xx") {
		lo := int32(v[0]-'0') * 100
		return lo, lo + 99, nil
	}
	if n, err := strconv.Atoi(v); err == nil && (n == 0 || n >= 100 && n <= 599) {
		return int32(n), int32(n), nil
	}
	return 0, 0, fault.Invalid(wire.CodeInvalidValue, "status",
		"status must be a code (404), a class (4xx) or 0 for calls without a response, got "+strconvQuote(v))
}

// queryTime reads an RFC 3339 time or unix milliseconds.
func queryTime(c echo.Context, name string) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, fault.Invalid(wire.CodeInvalidValue, name, name+" must be an RFC 3339 time (2026-11-25T10:00:00Z) or unix milliseconds, got "+strconvQuote(v))
	}
	return t.UTC(), nil
}

func (s *Server) listEvents(c echo.Context) error {
	f, err := eventFilter(c)
	if err != nil {
		return err
	}
	f.Limit = defaultLimit
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return fault.Invalid(wire.CodeInvalidValue, "limit", "limit must be a whole number from 1 to "+strconv.Itoa(maxLimit))
		}
		f.Limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		if f.BeforeTime, f.BeforeID, err = decodeCursor(v); err != nil {
			return fault.Invalid(wire.CodeInvalidValue, "cursor", "cursor is not one this API returned")
		}
	}
	events, err := s.cfg.Store.ListEvents(c.Request().Context(), f)
	if err != nil {
		return readFailed(err)
	}
	out := struct {
		Events     []eventJSON `json:"events"`
		NextCursor *string     `json:"next_cursor"`
	}{Events: make([]eventJSON, len(events))}
	for i := range events {
		out.Events[i] = renderEvent(&events[i])
	}
	if len(events) == f.Limit {
		last := events[len(events)-1]
		cur := encodeCursor(last.Time, last.ID)
		out.NextCursor = &cur
	}
	return c.JSON(http.StatusOK, out)
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMilli(), 10) + ":" + id))
}

func decodeCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", err
	}
	ms, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", strconv.ErrSyntax
	}
	return time.UnixMilli(n).UTC(), id, nil
}

func (s *Server) eventStats(c echo.Context) error {
	f, err := eventFilter(c)
	if err != nil {
		return err
	}
	st, err := s.cfg.Store.Stats(c.Request().Context(), f)
	if err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, statsJSON{Count: st.Count, FirstTime: timeOrNil(st.First), LastTime: timeOrNil(st.Last),
		DistinctUsers: st.DistinctUsers, DistinctCompanies: st.DistinctCompanies,
		MetadataKeys: keysJSON(st.MetadataKeys), TraitKeys: keysJSON(st.TraitKeys)})
}

// keysJSON converts key stats; never nil, so the answer has [] rather than null.
func keysJSON(ks []storage.KeyStat) []keyJSON {
	out := make([]keyJSON, len(ks))
	for i, k := range ks {
		out[i] = keyJSON(k)
	}
	return out
}

type statsJSON struct {
	Count             int64     `json:"count"`
	FirstTime         *string   `json:"first_time"`
	LastTime          *string   `json:"last_time"`
	DistinctUsers     int64     `json:"distinct_users"`
	DistinctCompanies int64     `json:"distinct_companies"`
	MetadataKeys      []keyJSON `json:"metadata_keys"`
	TraitKeys         []keyJSON `json:"trait_keys"` // "company.plan", "user.name"
}

type keyJSON struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Count int64  `json:"count"`
}

// eventJSON is how the read API shows an event.
type eventJSON struct {
	ID            string          `json:"id"`
	ExternalID    string          `json:"external_id"`
	Format        string          `json:"format"`
	Time          string          `json:"time"`
	ReceivedAt    string          `json:"received_at"`
	Type          string          `json:"type,omitempty"`
	Source        string          `json:"source,omitempty"`
	Subject       string          `json:"subject,omitempty"`
	Request       *requestJSON    `json:"request"`
	Response      *responseJSON   `json:"response"`
	DurationMs    int64           `json:"duration_ms"`
	UserID        string          `json:"user_id"`
	CompanyID     string          `json:"company_id"`
	SessionToken  string          `json:"session_token"`
	Subscription  string          `json:"subscription_id"`
	Direction     string          `json:"direction"`
	Weight        int64           `json:"weight"`
	Metadata      json.RawMessage `json:"metadata"`
	UserTraits    json.RawMessage `json:"user_traits"`
	CompanyTraits json.RawMessage `json:"company_traits"`
	// BlockedBy is the governance rule that blocked the call (absent when
	// none did).
	BlockedBy string `json:"blocked_by,omitempty"`
}

type requestJSON struct {
	Time       string            `json:"time"`
	Verb       string            `json:"verb"`
	URI        string            `json:"uri"`
	Route      string            `json:"route"`
	Host       string            `json:"host"`
	IPAddress  string            `json:"ip_address"`
	APIVersion string            `json:"api_version"`
	Headers    map[string]string `json:"headers"`
	BodySize   int64             `json:"body_size"`
	Body       string            `json:"body,omitempty"`
}

type responseJSON struct {
	Time     string            `json:"time"`
	Status   int32             `json:"status"`
	Headers  map[string]string `json:"headers"`
	BodySize int64             `json:"body_size"`
	Body     string            `json:"body,omitempty"`
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func timeOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeFormat)
	return &s
}

func rawObject(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("{}")
	}
	return json.RawMessage(s)
}

func renderEvent(e *storage.Event) eventJSON {
	out := eventJSON{
		ID: e.ID, ExternalID: e.ExternalID, Format: e.Format,
		Time: e.Time.UTC().Format(timeFormat), ReceivedAt: e.ReceivedAt.UTC().Format(timeFormat),
		Type: e.Type, Source: e.Source, Subject: e.Subject, DurationMs: e.DurationMs,
		UserID: e.UserID, CompanyID: e.CompanyID, SessionToken: e.SessionToken, Subscription: e.SubscriptionID,
		Direction: e.Direction, Weight: e.Weight, Metadata: rawObject(e.Metadata),
		UserTraits: rawObject(e.UserTraits), CompanyTraits: rawObject(e.CompanyTraits), BlockedBy: e.BlockedBy,
	}
	if e.Format == storage.FormatMoesif {
		out.Request = &requestJSON{Time: out.Time, Verb: e.Verb, URI: e.URI, Route: e.Route, Host: e.Host,
			IPAddress: e.IP, APIVersion: e.APIVersion, Headers: e.RequestHeaders, BodySize: e.RequestSize, Body: e.RequestBody}
	}
	if e.HasResponse {
		out.Response = &responseJSON{Time: e.ResponseTime.UTC().Format(timeFormat), Status: e.Status,
			Headers: e.ResponseHeaders, BodySize: e.ResponseSize, Body: e.ResponseBody}
	}
	return out
}
