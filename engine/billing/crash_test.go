package billing_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/storage"
)

// The meterd binary, built once per test process (-count=20 reuses it).
var meterdBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if meterdBin.dir != "" {
		os.RemoveAll(meterdBin.dir)
	}
	os.Exit(code)
}

// buildMeterd builds ./ (package main) into a temporary directory.
func buildMeterd(t *testing.T) string {
	t.Helper()
	meterdBin.once.Do(func() {
		meterdBin.dir, meterdBin.err = os.MkdirTemp("", "meterd-bin-")
		if meterdBin.err != nil {
			return
		}
		meterdBin.path = filepath.Join(meterdBin.dir, "meterd")
		out, err := exec.Command("go", "build", "-o", meterdBin.path, "github.com/meterd/meterd").CombinedOutput()
		if err != nil {
			meterdBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if meterdBin.err != nil {
		t.Fatal(meterdBin.err)
	}
	return meterdBin.path
}

// kill is where a crash lands, at the k-th write (POST) Stripe receives.
type kill struct {
	// phase: "before" Stripe applies the write; "applied": Stripe has it,
	// the answer is never written; "answered": the answer reached meterd,
	// which may or may not have written it to the ledger.
	phase string
	k     int
	// again also kills the restarted process, at its first write (the
	// replay of the intent the first crash left).
	again bool
}

// The worker killed with SIGKILL in the middle of a cycle, at several
// points of a write, and restarted: Stripe ends with exactly the backtest
// of the meter for each customer (rounded up, the meter's rounding), in
// both reporting modes and on both stores. meterd runs as a separate
// process ('meterd billing') on the same store; the test process holds no
// store open while it runs (a DuckDB file has one owner at a time).
func TestCrashAndRestart(t *testing.T) {
	bin := buildMeterd(t)
	// A cycle here makes about 58 writes (two customers, 29 or 30 hours each).
	kills := []kill{{"applied", 1, false}, {"before", 9, false}, {"answered", 23, false}, {"applied", 40, true}, {"before", 50, false}}
	for name, openStore := range stores(t) {
		for _, mode := range []string{billing.ModeMeterEvents, billing.ModeUsageRecords} {
			for _, kl := range kills {
				t.Run(fmt.Sprintf("%s/%s/%s-%d", name, mode, kl.phase, kl.k), func(t *testing.T) {
					st, dsn := openStore(t)
					crashAndRestart(t, bin, st, dsn, mode, kl)
				})
			}
		}
	}
}

func crashAndRestart(t *testing.T, bin string, st storage.Store, dsn, mode string, kl kill) {
	w := newWorldClock(t, st, mode, true)
	items, expected := setUp(t, w, mode)
	want := map[string]int64{}
	for _, co := range []string{"acme", "globex"} {
		if want[co] = expected(co); want[co] == 0 {
			t.Fatalf("no usage for %s: the test measures nothing", co)
		}
	}
	w.release()

	args := []string{"billing", "--store", dsn, "--once"}
	hit := make(chan struct{}, 1)
	w.fake.SetFault(writeTrap(kl, hit))
	startMeterd(t, bin, args...).killAt(t, hit, kl)
	if kl.again {
		w.fake.SetFault(writeTrap(kill{"applied", 1, false}, hit))
		startMeterd(t, bin, args...).killAt(t, hit, kill{"applied", 1, false})
	}
	w.fake.SetFault(nil)
	out := runMeterd(t, bin, args...)
	if replayed := regexp.MustCompile(`Replayed:(\d+)`).FindStringSubmatch(out); replayed == nil ||
		kl.phase != "answered" && replayed[1] != "1" {
		t.Fatalf("the restart should resend the one intent the crash left: %s", out)
	}
	total := func(co string) int64 { return w.billed(mode, items, co) }
	for _, co := range []string{"acme", "globex"} {
		if got := total(co); got != want[co] {
			t.Fatalf("after a kill (%s at write %d) and a restart, Stripe bills %s %d, the backtest says %d\n%s",
				kl.phase, kl.k, co, got, want[co], out)
		}
	}
	if total("") != 0 {
		t.Fatal("the unmapped customer was billed")
	}
	// Settled: another run sends nothing.
	n := posts(w.fake)
	if out := runMeterd(t, bin, args...); posts(w.fake) != n {
		t.Fatalf("a cycle after the restart sent %d more requests: %s", posts(w.fake)-n, out)
	}
	for _, r := range w.fake.Requests() {
		if r.Method == http.MethodPost && r.Status != 200 && r.Status != 500 {
			t.Fatalf("Stripe answered %d to %s (key %s): a replay changed its parameters?", r.Status, r.Path, r.IdempotencyKey)
		}
	}

	// The ledger agrees with Stripe: every request settled as sent, and
	// the sent quantities are what Stripe has.
	st = open(t, dsn)
	rs, err := billing.LoadReports(context.Background(), st, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]billing.Report{}
	for _, r := range rs {
		last[r.Key] = r
	}
	sentBy := map[string]int64{}          // meter events: customer -> sum
	setAt := map[string]map[int64]int64{} // usage records: item -> timestamp -> quantity
	for _, r := range last {
		if r.Status != billing.StatusSent {
			t.Fatalf("a request did not settle as sent: %+v", r)
		}
		if mode == billing.ModeMeterEvents {
			sentBy[r.Customer] += r.Quantity
		}
	}
	for _, r := range rs { // in order: the latest set of a bucket is what Stripe has
		if r.Status == billing.StatusSent && mode == billing.ModeUsageRecords {
			if setAt[r.SubscriptionItem] == nil {
				setAt[r.SubscriptionItem] = map[int64]int64{}
			}
			setAt[r.SubscriptionItem][r.Bucket.Unix()] = r.Quantity
		}
	}
	for _, co := range []string{"acme", "globex"} {
		if mode == billing.ModeMeterEvents {
			if sentBy[co] != total(co) {
				t.Fatalf("the ledger's sent events of %s add up to %d, Stripe has %d", co, sentBy[co], total(co))
			}
			continue
		}
		got := w.fake.Usage(items[co])
		for ts, q := range got {
			if q != 0 && setAt[items[co]][ts] != q {
				t.Fatalf("Stripe has %d at %d for %s, the ledger %d", q, ts, co, setAt[items[co]][ts])
			}
		}
		if len(setAt[items[co]]) != len(got) {
			t.Fatalf("the ledger set %d buckets of %s, Stripe has %d", len(setAt[items[co]]), co, len(got))
		}
	}
}

// child is a running meterd process.
type child struct {
	cmd  *exec.Cmd
	out  bytes.Buffer // stdout and stderr; read it once done is closed
	done chan struct{}
	err  error // Wait's, once done is closed
}

func startMeterd(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	c.cmd.Env = append(os.Environ(), "METERD_DATA_DIR="+t.TempDir())
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// killAt waits for the trap and kills the process with SIGKILL.
func (c *child) killAt(t *testing.T, hit <-chan struct{}, kl kill) {
	t.Helper()
	select {
	case <-hit:
	case <-c.done:
		t.Fatalf("meterd ended (%v) before write %d:\n%s", c.err, kl.k, c.out.String())
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// runMeterd runs meterd to its end; it must succeed.
func runMeterd(t *testing.T, bin string, args ...string) string {
	t.Helper()
	c := startMeterd(t, bin, args...)
	<-c.done
	if c.err != nil {
		t.Fatalf("meterd %s: %v\n%s", strings.Join(args, " "), c.err, c.out.String())
	}
	return c.out.String()
}

// writeTrap fires once, at the k-th POST, at the kill's phase.
func writeTrap(kl kill, hit chan<- struct{}) func(n int, r *http.Request) stripefake.Fault {
	var posts atomic.Int64
	return func(n int, r *http.Request) stripefake.Fault {
		if r.Method != http.MethodPost || posts.Add(1) != int64(kl.k) {
			return stripefake.Fault{}
		}
		signal := func() { hit <- struct{}{} }
		switch kl.phase {
		case "before":
			signal()
			return stripefake.Fault{Status: 500, Hang: time.Hour} // ends when the client dies; nothing applied
		case "applied":
			return stripefake.Fault{Applied: func() { signal(); <-r.Context().Done() }}
		default:
			return stripefake.Fault{Answered: signal}
		}
	}
}
