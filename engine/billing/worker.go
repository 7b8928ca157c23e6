package billing

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/storage"
)

// ErrNotConfigured is returned by a cycle before Stripe settings exist.
var ErrNotConfigured = errors.New("billing: Stripe is not configured (PUT /v1/billing/stripe)")

// DefaultInterval is the time between billing cycles unless configured
// (METERD_BILLING_INTERVAL).
const DefaultInterval = time.Minute

// Worker reports usage to Stripe in cycles (docs/billing.md):
//
//  1. resend every intent (a pending ledger entry without outcome) exactly
//     as written, so a crash between writing it and learning Stripe's
//     answer costs nothing: the idempotency key (and a meter event's
//     identifier) make the repeat harmless; a key that holds a definite
//     5xx is renewed first (see send);
//  2. fold the Stripe events into customers and subscriptions;
//  3. for every active meter bound to a price and every subscription item
//     with that price, compute the customer's usage per hour of the
//     period with the backtest engine and report what Stripe lacks.
type Worker struct {
	Store    storage.Store
	Now      func() time.Time // time.Now by default
	Logger   *slog.Logger
	Retry    Retry
	Interval time.Duration // between cycles; DefaultInterval by default
	Timeout  time.Duration // per Stripe request; 30 s by default
	// Grace is how long after a period's end meter events still count
	// for it (Stripe's invoice grace period, 1 h by default).
	Grace time.Duration
	// Clock is what pacing, backoff and the pause between cycles wait on
	// (the wall clock by default; tests inject a virtual one).
	Clock Clock
	// Hours keeps usage per closed hour (engine/hours), so that a cycle
	// recomputes only the hours that changed; nil: one of the worker's own.
	// The process's other users of the store (the API, governance) should
	// share it.
	Hours *hours.Cache
	// Recompute computes every period over all its events in each cycle
	// instead (the reference 'meterd bench billing' and tests compare
	// with).
	Recompute bool
	// ID names this worker among the workers sharing the store (replicas
	// of 'meterd serve', a 'meterd billing' next to them): Run marks it
	// alive and only the oldest live worker runs cycles. Empty: the start
	// time, host and process, so that IDs sort by age.
	ID string
	// Metrics records the cycles, the reports and the Stripe requests
	// (nil: not recorded).
	Metrics *metrics.Set
	// Sealer opens the Stripe secrets in the settings (METERD_SECRET_KEY);
	// nil when they are stored in plain text.
	Sealer *Sealer

	limiter *Limiter
	rate    float64
}

// Stats counts what one cycle did.
type Stats struct {
	Sent, Failed, Rejected, Skipped, Flagged, Replayed, QueryErrors, Unmapped int
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now().UTC()
	}
	return time.Now().UTC()
}

func (w *Worker) clock() Clock {
	if w.Clock != nil {
		return w.Clock
	}
	return wallClock{}
}

func (w *Worker) log() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Run runs cycles until ctx ends, while this worker leads (see leads).
// Errors are logged, never fatal: an outage delays reports until a later
// cycle.
func (w *Worker) Run(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	if w.ID == "" {
		w.ID = newWorkerID(w.now())
	}
	w.pruneMarks(ctx)
	beats, stop := context.WithCancel(ctx)
	beating := make(chan struct{})
	go func() { defer close(beating); w.beat(beats, interval) }()
	defer func() { // let another worker lead at once
		stop()
		<-beating
		retire, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Store.Retire(retire, w.ID); err != nil {
			w.log().Error("billing: cannot retire this worker's mark", "err", err)
		}
	}()
	leader := ""
	for {
		lead, who, err := w.leads(ctx, interval)
		switch {
		case err != nil && ctx.Err() == nil:
			w.log().Error("billing: cannot tell which worker leads; running the cycle", "err", err)
		case who != leader:
			leader = who
			if lead {
				w.log().Info("billing: this worker runs the cycles", "worker", w.ID)
			} else {
				w.log().Info("billing: standby; another worker runs the cycles", "worker", w.ID, "leader", who)
			}
		}
		w.Metrics.BillingLeader(lead, w.now())
		if lead {
			w.runCycle(ctx)
		}
		if err := w.clock().Sleep(ctx, interval); err != nil {
			return nil
		}
	}
}

func (w *Worker) runCycle(ctx context.Context) {
	st, err := w.Cycle(ctx)
	switch {
	case errors.Is(err, ErrNotConfigured):
	case err != nil && ctx.Err() == nil:
		w.log().Error("billing cycle failed", "err", err)
	case err == nil:
		w.log().Info("billing cycle", "sent", st.Sent, "failed", st.Failed, "rejected", st.Rejected,
			"flagged", st.Flagged, "replayed", st.Replayed, "query_errors", st.QueryErrors, "unmapped", st.Unmapped)
	}
}

// Cycle runs one reporting cycle.
func (w *Worker) Cycle(ctx context.Context) (Stats, error) {
	start, began := w.now(), time.Now()
	st, err := w.reportAll(ctx)
	if ctx.Err() == nil { // a cycle cut short by a shutdown is no failure
		w.Metrics.BillingCycle(w.now, start, time.Since(began), err, !errors.Is(err, ErrNotConfigured))
	}
	return st, err
}
