package server

import (
	"net/http"
	"runtime"
	"runtime/metrics"

	"github.com/labstack/echo/v4"
)

// runtimeStats shows what bounds memory under load: the Go heap, the
// events queued for the group commit, the bodies being decoded and the
// ingest memory held (bodies and queued events). (The process RSS also
// holds the store's own cache, e.g. DuckDB's buffer pool.) It reads
// runtime/metrics, not runtime.ReadMemStats, which stops the world: the
// benchmarks sample it every 100 ms under load.
func (s *Server) runtimeStats(c echo.Context) error {
	sample := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/total:bytes"},
	}
	metrics.Read(sample)
	return c.JSON(http.StatusOK, map[string]any{
		"go_heap_inuse_bytes": sample[0].Value.Uint64() + sample[1].Value.Uint64(),
		"go_sys_bytes":        sample[2].Value.Uint64(),
		"goroutines":          runtime.NumGoroutine(),
		"queued_events":       s.writer.Queued(),
		"max_queued_events":   s.cfg.MaxQueuedEvents,
		"decoding_requests":   len(s.decoding),
		"max_decoding":        s.cfg.MaxInflight,
		"ingest_memory_bytes": s.budget.Used(),
		"ingest_memory_peak":  s.budget.Peak(),
		"max_ingest_memory":   s.budget.Limit(),
		"refused": map[string]int64{"at_admission": s.refused.admission.Load(),
			"while_reading": s.refused.reading.Load(), "after_decoding": s.refused.decoding.Load()},
	})
}
