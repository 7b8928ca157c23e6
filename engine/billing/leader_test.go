package billing_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
)

// messages records a worker's log messages.
type messages struct {
	mu   sync.Mutex
	msgs []string
}

func (m *messages) Enabled(context.Context, slog.Level) bool { return true }
func (m *messages) WithAttrs([]slog.Attr) slog.Handler       { return m }
func (m *messages) WithGroup(string) slog.Handler            { return m }
func (m *messages) Handle(_ context.Context, r slog.Record) error {
	m.mu.Lock()
	m.msgs = append(m.msgs, r.Message)
	m.mu.Unlock()
	return nil
}

func (m *messages) count(msg string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.msgs {
		if s == msg {
			n++
		}
	}
	return n
}

// Two workers running on one store: only the older runs cycles, the
// other stands by, and takes over once the older stops. Both bill right.
func TestOneWorkerRunsTheCycles(t *testing.T) {
	const interval = 200 * time.Millisecond // live for 600 ms: slack for a loaded CI machine
	for name, openStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st, _ := openStore(t)
			w := newWorldClock(t, st, billing.ModeUsageRecords, true)
			items, want := setUp(t, w, billing.ModeUsageRecords)
			run := func(id string) (*messages, context.CancelFunc, chan struct{}) {
				log := &messages{}
				wk := &billing.Worker{Store: st, ID: id, Interval: interval, Logger: slog.New(log), Timeout: 2 * time.Second,
					Retry: billing.Retry{Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond}}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { defer close(done); wk.Run(ctx) }()
				t.Cleanup(func() { cancel(); <-done })
				return log, cancel, done
			}
			// A worker that crashed two days ago left its mark: the first
			// worker to start removes it.
			if err := st.Beat(t.Context(), "20261128T000000.000000Z/crashed/9", time.Now().Add(-48*time.Hour)); err != nil {
				t.Fatal(err)
			}
			older, stopOlder, olderDone := run("20261130T000000.000000Z/a/1")
			waitFor(t, "the older worker's first cycle", func() bool { return older.count("billing cycle") > 0 })
			waitFor(t, "the stale mark to be removed", func() bool {
				all, err := st.LiveWorkers(t.Context(), time.Time{})
				return err == nil && len(all) == 1 && all[0].Worker == "20261130T000000.000000Z/a/1"
			})
			newer, _, _ := run("20261130T000001.000000Z/b/2")
			waitFor(t, "the newer worker to stand by", func() bool { return newer.count("billing: standby; another worker runs the cycles") > 0 })
			cycles := older.count("billing cycle")
			waitFor(t, "three more cycles of the older worker", func() bool { return older.count("billing cycle") >= cycles+3 })
			if n := newer.count("billing cycle"); n != 0 {
				t.Fatalf("the standby worker ran %d cycles while the older one led", n)
			}
			stopOlder()
			<-olderDone
			waitFor(t, "the stopped worker's mark to be retired", func() bool {
				live, err := st.LiveWorkers(t.Context(), time.Time{})
				return err == nil && len(live) == 1 && live[0].Worker == "20261130T000001.000000Z/b/2"
			})
			waitFor(t, "the newer worker to take over", func() bool { return newer.count("billing cycle") > 0 })
			if newer.count("billing: this worker runs the cycles") != 1 {
				t.Fatalf("the newer worker's messages: %v", newer.msgs)
			}
			for _, co := range []string{"acme", "globex"} {
				if got, exp := w.billed(billing.ModeUsageRecords, items, co), want(co); got != exp || exp == 0 {
					t.Fatalf("Stripe bills %s %d, the backtest says %d", co, got, exp)
				}
			}
		})
	}
}

// The deadline is generous for a loaded CI machine.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
