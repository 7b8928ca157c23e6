package server

import (
	"mime"
	"net/http"
	"time"
	"unsafe"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/server/ingest"
	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
)

// ingestResult is the success body of every ingestion endpoint.
type ingestResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

func (s *Server) limits() wire.Limits {
	return wire.Limits{Now: s.cfg.Now().UTC(), MaxAge: s.cfg.MaxEventAge, MaxSkew: s.cfg.MaxClockSkew,
		MaxBatch: s.cfg.MaxBatchEvents, KeepBodies: s.cfg.KeepBodies}
}

func (s *Server) postMoesifEvents(c echo.Context) error {
	return s.ingestEvents(c, metrics.FormatMoesif, func(body []byte, l wire.Limits) ([]storage.Event, *fault.Error) {
		return wire.DecodeMoesifEvents(body, l)
	})
}

func (s *Server) postCloudEvents(c echo.Context) error {
	ct, _, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	var b wire.CloudEventsBody
	switch ct {
	case "application/cloudevents+json":
		b = wire.StructuredEvent
	case "application/cloudevents-batch+json":
		b = wire.EventBatch
	case "application/json": // OpenMeter's: one event or an array
		b = wire.EventOrBatch
	default:
		return fault.New(http.StatusUnsupportedMediaType, wire.CodeUnsupportedMediaType,
			"Content-Type must be application/cloudevents+json, application/cloudevents-batch+json (structured mode) or application/json, got "+strconvQuote(ct))
	}
	return s.ingestEvents(c, metrics.FormatCloudEvents, func(body []byte, l wire.Limits) ([]storage.Event, *fault.Error) {
		return wire.DecodeCloudEvents(body, b, l)
	})
}

// errMemoryFull stops a decode whose events do not fit in the ingest
// memory; it is answered as errNoMemory.
var errMemoryFull = &fault.Error{Code: "memory_full"}

// eventSize is an event's struct, for the unused room of a decoded batch.
var eventSize = int64(unsafe.Sizeof(storage.Event{}))

// ingestEvents admits the request (or refuses it at once), reads, decodes
// and validates the whole body, stamps each event with its user's and
// company's current traits, and answers only after the group commit
// holding the events returned. The ingest memory holds the body from its
// first byte and the events until they leave the queue.
func (s *Server) ingestEvents(c echo.Context, format string, decode func([]byte, wire.Limits) ([]storage.Event, *fault.Error)) error {
	hold, err := s.admit(c, true)
	if err != nil {
		return err
	}
	defer func() { hold.Release() }() // nil once the writer has it
	body, err := s.readBody(c, s.cfg.MaxBodyBytes, hold)
	if err != nil {
		return err
	}
	release, err := s.decodeSlot(c)
	if err != nil {
		return err
	}
	l := s.limits()
	// The events use the room counted for them while the body was read,
	// then whatever more they need must fit.
	credit := (readCost - keepCost) * int64(len(body))
	var short int64 // what did not fit
	l.OnEvent = func(e *storage.Event) *fault.Error {
		n := ingest.EventBytes(e)
		if n <= credit {
			credit -= n
			return nil
		}
		if n -= credit; !hold.Grow(n) {
			short = n
			return errMemoryFull
		}
		credit = 0
		return nil
	}
	events, werr := decode(body, l)
	release()
	switch {
	case werr == errMemoryFull:
		return s.noMemory(hold, short, &s.refused.decoding)
	case werr != nil:
		return werr
	}
	// What the events did not use goes back; the batch's unused room is
	// allocated already.
	hold.Shrink(credit)
	hold.Force(int64(cap(events)-len(events)) * eventSize)
	if n := s.profiles.stampAll(events); !hold.Grow(n) {
		return s.noMemory(hold, n, &s.refused.decoding)
	}
	for i := range events {
		if e := &events[i]; e.Flat != nil {
			e.Flat.Headers = e.HeaderCols() // here, in parallel, not in the writer
		}
	}
	held := hold
	hold = nil
	res, err := s.writer.Submit(c.Request().Context(), events, held)
	if err != nil {
		return writeFailed(err)
	}
	// Moesif agents re-fetch /v1/config when this differs from theirs: a
	// change of governance reaches them with their next batch.
	c.Response().Header().Set("X-Moesif-Config-ETag", s.gov.current().ETag)
	s.metrics.IngestEvents(format, res.Inserted, res.Duplicates)
	return c.JSON(http.StatusOK, ingestResult{Accepted: res.Inserted, Duplicates: res.Duplicates})
}

// ingestMetrics times an ingestion request and counts its refusal by
// status and code (docs/operations.md, "Metrics"). It goes before the
// credentials check, so that refused credentials count too.
func (s *Server) ingestMetrics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status, code := c.Response().Status, ""
		if err != nil {
			fe, _ := answerOf(err, "")
			status, code = fe.Status, fe.Code
		}
		s.metrics.IngestRequest(c.Path(), status, code, time.Since(start))
		return err
	}
}

func (s *Server) postProfiles(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		hold, err := s.admit(c, false)
		if err != nil {
			return err
		}
		defer hold.Release()
		body, err := s.readBody(c, s.cfg.MaxBodyBytes, hold)
		if err != nil {
			return err
		}
		release, err := s.decodeSlot(c)
		if err != nil {
			return err
		}
		// Decoding copies each profile's metadata and raw JSON: counted
		// in readCost.
		ps, werr := wire.DecodeProfiles(body, kind, s.limits())
		release()
		if werr != nil {
			return werr
		}
		// Stored first, cached after: the cache never holds what the store
		// lost.
		if err := s.cfg.Store.PutProfiles(c.Request().Context(), ps); err != nil {
			return writeFailed(err)
		}
		s.profiles.add(ps)
		return c.JSON(http.StatusOK, ingestResult{Accepted: len(ps)})
	}
}
