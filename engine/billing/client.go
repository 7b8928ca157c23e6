package billing

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/meterd/meterd/engine/metrics"
)

// NewAPI is a stripe-go client for the settings' key and base URL, with
// stripe-go's own retries off: Client retries (stripe-go v76 does not
// retry ordinary 429s) so that every attempt is paced and logged.
func NewAPI(s Settings, timeout time.Duration) *client.API { return NewObservedAPI(s, timeout, nil) }

// NewObservedAPI is NewAPI with every request timed and its failures
// counted in m (nil: not recorded).
func NewObservedAPI(s Settings, timeout time.Duration, m *metrics.Set) *client.API {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(s.APIBase),
		HTTPClient:        &http.Client{Timeout: timeout, Transport: m.StripeTransport(nil)},
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		EnableTelemetry:   stripe.Bool(false),
	})
	return client.New(s.APIKey, &stripe.Backends{API: b, Connect: b, Uploads: b})
}

// Retry is the backoff policy: attempts with exponential backoff and full
// jitter, on 429, 5xx, 409 (lock) and network errors or timeouts.
type Retry struct {
	Attempts int           // 6 by default
	Base     time.Duration // 500ms by default
	Max      time.Duration // 30s by default
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 6
	}
	if r.Base <= 0 {
		r.Base = 500 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 30 * time.Second
	}
	return r
}

// Retryable reports whether a request that failed may succeed if made
// again: rate limits, Stripe's 5xx, lock conflicts, and anything that is
// not an answer (timeouts, refused connections). A write is made again
// under the same idempotency key, except after a definite 5xx answer,
// which Stripe saves and replays for that key (see definite5xx).
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var se *stripe.Error
	if errors.As(err, &se) {
		return se.HTTPStatusCode == 0 || se.HTTPStatusCode == 429 || se.HTTPStatusCode == 409 || se.HTTPStatusCode >= 500
	}
	return !errors.Is(err, context.Canceled)
}

// Clock is the time that pacing, backoff and the pause between cycles
// wait on: the wall clock unless a test injects a virtual one.
type Clock interface {
	Now() time.Time
	// Sleep waits d (nothing when d <= 0), or until ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Limiter paces requests: at most Rate per second, no bursts.
type Limiter struct {
	clock Clock
	mu    sync.Mutex
	next  time.Time
	gap   time.Duration
}

// NewLimiter makes a limiter of rate requests per second (0: unlimited)
// on clock (nil: the wall clock).
func NewLimiter(rate float64, clock Clock) *Limiter {
	if clock == nil {
		clock = wallClock{}
	}
	l := &Limiter{clock: clock}
	if rate > 0 {
		l.gap = time.Duration(float64(time.Second) / rate)
	}
	return l
}

// Wait blocks until the next request may go.
func (l *Limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	now := l.clock.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.gap)
	l.mu.Unlock()
	return l.clock.Sleep(ctx, at.Sub(now))
}

// definite5xx reports whether Stripe answered with a 5xx: unlike a
// timeout or a network error, an answer Stripe saved under the request's
// idempotency key and replays for 24 h, so the same key keeps failing.
func definite5xx(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.HTTPStatusCode >= 500
}

// pause is the wait before attempt i (from 1): exponential from Base, at
// most Max, with full jitter.
func (r Retry) pause(i int) time.Duration {
	back := r.Base << (i - 1)
	if back > r.Max || back <= 0 {
		back = r.Max
	}
	return rand.N(back) + time.Millisecond
}

// stop ends do's retries with its error: the next attempt needs what call
// cannot change itself (a new idempotency key, see cycle.send).
type stop struct{ error }

// do runs call with pacing and retries; it returns the last error and the
// number of attempts made.
func do(ctx context.Context, l *Limiter, r Retry, call func() error) (int, error) {
	r = r.withDefaults()
	var err error
	for i := 0; i < r.Attempts; i++ {
		if i > 0 {
			if e := l.clock.Sleep(ctx, r.pause(i)); e != nil {
				return i, e
			}
		}
		if e := l.Wait(ctx); e != nil {
			return i, e
		}
		err = call()
		if s, ok := err.(stop); ok {
			return i + 1, s.error
		}
		if err == nil || !Retryable(err) {
			return i + 1, err
		}
	}
	return r.Attempts, err
}
