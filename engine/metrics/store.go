package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// store: the group commit's inserts into the event store.
type store struct {
	latency *prometheus.HistogramVec // result
	rows    prometheus.Counter
}

func (m *store) register(reg *prometheus.Registry) {
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meterd_store_insert_duration_seconds",
		Help: "Time of one group-commit insert into the event store, by result (ok, error).", Buckets: requestBuckets},
		[]string{"result"})
	m.rows = prometheus.NewCounter(prometheus.CounterOpts{Name: "meterd_store_inserted_rows_total",
		Help: "Event rows the group commit stored (duplicates are not stored)."})
	reg.MustRegister(m.latency, m.rows)
}

// StoreInsert records one insert: its time, and the rows it stored.
func (s *Set) StoreInsert(took time.Duration, rows int, err error) {
	if s == nil {
		return
	}
	s.store.latency.WithLabelValues(result(err)).Observe(took.Seconds())
	s.store.rows.Add(float64(rows))
}

// result is the result label of an operation.
func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
