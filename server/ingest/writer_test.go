package ingest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/duckdb"
	"github.com/meterd/meterd/storage/eventgen"
)

// recordingStore wraps the real DuckDB store to count inserts, hold them
// at a gate, or fail them (fault injection).
type recordingStore struct {
	storage.Store
	mu    sync.Mutex
	calls int
	gate  chan struct{} // when set, Insert waits for a receive
	fail  error
}

func (r *recordingStore) Insert(ctx context.Context, ev []storage.Event) (storage.InsertResult, error) {
	r.mu.Lock()
	r.calls++
	gate, fail := r.gate, r.fail
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail != nil {
		return storage.InsertResult{}, fail
	}
	return r.Store.Insert(ctx, ev)
}

func newStore(t *testing.T) *recordingStore {
	s, err := duckdb.Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &recordingStore{Store: s}
}

func count(t *testing.T, s storage.Store) int64 {
	st, err := s.Stats(context.Background(), storage.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return st.Count
}

func TestConcurrentSubmitsShareInsertsAndStoreEachEventOnce(t *testing.T) {
	st := newStore(t)
	w := NewWriter(st, 1_000_000, 100_000, nil)
	defer w.Close()
	now := time.Now().UTC()
	events := eventgen.Generate(1, 4000, now.Add(-time.Hour), now)
	const clients = 40
	var wg sync.WaitGroup
	results := make([]storage.InsertResult, clients)
	errs := make([]error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			// Every client sends its own 100 events, and the first 10 of its
			// neighbour's: those are duplicates for exactly one of the two.
			mine := events[c*100 : (c+1)*100]
			next := events[((c+1)%clients)*100 : ((c+1)%clients)*100+10]
			results[c], errs[c] = w.Submit(context.Background(), append(append([]storage.Event{}, mine...), next...), nil)
		}(c)
	}
	wg.Wait()
	accepted, dups := 0, 0
	for c := range results {
		if errs[c] != nil {
			t.Fatalf("client %d: %v", c, errs[c])
		}
		if len(results[c].New) != 110 || results[c].Inserted+results[c].Duplicates != 110 {
			t.Fatalf("client %d: result %+v does not cover its 110 events", c, results[c])
		}
		accepted += results[c].Inserted
		dups += results[c].Duplicates
	}
	if accepted != 4000 || dups != 400 {
		t.Fatalf("accepted %d duplicates %d, want 4000 and 400", accepted, dups)
	}
	if n := count(t, st); n != 4000 {
		t.Fatalf("stored %d, want 4000", n)
	}
	if st.calls >= clients {
		t.Fatalf("%d inserts for %d concurrent requests: no group commit", st.calls, clients)
	}
}

func TestStoreFailureFailsTheWholeRoundAndStoresNothing(t *testing.T) {
	st := newStore(t)
	st.fail = errors.New("disk on fire")
	w := NewWriter(st, 1000, 1000, nil)
	defer w.Close()
	now := time.Now().UTC()
	_, err := w.Submit(context.Background(), eventgen.Generate(2, 10, now.Add(-time.Minute), now), nil)
	if err == nil || err.Error() != "disk on fire" {
		t.Fatalf("Submit error %v, want the store's", err)
	}
	st.fail = nil
	if n := count(t, st); n != 0 {
		t.Fatalf("stored %d after a failed insert", n)
	}
}

// Past maxQueued waiting events, Admit refuses at once, while the insert
// holding the queue is still running; a request admitted before joins the
// queue all the same (its body was read on that promise).
func TestAdmitRefusesFastPastTheQueueBound(t *testing.T) {
	st := newStore(t)
	st.gate = make(chan struct{})
	gate := sync.OnceFunc(func() { close(st.gate) })
	defer gate() // a failure must not leave the writer blocked
	w := NewWriter(st, 50, 50, nil)
	now := time.Now().UTC()
	evs := eventgen.Generate(3, 200, now.Add(-time.Minute), now)
	first := make(chan error, 1)
	go func() { _, err := w.Submit(context.Background(), evs[:40], nil); first <- err }()
	waitFor(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.calls == 1 }) // insert in progress, held
	if err := w.Admit(); err != nil {
		t.Fatalf("admit with an empty queue: %v", err)
	}
	second := make(chan error, 1)
	go func() { _, err := w.Submit(context.Background(), evs[40:90], nil); second <- err }() // queued: 50
	waitFor(t, func() bool { return w.Queued() == 50 })
	if err := w.Admit(); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("admit with 50 queued: %v, want ErrOverloaded", err)
	}
	third := make(chan error, 1)
	go func() { _, err := w.Submit(context.Background(), evs[90:100], nil); third <- err }() // admitted earlier: joins
	waitFor(t, func() bool { return w.Queued() == 60 })
	gate()
	for _, c := range []chan error{first, second, third} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if n := count(t, st); n != 100 {
		t.Fatalf("stored %d, want 100", n)
	}
	if err := w.Admit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("admit after Close: %v", err)
	}
	if _, err := w.Submit(context.Background(), evs[100:101], nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after Close: %v", err)
	}
}

// A request that gives up keeps its events' memory held until they leave
// the queue: they are still in memory, and still get stored.
func TestHoldIsReleasedWhenEventsLeaveTheQueue(t *testing.T) {
	st := newStore(t)
	st.gate = make(chan struct{})
	gate := sync.OnceFunc(func() { close(st.gate) })
	w := NewWriter(st, 1000, 1000, nil)
	defer w.Close()
	defer gate() // a failure must not leave the writer blocked
	b := NewBudget(1 << 20)
	now := time.Now().UTC()
	evs := eventgen.Generate(4, 20, now.Add(-time.Minute), now)
	h := b.Hold(1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := w.Submit(ctx, evs, h); done <- err }()
	waitFor(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.calls == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled submit: %v", err)
	}
	if b.Used() != 1000 {
		t.Fatalf("%d bytes held after the request gave up, want 1000 until the insert ends", b.Used())
	}
	gate()
	waitFor(t, func() bool { return b.Used() == 0 })
	if n := count(t, st); n != 20 {
		t.Fatalf("stored %d, want 20", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}
