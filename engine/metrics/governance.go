package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// webhook: Stripe's deliveries.
type webhook struct {
	deliveries *prometheus.CounterVec // type, result
}

func (m *webhook) register(reg *prometheus.Registry) {
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_webhook_deliveries_total",
		Help: "Stripe webhook deliveries, by event type (unknown until the signature verifies) and result (received, duplicate, or the error code: invalid_signature, invalid_json, invalid_event, not_configured, ...)."},
		[]string{"type", "result"})
	reg.MustRegister(m.deliveries)
}

// Webhook counts a delivery. typ is the event's type, "" before its
// signature verified.
func (s *Set) Webhook(typ, result string) {
	if s == nil {
		return
	}
	if typ == "" {
		typ = "unknown"
	}
	s.webhook.deliveries.WithLabelValues(typ, result).Inc()
}

// governance: the rounds that evaluate the rules, and whom they hold for.
type governance struct {
	rounds   *prometheus.CounterVec // result
	duration prometheus.Histogram
	rules    atomic.Pointer[func() []RuleCustomers]
}

// RuleCustomers is how many customers an active rule holds for in the
// last round (blocked, for a blocking rule).
type RuleCustomers struct {
	Rule      string
	Block     bool
	Customers int
}

var ruleCustomersDesc = prometheus.NewDesc("meterd_governance_rule_customers",
	"Customers an active governance rule holds for in the last round, by rule id and whether it blocks their calls (block=true) or only adds headers.",
	[]string{"rule", "block"}, nil)

func (m *governance) register(reg *prometheus.Registry) {
	m.rounds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_governance_rounds_total",
		Help: "Governance evaluation rounds, by result (ok; error: the agents keep the last rules)."}, []string{"result"})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meterd_governance_round_duration_seconds",
		Help: "Time of a governance evaluation round.", Buckets: queryBuckets})
	reg.MustRegister(m.rounds, m.duration, m)
}

func (m *governance) Describe(ch chan<- *prometheus.Desc) { ch <- ruleCustomersDesc }

func (m *governance) Collect(ch chan<- prometheus.Metric) {
	f := m.rules.Load()
	if f == nil {
		return
	}
	for _, r := range (*f)() {
		ch <- prometheus.MustNewConstMetric(ruleCustomersDesc, prometheus.GaugeValue, float64(r.Customers), r.Rule, strconv.FormatBool(r.Block))
	}
}

// GovernanceRound records an evaluation round.
func (s *Set) GovernanceRound(took time.Duration, err error) {
	if s == nil {
		return
	}
	s.governance.rounds.WithLabelValues(result(err)).Inc()
	s.governance.duration.Observe(took.Seconds())
}

// WatchGovernance gives the last round's rules and customers, read at
// each scrape.
func (s *Set) WatchGovernance(rules func() []RuleCustomers) {
	if s == nil {
		return
	}
	s.governance.rules.Store(&rules)
}
