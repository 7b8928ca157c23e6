// Package metrics is meterd's Prometheus metrics (docs/operations.md,
// "Metrics"). A Set owns its registry and every metric: a process makes
// one and hands it to the server and the billing worker, and tests make
// one per server, so that servers in one test binary never share
// counters. Every method does nothing on a nil Set, for the callers run
// without metrics (meterd billing --once, tests of other packages).
//
// Labels are bounded: routes, status codes, error codes, engines, report
// statuses, Stripe operations and event types, governance rule ids;
// never customers or event ids.
package metrics

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Set is one process's metrics.
type Set struct {
	reg *prometheus.Registry
	ingest
	store
	backtest
	billing
	webhook
	governance
}

// Bucket bounds of the latency histograms, in seconds.
var (
	requestBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	queryBuckets   = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	stripeBuckets  = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	cycleBuckets   = []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
)

// New makes a Set with its own registry, which also holds the Go
// runtime's and the process's standard metrics (go_*, process_*).
func New() *Set {
	s := &Set{reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.ingest.register(s.reg)
	s.store.register(s.reg)
	s.backtest.register(s.reg)
	s.billing.register(s.reg)
	s.webhook.register(s.reg)
	s.governance.register(s.reg)
	return s
}

// Handler serves the metrics in Prometheus's text format (or what the
// scraper negotiates).
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})
}

// Gather is the registry's Gatherer (tests read values through it).
func (s *Set) Gather() prometheus.Gatherer { return s.reg }

// watched is a value read at scrape time from whoever set its source
// (0 until then): the ingest queue of a server made after the Set.
type watched struct {
	f atomic.Pointer[func() float64]
}

func (w *watched) set(f func() float64) { w.f.Store(&f) }

func (w *watched) value() float64 {
	if f := w.f.Load(); f != nil {
		return (*f)()
	}
	return 0
}

func gaugeFunc(reg *prometheus.Registry, name, help string, w *watched) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, w.value))
}
