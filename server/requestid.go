package server

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/labstack/echo/v4"
)

// Every request has an id, in its answer's X-Request-Id header and in
// every error answer: the log line of a failure carries it, so that an
// operator finds what a client saw. A client's own X-Request-Id (a
// proxy's, say) is kept when it is a short token; else meterd makes one:
// this process's random prefix and a counter (unique, and cheap on the
// ingestion path).

// maxRequestID is the longest X-Request-Id taken from a client.
const maxRequestID = 128

var (
	requestIDPrefix = func() string {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b) + "-"
	}()
	requestIDCount atomic.Uint64
)

// withRequestID gives the request its id (before routing: unknown routes
// have one too).
func withRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = requestIDPrefix + strconv.FormatUint(requestIDCount.Add(1), 36)
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// requestID is the id withRequestID gave the request.
func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// validRequestID: 1 to maxRequestID characters of A-Z a-z 0-9 - _ . : /
// (what proxies and tracing headers use), nothing that could forge a log
// line or a header.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_', b == '.', b == ':', b == '/':
		default:
			return false
		}
	}
	return true
}
