// Package storage defines meterd's event and profile model and the Store
// interface that the two backends (storage/duckdb, storage/clickhouse)
// implement. Both backends pass the same suite (storage/storetest).
package storage

import (
	"fmt"
	"strings"
	"time"
)

// Format says which wire format an event arrived in.
const (
	FormatMoesif      = "moesif"
	FormatCloudEvents = "cloudevents"
)

// Event is one API call (Moesif format) or one CloudEvent, normalised.
// Times are kept at millisecond precision, in UTC.
type Event struct {
	// ID is the deduplication key: the Moesif transaction_id, a hash of
	// CloudEvents source+id, or a hash of the event's content.
	ID string
	// ExternalID is the id the client gave (transaction_id or CloudEvents id).
	ExternalID string
	Format     string
	Time       time.Time // request time (CloudEvents: time)
	ReceivedAt time.Time

	// CloudEvents attributes (empty for Moesif events).
	Type    string
	Source  string
	Subject string

	Verb           string
	URI            string // with query string
	Route          string // path without query
	Host           string
	IP             string
	APIVersion     string
	RequestHeaders map[string]string // lower-case keys
	RequestSize    int64             // bytes
	RequestBody    string            // kept only when the server is told to keep bodies

	HasResponse     bool
	ResponseTime    time.Time
	Status          int32
	ResponseHeaders map[string]string // lower-case keys
	ResponseSize    int64
	ResponseBody    string
	DurationMs      int64

	UserID         string
	CompanyID      string
	SessionToken   string
	SubscriptionID string
	Direction      string
	Weight         int64
	// BlockedBy is the id of the governance rule that blocked the call
	// (Moesif agents send it as blocked_by); "" when it was not blocked.
	BlockedBy string

	// Metadata is the event's JSON object as text ("{}" when absent).
	Metadata string
	// UserTraits and CompanyTraits are the JSON objects of the user's and
	// company's profile metadata as known at ingestion ("{}" when unknown).
	UserTraits    string
	CompanyTraits string

	// Flat optionally caches Metadata and the traits flattened, and the
	// headers as columns (see Event.Flatten). The server fills it in its
	// parallel request goroutines, so the single writer does not have to.
	Flat *Flat
}

// Flat is an event's JSON objects flattened for storage.
type Flat struct {
	Meta   Attrs
	Traits Attrs // user traits prefixed "user.", then company traits prefixed "company."
	// Headers caches Event.HeaderCols; nil until computed.
	Headers *HeaderCols
}

// HeaderCols are an event's header maps as sorted key/value columns, the
// way both stores keep them.
type HeaderCols struct{ ReqKeys, ReqValues, RespKeys, RespValues []string }

// HeaderCols returns e.Flat.Headers when set (the server fills it in its
// request goroutines, sparing the single writer), else computes them.
func (e *Event) HeaderCols() *HeaderCols {
	if e.Flat != nil && e.Flat.Headers != nil {
		return e.Flat.Headers
	}
	h := &HeaderCols{}
	h.ReqKeys, h.ReqValues = HeaderColumns(e.RequestHeaders)
	h.RespKeys, h.RespValues = HeaderColumns(e.ResponseHeaders)
	return h
}

// Flatten returns e.Flat, computing it when unset.
func (e *Event) Flatten() (*Flat, error) {
	if e.Flat != nil {
		return e.Flat, nil
	}
	meta, err := FlattenJSON(e.Metadata)
	if err != nil {
		return nil, fmt.Errorf("event %s: metadata: %w", e.ID, err)
	}
	traits, err := TraitAttrs(e.UserTraits, e.CompanyTraits)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return &Flat{Meta: meta, Traits: traits, Headers: e.HeaderCols()}, nil
}

// TraitAttrs flattens a user's and a company's traits into one set.
func TraitAttrs(userTraits, companyTraits string) (Attrs, error) {
	u, err := FlattenJSON(userTraits)
	if err != nil {
		return u, fmt.Errorf("user traits: %w", err)
	}
	c, err := FlattenJSON(companyTraits)
	if err != nil {
		return c, fmt.Errorf("company traits: %w", err)
	}
	return u.Prefixed("user").Concat(c.Prefixed("company")), nil
}

// EventFilter selects events for listing and stats. Zero values mean "any".
type EventFilter struct {
	From, To  time.Time // [From, To)
	UserID    string
	CompanyID string
	Route     string // the request path without query string
	Verb      string // upper case
	Type      string // CloudEvents type
	Subject   string // CloudEvents subject
	Format    string // FormatMoesif or FormatCloudEvents
	// ExternalID is the id the client sent (a CloudEvent's id).
	ExternalID string
	// ReceivedFrom and ReceivedTo keep events that arrived in
	// [ReceivedFrom, ReceivedTo) (zero: unbounded).
	ReceivedFrom, ReceivedTo time.Time
	// ByStatus keeps events whose response status is in [StatusMin,
	// StatusMax]; status 0 is a call without a response.
	ByStatus             bool
	StatusMin, StatusMax int32
	// ByBlocked keeps the blocked calls (Blocked true: BlockedBy is not
	// empty) or the others; BlockedBy, when set, one rule's blocked calls.
	ByBlocked, Blocked bool
	BlockedBy          string
	Limit              int
	// Before is the keyset cursor for newest-first pages: only events
	// strictly older than (BeforeTime, BeforeID) are returned.
	BeforeTime time.Time
	BeforeID   string
}

// Where is f as the WHERE clause both stores run (empty when f selects
// everything), with ? placeholders for args. withCursor adds the Before
// cursor.
func (f EventFilter) Where(withCursor bool) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, a ...any) { conds, args = append(conds, cond), append(args, a...) }
	if !f.From.IsZero() {
		add("time_ms >= ?", f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		add("time_ms < ?", f.To.UnixMilli())
	}
	if !f.ReceivedFrom.IsZero() {
		add("received_ms >= ?", f.ReceivedFrom.UnixMilli())
	}
	if !f.ReceivedTo.IsZero() {
		add("received_ms < ?", f.ReceivedTo.UnixMilli())
	}
	for _, c := range []struct{ col, v string }{
		{"user_id", f.UserID}, {"company_id", f.CompanyID}, {"route", f.Route}, {"verb", f.Verb}, {"type", f.Type},
		{"subject", f.Subject}, {"format", f.Format}, {"external_id", f.ExternalID}, {"blocked_by", f.BlockedBy},
	} {
		if c.v != "" {
			add(c.col+" = ?", c.v)
		}
	}
	if f.ByStatus {
		add("status BETWEEN ? AND ?", f.StatusMin, f.StatusMax)
	}
	if f.ByBlocked && f.Blocked {
		add("blocked_by <> ''")
	} else if f.ByBlocked {
		add("blocked_by = ''")
	}
	if withCursor && !f.BeforeTime.IsZero() {
		ms := f.BeforeTime.UnixMilli()
		add("(time_ms < ? OR (time_ms = ? AND id < ?))", ms, ms, f.BeforeID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Stats summarises the events matching a filter.
type Stats struct {
	Count             int64
	First, Last       time.Time // zero when Count == 0
	DistinctUsers     int64
	DistinctCompanies int64
	MetadataKeys      []KeyStat // sorted by Key, then Type
	// TraitKeys are the profile traits the events carried, keyed as meters
	// read them ("company.plan", "user.name"); sorted like MetadataKeys.
	TraitKeys []KeyStat
}

// KeyStat is one observed metadata or trait key path with one JSON type it had.
type KeyStat struct {
	Key   string // dotted path, e.g. "plan.tier" or "company.plan"
	Type  string // JSON type name: null, boolean, number, string, array, object
	Count int64  // events in which the key had that type
}

// InsertResult tells how many events of a batch were new.
type InsertResult struct {
	Inserted   int
	Duplicates int // already stored, or repeated within the batch
	// New[i] tells whether events[i] was stored by this call (false for a
	// duplicate), so a caller that merged several requests into one batch
	// can tell each its own figures.
	New []bool
}
