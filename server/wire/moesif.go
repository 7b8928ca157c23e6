package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/storage"
)

// MoesifEvent is one API call as Moesif's collector receives it.
type MoesifEvent struct {
	Request        *MoesifRequest  `json:"request"`
	Response       *MoesifResponse `json:"response,omitempty"`
	TransactionID  string          `json:"transaction_id,omitempty"`
	SessionToken   string          `json:"session_token,omitempty"`
	UserID         string          `json:"user_id,omitempty"`
	CompanyID      string          `json:"company_id,omitempty"`
	SubscriptionID string          `json:"subscription_id,omitempty"`
	Direction      string          `json:"direction,omitempty"`
	Weight         *int64          `json:"weight,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
}

// MoesifRequest is the request half of a MoesifEvent.
type MoesifRequest struct {
	Time             json.RawMessage `json:"time"`
	URI              string          `json:"uri"`
	Verb             string          `json:"verb"`
	Headers          Headers         `json:"headers,omitempty"`
	IPAddress        string          `json:"ip_address,omitempty"`
	APIVersion       string          `json:"api_version,omitempty"`
	Body             json.RawMessage `json:"body,omitempty"`
	TransferEncoding string          `json:"transfer_encoding,omitempty"`
	ContentLength    *int64          `json:"content_length,omitempty"`
}

// MoesifResponse is the response half; absent when the call timed out.
type MoesifResponse struct {
	Time             json.RawMessage `json:"time"`
	Status           int32           `json:"status"`
	Headers          Headers         `json:"headers,omitempty"`
	Body             json.RawMessage `json:"body,omitempty"`
	TransferEncoding string          `json:"transfer_encoding,omitempty"`
	ContentLength    *int64          `json:"content_length,omitempty"`
}

// Headers accepts what agents send as header values: strings, numbers and
// booleans (kept as their JSON text) and arrays of those (joined with ", ",
// as HTTP folds repeated headers). Keys are lower-cased.
type Headers map[string]string

// UnmarshalJSON implements json.Unmarshaler.
func (h *Headers) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("headers must be an object of strings")
	}
	out := make(Headers, len(m))
	for k, v := range m {
		s, err := headerValue(v)
		if err != nil {
			return fmt.Errorf("header %q: %v", k, err)
		}
		out[strings.ToLower(k)] = s
	}
	*h = out
	return nil
}

func headerValue(v json.RawMessage) (string, error) {
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case '[':
		var parts []json.RawMessage
		if err := json.Unmarshal(v, &parts); err != nil {
			return "", err
		}
		ss := make([]string, len(parts))
		for i, p := range parts {
			s, err := headerValue(p)
			if err != nil {
				return "", err
			}
			ss[i] = s
		}
		return strings.Join(ss, ", "), nil
	case '{':
		return "", errors.New("must be a string, not an object")
	case 'n':
		return "", nil
	}
	return string(v), nil // number or boolean
}

// DecodeMoesifEvents decodes one event (single) or a JSON array of events.
// Any invalid event rejects the whole body: the caller stores all or none.
func DecodeMoesifEvents(body []byte, single bool, l Limits) ([]storage.Event, *Error) {
	var out []storage.Event
	err := decodeElements(body, single, l.MaxBatch, func(w *MoesifEvent, index *int) *Error {
		e, werr := w.toEvent(l, index)
		if werr != nil {
			return werr
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// typeError explains a json.Unmarshal failure on a well-formed element.
func typeError(err error, index *int) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return badRequest(CodeInvalidType, te.Field, index, "%s must be %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	msg := err.Error()
	field := ""
	if i := strings.Index(msg, "headers"); i >= 0 {
		field = "headers"
	}
	return badRequest(CodeInvalidType, field, index, "%s", strings.TrimPrefix(msg, "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int32", "int64", "int":
		return "an integer"
	case "ptr", "struct", "map":
		return "an object"
	}
	return "a " + goKind
}

func (w *MoesifEvent) toEvent(l Limits, index *int) (storage.Event, *Error) {
	var e storage.Event
	if w.Request == nil {
		return e, badRequest(CodeMissingField, "request", index, "request is required")
	}
	rq := w.Request
	t, err := l.checkTime(rq.Time, "request.time", index)
	if err != nil {
		return e, err
	}
	if rq.URI == "" {
		return e, badRequest(CodeMissingField, "request.uri", index, "request.uri is required")
	}
	if rq.Verb == "" {
		return e, badRequest(CodeMissingField, "request.verb", index, "request.verb is required")
	}
	u, perr := url.Parse(rq.URI)
	if perr != nil {
		return e, badRequest(CodeInvalidValue, "request.uri", index, "request.uri is not a valid URI: %v", perr)
	}
	weight := int64(1)
	if w.Weight != nil {
		if *w.Weight < 1 {
			return e, badRequest(CodeInvalidValue, "weight", index, "weight must be 1 or more (it is 1/sample rate), got %d", *w.Weight)
		}
		weight = *w.Weight
	}
	meta, attrs, merr := objectText(w.Metadata, "metadata", index)
	if merr != nil {
		return e, merr
	}
	host := u.Host
	if host == "" {
		host = rq.Headers["host"]
	}
	e = storage.Event{
		ExternalID: w.TransactionID, Format: storage.FormatMoesif, Time: t, ReceivedAt: l.Now,
		Verb: strings.ToUpper(rq.Verb), URI: rq.URI, Route: routeOf(u), Host: host, IP: rq.IPAddress,
		APIVersion: rq.APIVersion, RequestHeaders: rq.Headers,
		UserID: w.UserID, CompanyID: w.CompanyID, SessionToken: w.SessionToken,
		SubscriptionID: w.SubscriptionID, Direction: w.Direction, Weight: weight, Metadata: meta,
		Flat: &storage.Flat{Meta: attrs},
	}
	if e.RequestSize, err = bodySize(rq.ContentLength, rq.Headers, rq.Body, rq.TransferEncoding, "request", index); err != nil {
		return e, err
	}
	if l.KeepBodies {
		e.RequestBody = string(rq.Body)
	}
	if rs := w.Response; rs != nil {
		rt, terr := parseResponseTime(rs.Time, t, index)
		if terr != nil {
			return e, terr
		}
		if rs.Status < 100 || rs.Status > 999 {
			return e, badRequest(CodeInvalidValue, "response.status", index, "response.status must be an HTTP status (100-999), got %d", rs.Status)
		}
		e.HasResponse, e.ResponseTime, e.Status, e.ResponseHeaders = true, rt, rs.Status, rs.Headers
		e.DurationMs = rt.Sub(t).Milliseconds()
		if e.ResponseSize, err = bodySize(rs.ContentLength, rs.Headers, rs.Body, rs.TransferEncoding, "response", index); err != nil {
			return e, err
		}
		if l.KeepBodies {
			e.ResponseBody = string(rs.Body)
		}
	}
	e.ID = w.TransactionID
	if e.ID == "" {
		e.ID = contentID(&e)
	}
	return e, nil
}

// parseResponseTime reads response.time; absent means the request time.
func parseResponseTime(raw json.RawMessage, reqTime time.Time, index *int) (time.Time, *Error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return reqTime, nil
	}
	t, ok := parseTime(raw)
	if !ok {
		return t, badRequest(CodeInvalidValue, "response.time", index, "response.time must be an ISO 8601 time or unix milliseconds, got %s", clip(raw))
	}
	return t, nil
}

// routeOf is the URI's path without query, "/" when empty.
func routeOf(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	return u.Path
}

// objectText validates that raw is a JSON object (or absent/null) and
// returns its text ("{}" when absent) and its flattened form.
func objectText(raw json.RawMessage, field string, index *int) (string, storage.Attrs, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "{}", storage.Attrs{}, nil
	}
	if raw[0] != '{' {
		return "", storage.Attrs{}, badRequest(CodeInvalidType, field, index, "%s must be a JSON object, got %s", field, kindOf(raw))
	}
	// Flattening is what the store does with it: done here, it refuses what
	// the store would (numbers beyond float64) before one bad event can fail
	// a group commit shared with other requests, and the writer reuses it.
	attrs, err := storage.FlattenJSON(string(raw))
	if err != nil {
		return "", attrs, badRequest(CodeInvalidValue, field, index, "%s: %v", field, err)
	}
	return string(raw), attrs, nil
}

// bodySize: the explicit content_length, else a numeric Content-Length
// header, else the size of the body as sent (base64-decoded when
// transfer_encoding is base64; a JSON body counts as its JSON text).
func bodySize(explicit *int64, h Headers, body json.RawMessage, enc, side string, index *int) (int64, *Error) {
	if explicit != nil {
		if *explicit < 0 {
			return 0, badRequest(CodeInvalidValue, side+".content_length", index, "%s.content_length must not be negative", side)
		}
		return *explicit, nil
	}
	if v, ok := h["content-length"]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
			return n, nil
		}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || string(body) == "null" {
		return 0, nil
	}
	if body[0] != '"' {
		return int64(len(body)), nil
	}
	var s string
	if err := json.Unmarshal(body, &s); err != nil {
		return 0, badRequest(CodeInvalidValue, side+".body", index, "%s.body: %v", side, err)
	}
	if strings.EqualFold(enc, "base64") {
		n, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return 0, badRequest(CodeInvalidValue, side+".body", index, "%s.body is not valid base64 (transfer_encoding is base64)", side)
		}
		return int64(len(n)), nil
	}
	return int64(len(s)), nil
}

// contentID derives an id from everything the event says, so that a client
// retrying a batch without transaction ids sends the same ids again, even if
// it re-serialised the JSON with other key order or time formatting.
func contentID(e *storage.Event) string {
	canon := func(s string) any {
		var v any
		_ = json.Unmarshal([]byte(s), &v) // already validated
		return v
	}
	b, _ := json.Marshal([]any{
		e.Format, e.Time.UnixMilli(), e.Verb, e.URI, e.IP, e.APIVersion, e.RequestHeaders, e.RequestSize,
		e.HasResponse, e.ResponseTime.UnixMilli(), e.Status, e.ResponseHeaders, e.ResponseSize,
		e.UserID, e.CompanyID, e.SessionToken, e.SubscriptionID, e.Direction, e.Weight, canon(e.Metadata),
	})
	sum := sha256.Sum256(b)
	return "mh_" + hex.EncodeToString(sum[:16])
}

// EncodeMoesif renders an event as the Moesif JSON an agent would send
// (bodies are sent as their sizes through content_length).
func EncodeMoesif(e storage.Event) ([]byte, error) {
	w := MoesifEvent{
		Request: &MoesifRequest{
			Time: timeJSON(e.Time), URI: e.URI, Verb: e.Verb, Headers: e.RequestHeaders,
			IPAddress: e.IP, APIVersion: e.APIVersion, ContentLength: &e.RequestSize,
		},
		TransactionID: e.ExternalID, SessionToken: e.SessionToken, UserID: e.UserID, CompanyID: e.CompanyID,
		SubscriptionID: e.SubscriptionID, Direction: e.Direction, Weight: &e.Weight,
		Metadata: json.RawMessage(e.Metadata),
	}
	if e.Metadata == "" {
		w.Metadata = nil
	}
	if e.HasResponse {
		w.Response = &MoesifResponse{Time: timeJSON(e.ResponseTime), Status: e.Status,
			Headers: e.ResponseHeaders, ContentLength: &e.ResponseSize}
	}
	return json.Marshal(w)
}

func timeJSON(t time.Time) json.RawMessage {
	return json.RawMessage(`"` + t.UTC().Format("2006-01-02T15:04:05.000Z") + `"`)
}
