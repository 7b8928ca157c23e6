package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ingest: what the ingestion endpoints take, refuse and hold.
type ingest struct {
	events                                   *prometheus.CounterVec   // format, result
	rejected                                 *prometheus.CounterVec   // route, status, code
	latency                                  *prometheus.HistogramVec // route
	queued, queuedLimit, memory, memoryLimit watched
}

func (m *ingest) register(reg *prometheus.Registry) {
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_ingest_events_total",
		Help: "Events of committed ingestion requests, by wire format (moesif, cloudevents) and result (accepted: stored; duplicate: an identity already stored)."},
		[]string{"format", "result"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_ingest_rejected_requests_total",
		Help: "Ingestion requests answered with an error (a batch is all or nothing), by route, HTTP status and error code; 429 and 503 are overload."},
		[]string{"route", "status", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meterd_ingest_request_duration_seconds",
		Help: "Time from an ingestion request's arrival to its answer (after the group commit for accepted events), by route.", Buckets: requestBuckets},
		[]string{"route"})
	reg.MustRegister(m.events, m.rejected, m.latency)
	gaugeFunc(reg, "meterd_ingest_queued_events", "Events decoded and waiting for the group commit.", &m.queued)
	gaugeFunc(reg, "meterd_ingest_queued_events_limit", "Queued events past which new ingestion requests get 503 (--max-queued-events).", &m.queuedLimit)
	gaugeFunc(reg, "meterd_ingest_memory_bytes", "Bytes of the ingest memory held by request bodies and queued events.", &m.memory)
	gaugeFunc(reg, "meterd_ingest_memory_limit_bytes", "The ingest memory (--ingest-memory): past it requests get 429.", &m.memoryLimit)
}

// Formats of ingested events (the format label).
const (
	FormatMoesif      = "moesif"
	FormatCloudEvents = "cloudevents"
)

// IngestEvents counts the events of a committed request.
func (s *Set) IngestEvents(format string, accepted, duplicates int) {
	if s == nil {
		return
	}
	s.ingest.events.WithLabelValues(format, "accepted").Add(float64(accepted))
	s.ingest.events.WithLabelValues(format, "duplicate").Add(float64(duplicates))
}

// IngestRequest records an ingestion request's latency, and its refusal
// when code is not empty. route is the registered route, not the URL.
func (s *Set) IngestRequest(route string, status int, code string, took time.Duration) {
	if s == nil {
		return
	}
	s.ingest.latency.WithLabelValues(route).Observe(took.Seconds())
	if code != "" {
		s.ingest.rejected.WithLabelValues(route, strconv.Itoa(status), code).Inc()
	}
}

// WatchIngest gives the queue's and the memory's readings and limits,
// read at each scrape.
func (s *Set) WatchIngest(queued func() int, queuedLimit int, memory func() int64, memoryLimit int64) {
	if s == nil {
		return
	}
	s.ingest.queued.set(func() float64 { return float64(queued()) })
	s.ingest.queuedLimit.set(func() float64 { return float64(queuedLimit) })
	s.ingest.memory.set(func() float64 { return float64(memory()) })
	s.ingest.memoryLimit.set(func() float64 { return float64(memoryLimit) })
}
