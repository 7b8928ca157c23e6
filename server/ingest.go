package server

import (
	"context"
	"errors"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

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
	return s.ingestEvents(c, func(body []byte) ([]storage.Event, *wire.Error) {
		return wire.DecodeMoesifEvents(body, s.limits())
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
		return apiError(http.StatusUnsupportedMediaType, wire.CodeUnsupportedMediaType,
			"Content-Type must be application/cloudevents+json, application/cloudevents-batch+json (structured mode) or application/json, got "+strconvQuote(ct))
	}
	return s.ingestEvents(c, func(body []byte) ([]storage.Event, *wire.Error) {
		return wire.DecodeCloudEvents(body, b, s.limits())
	})
}

// ingestEvents reads, decodes and validates the whole body, stamps each
// event with its user's and company's current traits, and answers only
// after the group commit holding the events returned.
func (s *Server) ingestEvents(c echo.Context, decode func([]byte) ([]storage.Event, *wire.Error)) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	body, err := readBody(c, s.cfg.MaxBodyBytes)
	if err != nil {
		release()
		return err
	}
	events, werr := decode(body)
	release()
	if werr != nil {
		return werr
	}
	for i := range events {
		e := &events[i]
		s.profiles.stamp(e)
		if e.Flat != nil {
			e.Flat.Headers = e.HeaderCols() // here, in parallel, not in the writer
		}
	}
	res, err := s.writer.Submit(c.Request().Context(), events)
	if err != nil {
		return s.writeError(err)
	}
	// Moesif agents re-fetch /v1/config when this differs from theirs: a
	// change of governance reaches them with their next batch.
	c.Response().Header().Set("X-Moesif-Config-ETag", s.gov.current().ETag)
	return c.JSON(http.StatusOK, ingestResult{Accepted: res.Inserted, Duplicates: res.Duplicates})
}

// writeError maps a failed write: overload and store trouble are worth a
// retry (Retry-After); nothing was acknowledged either way.
func (s *Server) writeError(err error) error {
	switch {
	case errors.Is(err, ingest.ErrOverloaded):
		return retryAfter{apiError(http.StatusServiceUnavailable, "overloaded",
			"the ingest queue is full; retry after the delay in Retry-After"), 1}
	case errors.Is(err, ingest.ErrClosed):
		return retryAfter{apiError(http.StatusServiceUnavailable, "shutting_down", "meterd is shutting down; retry"), 5}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apiError(499, "canceled", "the request was canceled before its events were committed; retry (duplicates are dropped)")
	}
	s.cfg.Logger.Error("store write failed", "err", err)
	return retryAfter{apiError(http.StatusServiceUnavailable, "store_unavailable",
		"the event store failed; nothing of this request was stored: "+err.Error()), 5}
}

func (s *Server) postProfiles(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		release, err := s.acquire()
		if err != nil {
			return err
		}
		defer release()
		body, err := readBody(c, s.cfg.MaxBodyBytes)
		if err != nil {
			return err
		}
		ps, werr := wire.DecodeProfiles(body, kind, s.limits())
		if werr != nil {
			return werr
		}
		// Stored first, cached after: the cache never holds what the store
		// lost.
		if err := s.cfg.Store.PutProfiles(c.Request().Context(), ps); err != nil {
			return s.writeError(err)
		}
		s.profiles.add(ps)
		return c.JSON(http.StatusOK, ingestResult{Accepted: len(ps)})
	}
}
