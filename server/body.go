package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/server/ingest"
	"github.com/meterd/meterd/server/wire"
)

// readBody reads a request body, gunzipping it if asked: at most max bytes
// after decompression (a gzip bomb is cut off at the cap), within
// BodyReadTimeout, each chunk counted on hold before it is allocated
// (past the ingest memory: 429, nothing waits).
func (s *Server) readBody(c echo.Context, max int64, hold *ingest.Hold) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > max && !isGzip(r) {
		return nil, s.refuse(c, wire.TooLarge(max))
	}
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout)) // unsupported only in tests' recorders
	var src io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if isTimeout(err) {
			return nil, s.refuse(c, s.bodyTimeout())
		}
		if err != nil {
			return nil, fault.Invalid(wire.CodeInvalidJSON, "", "Content-Encoding is gzip but the body is not gzip data: "+err.Error())
		}
		defer zr.Close()
		src = zr
	default:
		return nil, s.refuse(c, fault.New(http.StatusUnsupportedMediaType, wire.CodeUnsupportedEncoding,
			"Content-Encoding "+strconv.Quote(enc)+" is not supported: send gzip or no encoding"))
	}
	size := int64(firstChunk)
	if r.ContentLength > 0 && !isGzip(r) {
		size = min(r.ContentLength+1, maxChunk) // +1: the end shows without another chunk
	}
	var chunks [][]byte
	var total, charged int64
	for {
		size = min(size, max+1-total)
		if !hold.Grow(readCost * size) {
			return nil, s.refuse(c, s.noMemory(hold, readCost*size, &s.refused.reading))
		}
		charged += readCost * size
		buf := make([]byte, size)
		n, eof, err := fill(src, buf)
		total += int64(n)
		chunks = append(chunks, buf[:n])
		switch {
		case total > max:
			return nil, s.refuse(c, wire.TooLarge(max))
		case isTimeout(err):
			return nil, s.refuse(c, s.bodyTimeout())
		case err != nil:
			return nil, fault.Invalid(wire.CodeInvalidJSON, "", "could not read the request body: "+err.Error())
		}
		if eof {
			break
		}
		size = min(2*size, maxChunk)
	}
	// Read whole: the deadline must not cut the wait for the commit (the
	// server watches the connection for a client going away).
	_ = rc.SetReadDeadline(time.Time{})
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	body := bytes.Join(chunks, nil) // the chunks become garbage: counted once
	hold.Shrink(charged - readCost*total)
	return body, nil
}

// fill reads into buf until it is full or the body ends.
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (s *Server) bodyTimeout() error {
	return fault.New(http.StatusRequestTimeout, "request_timeout",
		"the request body did not arrive within "+s.cfg.BodyReadTimeout.String()+"; send it faster or in smaller batches")
}

func isGzip(r *http.Request) bool {
	enc := strings.ToLower(r.Header.Get("Content-Encoding"))
	return strings.Contains(enc, "gzip")
}

// smallBody reads a small body (admin and webhook requests) under the
// ingest memory like any other; done gives its share back.
func (s *Server) smallBody(c echo.Context, max int64) (body []byte, done func(), err error) {
	hold, err := s.admit(c, false)
	if err != nil {
		return nil, nil, err
	}
	if body, err = s.readBody(c, max, hold); err != nil {
		hold.Release()
		return nil, nil, err
	}
	return body, hold.Release, nil
}
