package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
)

// Handlers return errors; handleError answers them. answerOf is the one
// place an error becomes a status, code and message (docs/architecture.md,
// "Errors"): a fault.Error answers as itself, a few errors of other
// packages as their meaning, and anything else is internal: its text is
// logged with the request id, never answered.

// storeCall marks the error of a store call a handler made: a failure is
// then the store's (503 store_unavailable, with Retry-After) rather than
// internal, and the answer says whether anything was stored.
type storeCall struct {
	err   error
	write bool
}

func (s storeCall) Error() string { return s.err.Error() }
func (s storeCall) Unwrap() error { return s.err }

// readFailed marks the error of a store read: nothing changed, and a
// retry may answer.
func readFailed(err error) error { return storeCall{err: err} }

// writeFailed marks the error of a store write: nothing of the request
// was acknowledged.
func writeFailed(err error) error { return storeCall{err: err, write: true} }

// answerOf is what err answers, in the request id's request: its
// status, code, message and Retry-After, and for a definition with
// several problems all of them (list). The answer's Cause, when set, is
// what must be logged (and never answered).
func answerOf(err error, requestID string) (fe *fault.Error, list fault.List) {
	if l, ok := fault.AsList(err); ok {
		return l[0], l
	}
	if fe, ok := fault.As(err); ok {
		return fe, nil
	}
	var call storeCall
	store := errors.As(err, &call)
	var he *echo.HTTPError
	switch {
	case errors.Is(err, billing.ErrSecretKey): // meterd's own advice, not a library's text
		return fault.New(http.StatusInternalServerError, "secret_key", err.Error()+
			"; or PUT /v1/billing/stripe with both api_key and webhook_secret to replace them"), nil
	case backtest.NotExact(err): // says which construct of the meter SQL cannot answer
		return &fault.Error{Status: http.StatusUnprocessableEntity, Code: "not_translatable", Field: "engine",
			Message: "engine sql cannot answer this exactly: " + err.Error() + " (use engine auto or vm)"}, nil
	case errors.As(err, &he) && he.Code < http.StatusInternalServerError:
		fe = fault.New(he.Code, httpCode(he.Code), http.StatusText(he.Code))
		if msg, ok := he.Message.(string); ok {
			fe.Message = msg
		}
		return fe, nil
	case (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && call.write:
		return fault.New(499, "canceled", "the request was canceled before its events were committed; retry (duplicates are dropped)"), nil
	case errors.Is(err, context.Canceled):
		return fault.New(499, "canceled", "the client went away"), nil
	case errors.Is(err, context.DeadlineExceeded):
		return fault.New(http.StatusGatewayTimeout, "timeout", "the store took too long to answer; narrow the window"), nil
	case call.write:
		return &fault.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable", RetryAfter: 5, Cause: err,
			Message: "the event store failed; nothing of this request was stored"}, nil
	case store || errors.Is(err, storage.ErrUnavailable):
		return &fault.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable", RetryAfter: 5, Cause: err,
			Message: "the event store failed to answer; retry"}, nil
	}
	return &fault.Error{Status: http.StatusInternalServerError, Code: "internal", Cause: err,
		Message: "internal error; request id " + requestID}, nil
}

// handleError is Echo's error handler: it logs what failed inside, with
// the request id, and answers the error.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	id := requestID(c)
	fe, list := answerOf(err, id)
	if fe.Cause != nil && fe.Status >= http.StatusInternalServerError { // a refusal's cause is the client's doing
		msg := "request failed"
		var call storeCall
		switch {
		case errors.As(err, &call) && call.write:
			msg = "store write failed"
		case errors.As(err, &call):
			msg = "store read failed"
		}
		r := c.Request()
		s.cfg.Logger.Error(msg, "request_id", id, "method", r.Method, "path", r.URL.Path,
			"status", fe.Status, "code", fe.Code, "err", fe.Cause)
	}
	if fe.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(fe.RetryAfter))
	}
	body := errorBody{Error: fe, RequestID: id}
	if list != nil {
		top := *fe
		top.Snippet = "" // in errors, with the rest
		body.Error, body.Errors = &top, list
	}
	answerError(c, fe.Status, body)
}

// errorBody is an error answer: {code, message, field, index}, every
// problem of a definition that has several (the first at the top), and
// the request id (also in the X-Request-Id header).
type errorBody struct {
	*fault.Error
	Errors    fault.List `json:"errors,omitempty"`
	RequestID string     `json:"request_id"`
}

func httpCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusRequestEntityTooLarge:
		return wire.CodeBodyTooLarge
	}
	return "http_" + strconv.Itoa(status)
}
