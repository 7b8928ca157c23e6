package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/server/wire"
)

// apiError is an error answered as the JSON body {code, message, field,
// index}, the one error shape of the whole API.
func apiError(status int, code, message string) *wire.Error {
	return &wire.Error{Status: status, Code: code, Message: message}
}

func fieldError(code, field, message string) *wire.Error {
	return &wire.Error{Status: http.StatusBadRequest, Code: code, Message: message, Field: field}
}

// retryAfter marks errors whose answer carries a Retry-After header.
type retryAfter struct {
	err     *wire.Error
	seconds int
}

func (r retryAfter) Error() string { return r.err.Error() }
func (r retryAfter) Unwrap() error { return r.err }

// readError maps a failed store read: nothing changed, and a retry may
// answer (Retry-After).
func (s *Server) readError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return apiError(499, "canceled", "the client went away")
	case errors.Is(err, context.DeadlineExceeded):
		return apiError(http.StatusGatewayTimeout, "timeout", "the store took too long to answer; narrow the window")
	}
	s.cfg.Logger.Error("store read failed", "err", err)
	return retryAfter{apiError(http.StatusServiceUnavailable, "store_unavailable",
		"the event store failed to answer; retry: "+err.Error()), 5}
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var re ruleErrorsBody
	if errors.As(err, &re) {
		_ = c.JSON(http.StatusBadRequest, re)
		return
	}
	we, retry, internal := answerOf(err)
	if internal {
		s.cfg.Logger.Error("request failed", "path", c.Path(), "err", err)
	}
	if retry > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(retry))
	}
	answerError(c, we)
}

// answerOf is what err answers: its status, code and message, the
// seconds of its Retry-After (0: none), and whether no handler mapped it
// (internal, worth logging).
func answerOf(err error) (we *wire.Error, retry int, internal bool) {
	var ra retryAfter
	var he *echo.HTTPError
	var re ruleErrorsBody
	switch {
	case errors.As(err, &re):
		return fieldError(re.Code, re.Field, re.Message), 0, false
	case errors.As(err, &ra):
		return ra.err, ra.seconds, false
	case errors.As(err, &we):
		return we, 0, false
	case errors.As(err, &he):
		we = apiError(he.Code, httpCode(he.Code), http.StatusText(he.Code))
		if msg, ok := he.Message.(string); ok {
			we.Message = msg
		}
		return we, 0, false
	}
	return apiError(http.StatusInternalServerError, "internal", "internal error: "+err.Error()), 0, true
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
