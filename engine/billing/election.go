package billing

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/meterd/meterd/storage"
)

// liveFor is how many intervals a worker's last mark keeps it live: a
// stopped leader is replaced within that, and a slow store or a long
// cycle (the marks come from their own goroutine) does not lose the lead.
const liveFor = 3

// beat marks the worker alive every half interval until ctx ends.
func (w *Worker) beat(ctx context.Context, interval time.Duration) {
	for {
		if err := w.Store.Beat(ctx, w.ID, w.now()); err != nil && ctx.Err() == nil {
			w.log().Error("billing: cannot mark this worker alive", "err", err)
		}
		if err := w.clock().Sleep(ctx, interval/2); err != nil {
			return
		}
	}
}

// staleMark is how old a mark must be for pruneMarks to remove it.
const staleMark = 24 * time.Hour

// pruneMarks removes the marks of workers not seen for a day: a process
// that crashed leaves its mark behind.
func (w *Worker) pruneMarks(ctx context.Context) {
	all, err := w.Store.LiveWorkers(ctx, time.Time{})
	if err != nil {
		return // the next start prunes
	}
	for _, b := range all {
		if b.At.Before(w.now().Add(-staleMark)) {
			if err := w.Store.Retire(ctx, b.Worker); err != nil {
				w.log().Error("billing: cannot remove a stale worker mark", "worker", b.Worker, "err", err)
			}
		}
	}
}

// leads says whether this worker is the oldest live one on the store,
// the one that runs the cycles, and names that one. Two workers may
// overlap for a cycle while one starts or stops; that is safe (idempotency
// keys, meter event identifiers), one leader just avoids doing it all
// twice. Without an answer from the store the worker runs the cycle.
func (w *Worker) leads(ctx context.Context, interval time.Duration) (bool, string, error) {
	now := w.now()
	if err := w.Store.Beat(ctx, w.ID, now); err != nil {
		return true, w.ID, err
	}
	live, err := LiveWorkers(ctx, w.Store, now, interval)
	if err != nil || len(live) == 0 {
		return true, w.ID, err
	}
	return live[0].Worker == w.ID, live[0].Worker, nil
}

// LiveWorkers lists the workers live on st at now, oldest (the leader)
// first, for workers whose cycles are interval apart.
func LiveWorkers(ctx context.Context, st storage.Store, now time.Time, interval time.Duration) ([]storage.WorkerBeat, error) {
	return st.LiveWorkers(ctx, now.Add(-liveFor*interval))
}

// newWorkerID is the start time (sortable), host and process id.
func newWorkerID(start time.Time) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%s/%d", start.UTC().Format("20060102T150405.000000Z"), host, os.Getpid())
}
