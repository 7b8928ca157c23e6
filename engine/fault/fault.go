// Package fault is meterd's one error type: what a client did wrong or
// what could not be done, machine-readable (Code) and for people
// (Message), where (Field, Index, Line, Column) and the HTTP status it
// answers with. Every package makes its errors with it, and the server
// maps them to HTTP in one place (server/errors.go). It imports nothing
// of meterd, so that every layer, rules and storage included, may use it.
package fault

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Error is one error. Its JSON is the API's error body:
// {code, message, field, index} (line, column and snippet for a problem
// in an expression).
type Error struct {
	// Status is the HTTP status it answers with.
	Status int `json:"-"`
	// Code is machine-readable (docs/api.md, "Errors"); Message says for
	// people what is wrong, naming the field and position.
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field is the JSON path of the offending field (or the query
	// parameter, or header), when there is one.
	Field string `json:"field,omitempty"`
	// Index is the offending item's position in a batch; nil for a
	// single object.
	Index *int `json:"index,omitempty"`
	// Line and Column (1-based, in characters) position a problem in an
	// expression; Snippet shows its line with a caret under Column.
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Snippet string `json:"snippet,omitempty"`
	// RetryAfter is the seconds to wait before retrying (the Retry-After
	// header); 0: none.
	RetryAfter int `json:"-"`
	// Cause is what failed inside (a store's or a library's error), or
	// a refusal's kind and the error behind it (for errors.Is and
	// errors.As). It is never answered; a 5xx's is logged with the
	// request id.
	Cause error `json:"-"`
}

// Error says where and what: "filter:1:10: unknown field ..." for a
// problem in an expression, else "code: message".
func (e *Error) Error() string {
	if e.Line > 0 {
		return e.Field + ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

// Unwrap is the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Cause }

// New is an error answered with status.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Invalid is a 400: the request is wrong at field ("" for the whole of
// it).
func Invalid(code, field, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: message, Field: field}
}

// NotFound is a 404.
func NotFound(code, message string) *Error { return New(http.StatusNotFound, code, message) }

// Conflict is a 409: the request is valid, but the state it would change
// refuses it (field may be "").
func Conflict(code, field, message string) *Error {
	return &Error{Status: http.StatusConflict, Code: code, Message: message, Field: field}
}

// As finds the *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// List is every problem found in one request (a meter or rule definition
// that does not compile), in field order. It answers as its first
// error, with all of them listed in "errors".
type List []*Error

func (l List) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// AsList finds a non-empty List in err's chain.
func AsList(err error) (List, bool) {
	var l List
	ok := errors.As(err, &l) && len(l) > 0
	return l, ok
}
