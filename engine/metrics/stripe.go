package metrics

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stripe: each request meterd makes to Stripe's API (every attempt).
type stripe struct {
	latency *prometheus.HistogramVec // operation
	errors  *prometheus.CounterVec   // operation, code
}

func (m *stripe) register(reg *prometheus.Registry) {
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meterd_stripe_request_duration_seconds",
		Help: "Time of a request to Stripe until its answer's headers (every attempt), by operation.", Buckets: stripeBuckets},
		[]string{"operation"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meterd_stripe_request_errors_total",
		Help: "Requests to Stripe that failed, by operation and code: the HTTP status of an error answer, or network (no answer: timeout, refused connection)."},
		[]string{"operation", "code"})
	reg.MustRegister(m.latency, m.errors)
}

// stripeOperations name Stripe's endpoints meterd calls (the operation
// label); any other path is "other", so that ids never become labels.
var stripeOperations = []struct {
	name string
	path *regexp.Regexp
}{
	{"meter_events", regexp.MustCompile(`/v1/billing/meter_events$`)},
	{"usage_records", regexp.MustCompile(`/v1/subscription_items/[^/]+/usage_records$`)},
	{"prices", regexp.MustCompile(`/v1/prices/[^/]+$`)},
	{"billing_meters", regexp.MustCompile(`/v1/billing/meters/[^/]+$`)},
	{"balance", regexp.MustCompile(`/v1/balance$`)},
	{"customers", regexp.MustCompile(`/v1/customers(/[^/]+)?$`)},
	{"subscriptions", regexp.MustCompile(`/v1/subscriptions(/[^/]+)?$`)},
	{"invoices", regexp.MustCompile(`/v1/invoices(/[^/]+)?$`)},
}

func stripeOperation(path string) string {
	for _, op := range stripeOperations {
		if op.path.MatchString(path) {
			return op.name
		}
	}
	return "other"
}

// StripeTransport wraps base (nil: http.DefaultTransport) to time and
// count every request to Stripe; on a nil Set it is base.
func (s *Set) StripeTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if s == nil {
		return base
	}
	return stripeTransport{base: base, m: &s.billing.stripe}
}

type stripeTransport struct {
	base http.RoundTripper
	m    *stripe
}

func (t stripeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	op := stripeOperation(r.URL.Path)
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	switch {
	case err != nil:
		t.m.errors.WithLabelValues(op, "network").Inc()
	case resp.StatusCode >= 400:
		t.m.errors.WithLabelValues(op, strconv.Itoa(resp.StatusCode)).Inc()
	}
	return resp, err
}
