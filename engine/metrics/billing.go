package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// billing: the Stripe billing worker's cycles and reports.
type billing struct {
	cycles        *prometheus.CounterVec // result
	cycleDuration prometheus.Histogram
	reports       *prometheus.CounterVec // status
	leader        prometheus.Gauge
	stripe
	// reported is when the last cycle that brought every closed hour up
	// to date began (unix ns; 0: none yet), on the clock of clock.
	reported atomic.Int64
	clock    atomic.Pointer[func() time.Time]
}

func (m *billing) register(reg *prometheus.Registry) {
	m.cycles = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_billing_cycles_total",
		Help: "Billing cycles, by result (ok; error: the cycle stopped, retried next interval; not_configured: Stripe is not set up)."},
		[]string{"result"})
	m.cycleDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meterd_billing_cycle_duration_seconds",
		Help: "Time of a billing cycle that ran (ok or error).", Buckets: cycleBuckets})
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_billing_reports_total",
		Help: "Report ledger entries the worker wrote, by status (pending: an intent before its request; sent, failed, rejected: the answer; late, not_billed, needs_adjustment, needs_review: listed for a person)."},
		[]string{"status"})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "meterd_billing_leader",
		Help: "1 while this process's billing worker runs the cycles, 0 while it stands by."})
	reg.MustRegister(m.cycles, m.cycleDuration, m.reports, m.leader)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meterd_billing_lag_seconds",
		Help: "Seconds the oldest closed hour no completed billing cycle has reported has been closed: 0 while all are, up to about the billing interval just after each hour, growing while cycles fail or stop. 0 on a standby worker and before the first cycle."},
		m.lag))
	m.stripe.register(reg)
}

// BillingCycle records a cycle that began at start (on the worker's
// clock, now) and took took; configured is false when Stripe is not set
// up (nothing to do). A cycle without error has reported every closed
// hour before start; so has one with nothing to report.
func (s *Set) BillingCycle(now func() time.Time, start time.Time, took time.Duration, err error, configured bool) {
	if s == nil {
		return
	}
	m := &s.billing
	m.clock.Store(&now)
	switch {
	case !configured:
		m.cycles.WithLabelValues("not_configured").Inc()
		m.reported.Store(start.UnixNano())
		return
	case err == nil:
		m.reported.Store(start.UnixNano())
	default:
		// Failing from the first cycle on: the lag counts from then.
		m.reported.CompareAndSwap(0, start.UnixNano())
	}
	m.cycles.WithLabelValues(result(err)).Inc()
	m.cycleDuration.Observe(took.Seconds())
}

// BillingLeader records whether the worker runs the cycles. A standby
// worker has nothing of its own that lags: its leader's process shows
// the lag.
func (s *Set) BillingLeader(lead bool, now time.Time) {
	if s == nil {
		return
	}
	if lead {
		s.billing.leader.Set(1)
		return
	}
	s.billing.leader.Set(0)
	s.billing.reported.Store(now.UnixNano())
}

// BillingReport counts a ledger entry written with status.
func (s *Set) BillingReport(status string) {
	if s == nil {
		return
	}
	s.billing.reports.WithLabelValues(status).Inc()
}

// lag is how long the oldest hour that closed after the last covering
// cycle began has been waiting: a cycle beginning at t reports the hours
// that ended by t.
func (m *billing) lag() float64 {
	clock, at := m.clock.Load(), m.reported.Load()
	if clock == nil || at == 0 {
		return 0
	}
	next := time.Unix(0, at).Truncate(time.Hour).Add(time.Hour) // the first hour it did not cover ended then
	return max(0, (*clock)().Sub(next).Seconds())
}
