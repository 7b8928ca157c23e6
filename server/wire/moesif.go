package wire

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/storage"
)

// MoesifEvent is one API call as Moesif's collector receives it (the
// fields meterd reads; others are validated as JSON and ignored).
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
	// BlockedBy is the id of the governance rule whose answer the agent
	// sent instead of calling the app.
	BlockedBy string `json:"blocked_by,omitempty"`
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

// Headers are HTTP headers with lower-case keys. On the wire, values may
// also be numbers, booleans or arrays (see scanner.headers).
type Headers map[string]string

// DecodeMoesifEvents decodes one event or a JSON array of events (both
// /v1/events and /v1/events/batch take either).
// Any invalid event rejects the whole body: the caller stores all or none.
// The events' strings share one copy of body (see scanner); body itself is
// not retained.
func DecodeMoesifEvents(body []byte, l Limits) ([]storage.Event, *fault.Error) {
	out := make([]storage.Event, 0, estimateEvents(body, l.MaxBatch))
	var scratch []byte
	err := decodeElements(body, objectOrArray, l.MaxBatch, func(s *scanner) *fault.Error {
		var w MoesifEvent
		if err := s.moesifEvent(&w); err != nil {
			return err
		}
		e, err := w.toEvent(l, s, &scratch)
		if err != nil {
			return err
		}
		out = append(out, e)
		return l.onEvent(&out[len(out)-1])
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// estimateEvents guesses a batch's length from its size (an agent's event
// is rarely under 300 bytes), to allocate the result once.
func estimateEvents(body []byte, max int) int {
	return min(len(body)/300+1, max)
}

func (s *scanner) moesifEvent(w *MoesifEvent) *fault.Error {
	return s.object(func(key []byte) *fault.Error {
		var err *fault.Error
		switch string(fold(key)) {
		case "request":
			var ok bool
			if ok, err = s.objectStart("request"); ok {
				if w.Request == nil {
					w.Request = &MoesifRequest{}
				}
				err = s.moesifRequest(w.Request)
			}
		case "response":
			var ok bool
			if ok, err = s.objectStart("response"); ok {
				if w.Response == nil {
					w.Response = &MoesifResponse{}
				}
				err = s.moesifResponse(w.Response)
			}
		case "transaction_id":
			err = s.strField(&w.TransactionID, "transaction_id")
		case "session_token":
			err = s.strField(&w.SessionToken, "session_token")
		case "user_id":
			err = s.strField(&w.UserID, "user_id")
		case "company_id":
			err = s.strField(&w.CompanyID, "company_id")
		case "subscription_id":
			err = s.strField(&w.SubscriptionID, "subscription_id")
		case "direction":
			err = s.strField(&w.Direction, "direction")
		case "weight":
			var v int64
			var ok bool
			if v, ok, err = s.intField("weight", 64); ok {
				w.Weight = &v
			}
		case "metadata":
			w.Metadata, err = s.skip()
		case "blocked_by":
			err = s.strField(&w.BlockedBy, "blocked_by")
		default:
			_, err = s.skip()
		}
		return err
	})
}

func (s *scanner) moesifRequest(r *MoesifRequest) *fault.Error {
	return s.object(func(key []byte) *fault.Error {
		var err *fault.Error
		switch string(fold(key)) {
		case "time":
			r.Time, err = s.skip()
		case "uri":
			err = s.strField(&r.URI, "request.uri")
		case "verb":
			err = s.strField(&r.Verb, "request.verb")
		case "headers":
			r.Headers, err = s.headers("request.headers")
		case "ip_address":
			err = s.strField(&r.IPAddress, "request.ip_address")
		case "api_version":
			err = s.strField(&r.APIVersion, "request.api_version")
		case "body":
			r.Body, err = s.skip()
		case "transfer_encoding":
			err = s.strField(&r.TransferEncoding, "request.transfer_encoding")
		case "content_length":
			r.ContentLength, err = s.optInt("request.content_length")
		default:
			_, err = s.skip()
		}
		return err
	})
}

func (s *scanner) moesifResponse(r *MoesifResponse) *fault.Error {
	return s.object(func(key []byte) *fault.Error {
		var err *fault.Error
		switch string(fold(key)) {
		case "time":
			r.Time, err = s.skip()
		case "status":
			var v int64
			v, _, err = s.intField("response.status", 32)
			r.Status = int32(v)
		case "headers":
			r.Headers, err = s.headers("response.headers")
		case "body":
			r.Body, err = s.skip()
		case "transfer_encoding":
			err = s.strField(&r.TransferEncoding, "response.transfer_encoding")
		case "content_length":
			r.ContentLength, err = s.optInt("response.content_length")
		default:
			_, err = s.skip()
		}
		return err
	})
}

func (s *scanner) optInt(field string) (*int64, *fault.Error) {
	v, ok, err := s.intField(field, 64)
	if !ok {
		return nil, err
	}
	return &v, err
}

func (w *MoesifEvent) toEvent(l Limits, s *scanner, scratch *[]byte) (storage.Event, *fault.Error) {
	var e storage.Event
	index := s.index
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
	meta, attrs, merr := objectText(s, w.Metadata, "metadata")
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
		BlockedBy: w.BlockedBy, Flat: &storage.Flat{Meta: attrs},
	}
	if e.RequestSize, err = bodySize(s, rq.ContentLength, rq.Headers, rq.Body, rq.TransferEncoding, "request"); err != nil {
		return e, err
	}
	if l.KeepBodies {
		e.RequestBody = s.text(rq.Body)
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
		if e.ResponseSize, err = bodySize(s, rs.ContentLength, rs.Headers, rs.Body, rs.TransferEncoding, "response"); err != nil {
			return e, err
		}
		if l.KeepBodies {
			e.ResponseBody = s.text(rs.Body)
		}
	}
	e.ID = w.TransactionID
	if e.ID == "" {
		e.ID = contentID(s, &e, w, scratch)
	}
	return e, nil
}

// parseResponseTime reads response.time; absent means the request time.
func parseResponseTime(raw json.RawMessage, reqTime time.Time, index *int) (time.Time, *fault.Error) {
	if isAbsent(raw) {
		return reqTime, nil
	}
	t, ok := parseTime(raw)
	if !ok {
		return t, badRequest(CodeInvalidValue, "response.time", index, "response.time must be an ISO 8601 time or unix milliseconds, got %s", clip(raw))
	}
	return t, nil
}

func isAbsent(raw []byte) bool { return len(raw) == 0 || string(raw) == "null" }

// routeOf is the URI's path without query, "/" when empty.
func routeOf(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	return u.Path
}

// objectText checks that raw (validated JSON) is an object, or absent or
// null, and returns its text ("{}" when absent) and its flattened form.
func objectText(s *scanner, raw json.RawMessage, field string) (string, storage.Attrs, *fault.Error) {
	index := s.index
	if isAbsent(raw) {
		return "{}", storage.Attrs{}, nil
	}
	if raw[0] != '{' {
		return "", storage.Attrs{}, badRequest(CodeInvalidType, field, index, "%s must be a JSON object, got %s", field, kindOf(raw))
	}
	// Flattening is what the store does with it: done here, it refuses what
	// the store would (numbers beyond float64) before one bad event can fail
	// a group commit shared with other requests, and the writer reuses it.
	sub := s.at(raw)
	attrs, err := flattenObject(&sub)
	var le *limitError
	switch {
	case errors.As(err, &le):
		return "", attrs, newError(le.status, le.code, field, index, "%s: %s", field, le.msg)
	case err != nil:
		return "", attrs, badRequest(CodeInvalidValue, field, index, "%s: %v", field, err)
	}
	return s.text(raw), attrs, nil
}

// bodySize: the explicit content_length, else a numeric Content-Length
// header, else the size of the body as sent (base64-decoded when
// transfer_encoding is base64; a JSON body counts as its JSON text).
func bodySize(sc *scanner, explicit *int64, h Headers, body json.RawMessage, enc, side string) (int64, *fault.Error) {
	index := sc.index
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
	if isAbsent(body) {
		return 0, nil
	}
	if body[0] != '"' {
		return int64(len(body)), nil
	}
	sub := sc.at(body)
	s := sub.strOrEmpty()
	if strings.EqualFold(enc, "base64") {
		n, err := base64Len(s)
		if err != nil {
			return 0, badRequest(CodeInvalidValue, side+".body", index, "%s.body is not valid base64 (transfer_encoding is base64)", side)
		}
		return int64(n), nil
	}
	return int64(len(s)), nil
}

// strOrEmpty reads a string the scanner already validated.
func (s *scanner) strOrEmpty() string {
	v, _ := s.str()
	return v
}

// base64Len is the decoded length of standard base64 (padding optional,
// line breaks ignored), checking every character without decoding.
func base64Len(s string) (int, error) {
	s = strings.TrimRight(s, "=")
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
			n++
		case c == '\r', c == '\n':
		default:
			return 0, base64.CorruptInputError(i)
		}
	}
	if n%4 == 1 {
		return 0, base64.CorruptInputError(len(s))
	}
	return base64.RawStdEncoding.DecodedLen(n), nil
}

// contentID derives an id from everything the event says, so that a client
// retrying a batch without transaction ids sends the same ids again, even
// re-serialised with other key order, spacing or time spelling. Bodies are
// part of it (two calls differing only in their body are two events).
func contentID(s *scanner, e *storage.Event, w *MoesifEvent, scratch *[]byte) string {
	b := (*scratch)[:0]
	str := func(v string) { b = appendString(b, v) }
	num := func(v int64) { b = binary.AppendVarint(b, v) }
	headers := func(h map[string]string) {
		var arr [16]string
		keys := arr[:0]
		for k := range h {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		num(int64(len(keys)))
		for _, k := range keys {
			str(k)
			str(h[k])
		}
	}
	body := func(raw []byte) {
		if isAbsent(raw) {
			b = append(b, 0)
			return
		}
		sub := s.at(raw)
		b = appendCanonical(append(b, 1), &sub)
	}
	str(e.Format)
	num(e.Time.UnixMilli())
	str(e.Verb)
	str(e.URI)
	str(e.IP)
	str(e.APIVersion)
	// Sizes as sent, not as computed: a computed size follows the body's
	// spelling, and the body itself is hashed canonically.
	size := func(n *int64) {
		if n == nil {
			num(-1)
			return
		}
		num(*n)
	}
	headers(e.RequestHeaders)
	size(w.Request.ContentLength)
	body(w.Request.Body)
	if e.HasResponse {
		b = append(b, 1)
		num(e.ResponseTime.UnixMilli())
		num(int64(e.Status))
		headers(e.ResponseHeaders)
		size(w.Response.ContentLength)
		body(w.Response.Body)
	} else {
		b = append(b, 0)
	}
	str(e.UserID)
	str(e.CompanyID)
	str(e.SessionToken)
	str(e.SubscriptionID)
	str(e.Direction)
	num(e.Weight)
	body(w.Metadata)
	if e.BlockedBy != "" { // only then: the ids of calls not blocked stay what they were
		str(e.BlockedBy)
	}
	*scratch = b
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
		Metadata: json.RawMessage(e.Metadata), BlockedBy: e.BlockedBy,
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
