package server

import (
	"net/http"
	"runtime"

	"github.com/labstack/echo/v4"
)

// runtimeStats shows what bounds memory under load: the Go heap, the
// events queued for the group commit, the bodies being decoded and the
// ingest memory held (bodies and queued events). (The
// process RSS also holds the store's own cache, e.g. DuckDB's buffer pool.)
func (s *Server) runtimeStats(c echo.Context) error {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return c.JSON(http.StatusOK, map[string]any{
		"go_heap_inuse_bytes": m.HeapInuse,
		"go_sys_bytes":        m.Sys,
		"goroutines":          runtime.NumGoroutine(),
		"queued_events":       s.writer.Queued(),
		"max_queued_events":   s.cfg.MaxQueuedEvents,
		"decoding_requests":   len(s.decoding),
		"max_decoding":        s.cfg.MaxInflight,
		"ingest_memory_bytes": s.budget.Used(),
		"ingest_memory_peak":  s.budget.Peak(),
		"max_ingest_memory":   s.budget.Limit(),
	})
}
