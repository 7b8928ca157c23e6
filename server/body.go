package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/server/wire"
)

// readBody reads a request body, gunzipping it if asked, and refuses more
// than max bytes after decompression without ever holding more than that
// (a gzip bomb is cut off at the cap).
func readBody(c echo.Context, max int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > max && !isGzip(r) {
		return nil, wire.TooLarge(max)
	}
	var src io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fieldError(wire.CodeInvalidJSON, "", "Content-Encoding is gzip but the body is not gzip data: "+err.Error())
		}
		defer zr.Close()
		src = zr
	default:
		return nil, apiError(http.StatusUnsupportedMediaType, wire.CodeUnsupportedEncoding,
			"Content-Encoding "+strconv.Quote(enc)+" is not supported: send gzip or no encoding")
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 && !isGzip(r) {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(src, max+1))
	if err != nil {
		return nil, fieldError(wire.CodeInvalidJSON, "", "could not read the request body: "+err.Error())
	}
	if n > max {
		return nil, wire.TooLarge(max)
	}
	return buf.Bytes(), nil
}

func isGzip(r *http.Request) bool {
	enc := strings.ToLower(r.Header.Get("Content-Encoding"))
	return strings.Contains(enc, "gzip")
}

// acquire takes one of the MaxInflight decoding slots, or answers 429: the
// bound on bodies held in memory at once.
func (s *Server) acquire() (release func(), err error) {
	select {
	case s.inflight <- struct{}{}:
		return func() { <-s.inflight }, nil
	default:
		return nil, retryAfter{apiError(http.StatusTooManyRequests, "overloaded",
			"too many requests are being ingested at once; retry after the delay in Retry-After"), 1}
	}
}
