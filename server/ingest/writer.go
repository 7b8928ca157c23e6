// Package ingest is the group-commit writer between the HTTP handlers and
// the store: concurrent requests share one Store.Insert, and each request
// is answered only after the insert holding its events committed.
package ingest

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/storage"
)

// Errors Admit and Submit return without storing anything: both are
// worth a retry (Retry-After).
var (
	ErrOverloaded = &fault.Error{Status: http.StatusServiceUnavailable, Code: "overloaded",
		Message: "the ingest queue is full; retry after the delay in Retry-After", RetryAfter: 1}
	ErrClosed = &fault.Error{Status: http.StatusServiceUnavailable, Code: "shutting_down",
		Message: "meterd is shutting down; retry", RetryAfter: 5}
)

// Writer serialises inserts: one goroutine takes everything pending, up to
// MaxRound events, and inserts it as one batch.
type Writer struct {
	store     storage.Store
	metrics   *metrics.Set
	maxQueued int
	maxRound  int

	mu      sync.Mutex
	pending []*submission
	queued  int // events in pending
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

type submission struct {
	events []storage.Event
	hold   *Hold
	res    storage.InsertResult
	err    error
	done   chan struct{}
}

// NewWriter starts a writer. maxQueued bounds the events waiting (see
// Admit); maxRound bounds one insert. m (may be nil) records the inserts.
func NewWriter(store storage.Store, maxQueued, maxRound int, m *metrics.Set) *Writer {
	w := &Writer{store: store, metrics: m, maxQueued: maxQueued, maxRound: maxRound,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

// Admit says whether a new request may join the queue: ErrOverloaded while
// maxQueued events or more wait, ErrClosed after Close. The server asks
// before reading a request's body, so that a refusal never waits; a
// request admitted joins even if the queue filled meanwhile (the server's
// memory budget bounds how many are on their way).
func (w *Writer) Admit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return ErrClosed
	case w.queued >= w.maxQueued:
		return ErrOverloaded
	}
	return nil
}

// Submit queues events and waits until they are committed (or failed). The
// result counts this submission's events only. If ctx ends first, Submit
// returns ctx's error; the events may still be stored, which is safe since
// a retry is deduplicated. hold (may be nil) holds the events' memory: the
// writer releases it when they leave the queue, which for a canceled
// request is after Submit returned.
func (w *Writer) Submit(ctx context.Context, events []storage.Event, hold *Hold) (storage.InsertResult, error) {
	if len(events) == 0 {
		hold.Release()
		return storage.InsertResult{}, nil
	}
	s := &submission{events: events, hold: hold, done: make(chan struct{})}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		hold.Release()
		return storage.InsertResult{}, ErrClosed
	}
	w.pending = append(w.pending, s)
	w.queued += len(events)
	select { // under mu: Close may not close wake meanwhile
	case w.wake <- struct{}{}:
	default:
	}
	w.mu.Unlock()
	select {
	case <-s.done:
		return s.res, s.err
	case <-ctx.Done():
		return storage.InsertResult{}, ctx.Err()
	}
}

// Close stops the writer after the pending submissions are inserted.
func (w *Writer) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.wake)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *Writer) loop() {
	defer close(w.done)
	for range w.wake {
		for w.round() {
		}
	}
	for w.round() { // drain after Close
	}
}

// round inserts one group of pending submissions; false when none waited.
func (w *Writer) round() bool {
	w.mu.Lock()
	n, size := 0, 0
	for n < len(w.pending) && (n == 0 || size+len(w.pending[n].events) <= w.maxRound) {
		size += len(w.pending[n].events)
		n++
	}
	group := w.pending[:n:n]
	w.pending = w.pending[n:]
	w.queued -= size
	w.mu.Unlock()
	if n == 0 {
		return false
	}
	w.insert(group, size)
	return true
}

func (w *Writer) insert(group []*submission, size int) {
	batch := group[0].events
	if len(group) > 1 {
		batch = make([]storage.Event, 0, size)
		for _, s := range group {
			batch = append(batch, s.events...)
		}
	}
	// The insert must not be cut short by one client going away: it holds
	// other clients' events too.
	start := time.Now()
	res, err := w.store.Insert(context.Background(), batch)
	rows := 0
	for _, isNew := range res.New {
		if isNew {
			rows++
		}
	}
	w.metrics.StoreInsert(time.Since(start), rows, err)
	off := 0
	for _, s := range group {
		s.err = err
		if err == nil {
			s.res.New = res.New[off : off+len(s.events)]
			for _, isNew := range s.res.New {
				if isNew {
					s.res.Inserted++
				} else {
					s.res.Duplicates++
				}
			}
		}
		off += len(s.events)
		s.hold.Release()
		close(s.done)
	}
}

// Queued is the number of events waiting for an insert.
func (w *Writer) Queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}
