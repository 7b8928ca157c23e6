package billing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// VirtualClock is a Clock that moves only when slept on, and records
// every sleep: pacing and backoff are tested without the wall clock.
type VirtualClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

// NewVirtualClock starts a virtual clock at t.
func NewVirtualClock(t time.Time) *VirtualClock { return &VirtualClock{now: t} }

// Now implements Clock.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep implements Clock: it advances the clock by d at once.
func (c *VirtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		c.mu.Lock()
		c.now = c.now.Add(d)
		c.sleeps = append(c.sleeps, d)
		c.mu.Unlock()
	}
	return nil
}

// Sleeps returns the sleeps so far.
func (c *VirtualClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Requests go at most rate per second, evenly, with no burst after idling.
func TestLimiterPaces(t *testing.T) {
	ctx := context.Background()
	clock := NewVirtualClock(t0)
	l := NewLimiter(4, clock) // one request every 250 ms
	for i := 0; i < 9; i++ {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := clock.Now().Sub(t0), time.Duration(i)*250*time.Millisecond; got != want {
			t.Fatalf("request %d went at %v, want %v", i+1, got, want)
		}
	}
	// Idle for 10 s: the next request goes at once, the one after it a
	// full gap later (no catching up on the idle time).
	clock.Sleep(ctx, 10*time.Second)
	idle := clock.Now()
	l.Wait(ctx)
	l.Wait(ctx)
	if got := clock.Now().Sub(idle); got != 250*time.Millisecond {
		t.Fatalf("two requests after idling took %v, want 250ms", got)
	}
	unlimited := NewVirtualClock(t0)
	u := NewLimiter(0, unlimited)
	for i := 0; i < 100; i++ {
		u.Wait(ctx)
	}
	if len(unlimited.Sleeps()) != 0 {
		t.Fatalf("an unlimited limiter slept %v", unlimited.Sleeps())
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}
}

// Retries: what is retried (429, 409, 5xx, no answer) and what is not
// (4xx, cancellation); backoff exponential with full jitter, capped.
func TestRetryBackoff(t *testing.T) {
	ctx := context.Background()
	r := Retry{Attempts: 5, Base: 100 * time.Millisecond, Max: 300 * time.Millisecond}
	stripeErr := func(status int) error { return &stripe.Error{HTTPStatusCode: status, Msg: "x"} }
	for _, c := range []struct {
		name     string
		errs     []error // the call's answers in turn (nil: success)
		attempts int
		fails    bool
	}{
		{"429 forever", []error{stripeErr(429)}, 5, true},
		{"500 then ok", []error{stripeErr(500), nil}, 2, false},
		{"409 lock then ok", []error{stripeErr(409), nil}, 2, false},
		{"timeout then ok", []error{errors.New("Client.Timeout exceeded"), nil}, 2, false},
		{"400 is final", []error{stripeErr(400)}, 1, true},
		{"404 is final", []error{stripeErr(404)}, 1, true},
		{"cancelled is final", []error{context.Canceled}, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := NewVirtualClock(t0)
			calls := 0
			attempts, err := do(ctx, NewLimiter(0, clock), r, func() error {
				e := c.errs[min(calls, len(c.errs)-1)]
				calls++
				return e
			})
			if attempts != c.attempts || calls != c.attempts || (err != nil) != c.fails {
				t.Fatalf("%d attempts (%d calls), err %v; want %d attempts, failing %v", attempts, calls, err, c.attempts, c.fails)
			}
			sleeps := clock.Sleeps()
			if len(sleeps) != c.attempts-1 {
				t.Fatalf("%d backoff sleeps for %d attempts", len(sleeps), c.attempts)
			}
			for i, d := range sleeps {
				ceiling := min(r.Base<<i, r.Max)
				if d < time.Millisecond || d > ceiling+time.Millisecond {
					t.Fatalf("backoff %d slept %v, want within [1ms, %v]", i+1, d, ceiling+time.Millisecond)
				}
			}
		})
	}
	// Full jitter: the backoffs vary (20 draws of the capped 300 ms are
	// not all equal unless the jitter is gone).
	clock := NewVirtualClock(t0)
	do(ctx, NewLimiter(0, clock), Retry{Attempts: 21, Base: 300 * time.Millisecond, Max: 300 * time.Millisecond},
		func() error { return stripeErr(503) })
	seen := map[time.Duration]bool{}
	for _, d := range clock.Sleeps() {
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 backoffs were all %v: no jitter", clock.Sleeps())
	}
}
