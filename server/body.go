package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/server/ingest"
	"github.com/meterd/meterd/server/wire"
)

// What a request holds of the ingest memory budget (docs/operations.md,
// "Memory"), besides its decoded events.
const (
	// requestOverhead: its goroutine, buffers and request structures.
	requestOverhead = 32 << 10
	// gzipOverhead: a gzip reader's state and window.
	gzipOverhead = 64 << 10
	// readCost per byte of body (after decompression), counted as the
	// bytes arrive: the bytes read, the copy that decoded events point
	// into (wire's scanner), as much again for strings decoding copies
	// out of it (escapes, lower-cased header names), and room for the
	// events decoded from it: their structs, header maps and columns,
	// flattened metadata come to 3–4 bytes per byte of a typical event's
	// JSON. Counting it all up front is what lets a request be refused
	// before it is read rather than after it was decoded.
	readCost = 6
	// keepCost per byte of body is what stays counted after decoding,
	// besides the events' own estimate (ingest.EventBytes): the copy and
	// the strings copied out of it.
	keepCost = 2
	// Bodies are read in chunks, each counted before it is allocated:
	// from firstChunk, doubling up to maxChunk.
	firstChunk, maxChunk = 4 << 10, 64 << 10
)

// admit decides, before anything of the body is read, whether a request
// may go on: the group-commit queue has room (when queue; else 503) and
// the ingest memory has room for the request and its declared body (else
// 429). It returns the request's hold on the ingest memory; the caller
// releases it (or hands it to the writer).
func (s *Server) admit(c echo.Context, queue bool) (*ingest.Hold, error) {
	if queue {
		if err := s.writer.Admit(); err != nil {
			s.refused.admission.Add(1)
			return nil, s.refuse(c, s.writeError(err))
		}
	}
	r := c.Request()
	n := int64(requestOverhead)
	if isGzip(r) {
		n += gzipOverhead
	}
	need := n
	if r.ContentLength > 0 && !isGzip(r) {
		need += readCost * min(r.ContentLength, s.cfg.MaxBodyBytes)
	}
	var hold *ingest.Hold
	if s.budget.Free() >= need {
		hold = s.budget.Hold(n)
	}
	if hold == nil {
		s.refused.admission.Add(1)
		return nil, s.refuse(c, errNoMemory())
	}
	return hold, nil
}

// errNoMemory is the answer when the ingest memory is full.
func errNoMemory() error {
	return retryAfter{apiError(http.StatusTooManyRequests, "overloaded",
		"meterd holds as many request bodies and queued events as its memory bound allows; retry after the delay in Retry-After"), 1}
}

// refusals counts the requests refused for overload, by when: at
// admission (before the body is read), or later, when the memory ran out
// while the body arrived or was decoded (GET /v1/debug/runtime).
type refusals struct{ admission, reading, decoding atomic.Int64 }

// noMemory answers a request whose next n bytes did not fit: 429 while
// others hold the memory (counted in when), 413 when the request alone
// needs more than all of it (a retry would never fit).
func (s *Server) noMemory(hold *ingest.Hold, n int64, when *atomic.Int64) error {
	if need := hold.Held() + n; need > s.budget.Limit() {
		return apiError(http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge, fmt.Sprintf(
			"this request needs more than %d bytes of memory once decoded (its events, their headers, metadata and profile traits), more than --ingest-memory allows (%d); send smaller batches",
			need, s.budget.Limit()))
	}
	when.Add(1)
	return errNoMemory()
}

// refuse answers err without waiting for (the rest of) the body. Before
// answering, net/http reads what is left of a body of at most 256 KB, to
// keep the connection (and closes it, unread, past that): the deadline
// keeps a slow client from delaying the answer by more than refuseGrace,
// and its connection is then closed.
func (s *Server) refuse(c echo.Context, err error) error {
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(refuseGrace))
	return err
}

// refuseGrace is the most a refusal waits for a slow client.
const refuseGrace = 100 * time.Millisecond

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
			return nil, fieldError(wire.CodeInvalidJSON, "", "Content-Encoding is gzip but the body is not gzip data: "+err.Error())
		}
		defer zr.Close()
		src = zr
	default:
		return nil, s.refuse(c, apiError(http.StatusUnsupportedMediaType, wire.CodeUnsupportedEncoding,
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
			return nil, fieldError(wire.CodeInvalidJSON, "", "could not read the request body: "+err.Error())
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
	return apiError(http.StatusRequestTimeout, "request_timeout",
		"the request body did not arrive within "+s.cfg.BodyReadTimeout.String()+"; send it faster or in smaller batches")
}

func isGzip(r *http.Request) bool {
	enc := strings.ToLower(r.Header.Get("Content-Encoding"))
	return strings.Contains(enc, "gzip")
}

// decodeSlot waits for one of the MaxInflight decoding slots: decoding is
// CPU work, and more at once than cores only slows each down. The request
// already holds its body, counted in the ingest memory.
func (s *Server) decodeSlot(c echo.Context) (release func(), err error) {
	ctx := c.Request().Context()
	select {
	case s.decoding <- struct{}{}:
		return func() { <-s.decoding }, nil
	case <-ctx.Done():
		return nil, s.writeError(ctx.Err())
	}
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
