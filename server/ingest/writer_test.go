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
	w := NewWriter(st, 1_000_000, 100_000)
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
			results[c], errs[c] = w.Submit(context.Background(), append(append([]storage.Event{}, mine...), next...))
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
	w := NewWriter(st, 1000, 1000)
	defer w.Close()
	now := time.Now().UTC()
	_, err := w.Submit(context.Background(), eventgen.Generate(2, 10, now.Add(-time.Minute), now))
	if err == nil || err.Error() != "disk on fire" {
		t.Fatalf("Submit error %v, want the store's", err)
	}
	st.fail = nil
	if n := count(t, st); n != 0 {
		t.Fatalf("stored %d after a failed insert", n)
	}
}

func TestOverloadFailsFastWithBoundedQueue(t *testing.T) {
	st := newStore(t)
	st.gate = make(chan struct{})
	w := NewWriter(st, 50, 50)
	now := time.Now().UTC()
	evs := eventgen.Generate(3, 200, now.Add(-time.Minute), now)
	first := make(chan error, 1)
	go func() { _, err := w.Submit(context.Background(), evs[:40]); first <- err }()
	waitFor(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.calls == 1 }) // insert in progress, held
	second := make(chan error, 1)
	go func() { _, err := w.Submit(context.Background(), evs[40:80]); second <- err }() // queued: 40 <= 50
	waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.queued == 40 })
	if _, err := w.Submit(context.Background(), evs[80:100]); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third submit: %v, want ErrOverloaded (40 queued + 20 > 50)", err)
	}
	close(st.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	w.Close()
	if n := count(t, st); n != 80 {
		t.Fatalf("stored %d, want 80", n)
	}
	if _, err := w.Submit(context.Background(), evs[100:101]); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after Close: %v", err)
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
