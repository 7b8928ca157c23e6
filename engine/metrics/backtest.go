package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// backtest: meters run by the engine for the API.
type backtest struct {
	latency   *prometheus.HistogramVec // source, engine
	fallbacks *prometheus.CounterVec   // source
	errors    *prometheus.CounterVec   // source
}

// Sources of backtests (the source label).
const (
	SourceBacktest = "backtest" // POST /v1/backtest: an unsaved meter
	SourceUsage    = "usage"    // a saved meter's usage: /v1/meters/{id}/usage, OpenMeter's meter query
)

func (m *backtest) register(reg *prometheus.Registry) {
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meterd_backtest_duration_seconds",
		Help: "Time of a backtest that answered, by source (backtest, usage) and the engine that answered (sql, vm).", Buckets: queryBuckets},
		[]string{"source", "engine"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_backtest_fallbacks_total",
		Help: "Backtests the VM answered because SQL could not answer exactly (engine auto), by source."}, []string{"source"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_backtest_errors_total",
		Help: "Backtests that failed (store errors, timeouts, engine sql refusing), by source."}, []string{"source"})
	reg.MustRegister(m.latency, m.fallbacks, m.errors)
}

// Backtest records one engine run: the engine that answered and whether
// it was a fallback, or its failure.
func (s *Set) Backtest(source, engine string, fallback bool, took time.Duration, err error) {
	if s == nil {
		return
	}
	if err != nil {
		s.backtest.errors.WithLabelValues(source).Inc()
		return
	}
	s.backtest.latency.WithLabelValues(source, engine).Observe(took.Seconds())
	if fallback {
		s.backtest.fallbacks.WithLabelValues(source).Inc()
	}
}
