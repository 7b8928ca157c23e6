package server

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/server/ingest"
	"github.com/meterd/meterd/server/wire"
)

// What a request holds of the ingest memory budget (docs/operations.md,
// "Memory and overload"), besides its decoded events.
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
			return nil, s.refuse(c, err)
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
	return &fault.Error{Status: http.StatusTooManyRequests, Code: "overloaded", RetryAfter: 1,
		Message: "meterd holds as many request bodies and queued events as its memory bound allows; retry after the delay in Retry-After"}
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
		return fault.New(http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge, fmt.Sprintf(
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

// decodeSlot waits for one of the MaxInflight decoding slots: decoding is
// CPU work, and more at once than cores only slows each down. The request
// already holds its body, counted in the ingest memory.
func (s *Server) decodeSlot(c echo.Context) (release func(), err error) {
	ctx := c.Request().Context()
	select {
	case s.decoding <- struct{}{}:
		return func() { <-s.decoding }, nil
	case <-ctx.Done():
		return nil, writeFailed(ctx.Err())
	}
}
