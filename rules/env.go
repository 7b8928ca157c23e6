package rules

import (
	"encoding/json"
	"fmt"

	"github.com/meterd/meterd/storage"
)

// Env is what a meter expression sees: one API call. Field names in
// expressions are the `expr` tags. Every field is always present: a call
// without a response has response.status 0, response.body_size 0 and no
// response headers.
type Env struct {
	Request      Request  `expr:"request"`
	Response     Response `expr:"response"`
	DurationMs   int      `expr:"duration_ms"`
	Time         int      `expr:"time"` // request time, unix milliseconds
	UserID       string   `expr:"user_id"`
	CompanyID    string   `expr:"company_id"`
	SessionToken string   `expr:"session_token"`
	Weight       int      `expr:"weight"`
	// BlockedBy is the governance rule that blocked the call ("" when
	// none did). A meter whose filter does not read it never counts a
	// blocked call (Meter.CountsBlocked).
	BlockedBy string `expr:"blocked_by"`
	// Metadata, Company and User are JSON objects decoded with
	// encoding/json: numbers are float64, arrays []any, objects
	// map[string]any. A nil map reads like an empty one.
	Metadata map[string]any `expr:"metadata"`
	Company  map[string]any `expr:"company"`
	User     map[string]any `expr:"user"`
}

// Request is the request side of a call.
type Request struct {
	Verb       string            `expr:"verb"`
	Route      string            `expr:"route"` // path without query
	URI        string            `expr:"uri"`   // with query
	Host       string            `expr:"host"`
	IP         string            `expr:"ip"`
	Headers    map[string]string `expr:"headers"` // lower-case keys; a missing key reads ""
	BodySize   int               `expr:"body_size"`
	APIVersion string            `expr:"api_version"`
}

// Response is the response side of a call (zero when there was none).
type Response struct {
	Status   int               `expr:"status"`
	BodySize int               `expr:"body_size"`
	Headers  map[string]string `expr:"headers"`
}

// EnvFromEvent builds the environment of a stored event. It fails only
// when metadata or traits are not a JSON object.
func EnvFromEvent(e storage.Event) (Env, error) {
	env := Env{
		Request: Request{
			Verb:       e.Verb,
			Route:      e.Route,
			URI:        e.URI,
			Host:       e.Host,
			IP:         e.IP,
			Headers:    e.RequestHeaders,
			BodySize:   int(e.RequestSize),
			APIVersion: e.APIVersion,
		},
		DurationMs:   int(e.DurationMs),
		Time:         int(e.Time.UnixMilli()),
		UserID:       e.UserID,
		CompanyID:    e.CompanyID,
		SessionToken: e.SessionToken,
		Weight:       int(e.Weight),
		BlockedBy:    e.BlockedBy,
	}
	if e.HasResponse {
		env.Response = Response{
			Status:   int(e.Status),
			BodySize: int(e.ResponseSize),
			Headers:  e.ResponseHeaders,
		}
	}
	var err error
	if env.Metadata, err = decodeObject("metadata", e.Metadata); err != nil {
		return Env{}, err
	}
	if env.Company, err = decodeObject("company traits", e.CompanyTraits); err != nil {
		return Env{}, err
	}
	if env.User, err = decodeObject("user traits", e.UserTraits); err != nil {
		return Env{}, err
	}
	return env, nil
}

// decodeObject decodes a JSON object; the common empty cases skip the
// decoder and give a nil map (reads as empty, allocates nothing).
func decodeObject(what, text string) (map[string]any, error) {
	switch text {
	case "", "{}", "null":
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", what, err)
	}
	return m, nil
}

// Field describes one name of the environment (for docs, suggestions and
// the SQL translator).
type Field struct {
	Path    string // as written in expressions, e.g. "request.route"
	Type    string // int, string, map[string]string, object (JSON), struct
	Example string
	Doc     string
}

// Fields lists the environment. Map fields accept any key below them:
// request.headers["x-api-key"], metadata.plan.tier, company.plan.
var Fields = []Field{
	{"request", "struct", "", "the request; use one of its fields"},
	{"request.verb", "string", `"POST"`, "HTTP method, upper-case"},
	{"request.route", "string", `"/v1/search"`, "URL path without the query string"},
	{"request.uri", "string", `"https://api.example.com/v1/search?q=x"`, "full URL as sent, with the query string"},
	{"request.host", "string", `"api.example.com"`, "host name"},
	{"request.ip", "string", `"203.0.113.7"`, "client IP address"},
	{"request.headers", "map[string]string", `request.headers["x-api-key"]`, `request headers; keys are lower-case; a missing header reads ""`},
	{"request.body_size", "int", "512", "request body size in bytes"},
	{"request.api_version", "string", `"2024-01-01"`, "API version the client sent"},
	{"response", "struct", "", "the response; use one of its fields"},
	{"response.status", "int", "200", "HTTP status; 0 when the call had no response"},
	{"response.body_size", "int", "2048", "response body size in bytes; 0 without a response"},
	{"response.headers", "map[string]string", `response.headers["content-type"]`, "response headers; lower-case keys; empty without a response"},
	{"duration_ms", "int", "35", "response time minus request time, milliseconds"},
	{"time", "int", "1735689600000", "request time, unix milliseconds (UTC)"},
	{"user_id", "string", `"u_123"`, `the user who made the call ("" if unknown)`},
	{"company_id", "string", `"c_9"`, `the company (customer) of the call ("" if unknown)`},
	{"session_token", "string", `"sess_abc"`, "the session token the collector sent"},
	{"weight", "int", "1", "1 / sample rate of the collector (1 when not sampled)"},
	{"blocked_by", "string", `"6650a1b2c3d4e5f601234567"`, `the governance rule that blocked the call ("" if none did); a meter counts blocked calls only when its filter reads blocked_by`},
	{"metadata", "object", `metadata.tokens`, "the event's metadata JSON object; numbers are float"},
	{"company", "object", `company.plan`, "the company's profile traits as known when the event was ingested"},
	{"user", "object", `user.tier`, "the user's profile traits as known when the event was ingested"},
}

// language is what the expressions of one kind may read: meters read an
// API call (Env), governance conditions a customer (CustomerEnv).
type language struct {
	env    any // the expr environment, a struct value
	fields []Field
	kinds  map[string]string // field path -> type
	// calls are the environment's functions ("usage"), beside the
	// conversions every language has.
	calls map[string]bool
	// inMaps are the maps the right side of in may name.
	inMaps []string
}

func newLanguage(env any, fields []Field, calls []string, inMaps ...string) *language {
	l := &language{env: env, fields: fields, kinds: make(map[string]string, len(fields)), calls: map[string]bool{}, inMaps: inMaps}
	for _, f := range fields {
		l.kinds[f.Path] = f.Type
	}
	for _, c := range calls {
		l.calls[c] = true
	}
	return l
}

func (l *language) paths() []string {
	out := make([]string, len(l.fields))
	for i, f := range l.fields {
		out[i] = f.Path
	}
	return out
}

// meterLanguage is the meters': one API call.
var meterLanguage = newLanguage(Env{}, Fields, nil, "metadata", "company", "user", "request.headers", "response.headers")
