package server

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// moesifBatch encodes events as an agent's batch body.
func moesifBatch(t testing.TB, events []storage.Event) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range events {
		enc, err := wire.EncodeMoesif(e)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(enc)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func (h *harness) post(path string, body []byte) answer {
	return h.do("POST", path, bytes.NewReader(body), "X-Moesif-Application-Id", testIngest)
}

// Many clients at once: every acknowledged event is stored exactly once,
// and each answer counts its own request's events, although requests were
// merged into shared inserts.
func TestConcurrentClientsEachEventStoredOnce(t *testing.T) {
	h := newHarness(t, nil)
	const clients, requests, per, overlap = 6, 8, 50, 5
	events := eventgen.Generate(11, clients*requests*per, testNow.Add(-time.Hour), testNow)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, dups, sent := 0, 0, 0
	errs := make(chan string, clients*requests)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for r := 0; r < requests; r++ {
				n := (c*requests + r) * per
				batch := events[n : n+per]
				// Each request also carries the start of another client's
				// request: a duplicate for whichever of the two comes second.
				o := ((c+1)%clients*requests + r) * per
				batch = append(append([]storage.Event{}, batch...), events[o:o+overlap]...)
				a := h.post("/v1/events/batch", moesifBatch(t, batch))
				if a.status != 200 {
					errs <- fmt.Sprintf("client %d request %d: %d %s", c, r, a.status, a.body)
					return
				}
				m := a.json(t)
				mu.Lock()
				accepted += int(m["accepted"].(float64))
				dups += int(m["duplicates"].(float64))
				sent += len(batch)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if accepted != len(events) || accepted+dups != sent {
		t.Fatalf("accepted %d + duplicates %d of %d sent; want %d accepted", accepted, dups, sent, len(events))
	}
	if n := h.count(); n != int64(len(events)) {
		t.Fatalf("stored %d, want %d", n, len(events))
	}
	stored, err := h.store.ListEvents(t.Context(), storage.EventFilter{Limit: len(events) + 10})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range stored {
		if seen[e.ID] {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
	}
	for _, e := range events {
		if !seen[e.ID] {
			t.Fatalf("acknowledged event %s not stored", e.ID)
		}
	}
}

// Requests arriving while an insert runs are merged into the next one.
func TestRequestsShareOneInsert(t *testing.T) {
	h := newHarness(t, nil)
	gate := make(chan struct{})
	h.store.set(func(s *slowStore) { s.gate = gate })
	const requests, per = 12, 20
	events := eventgen.Generate(12, requests*per, testNow.Add(-time.Hour), testNow)
	done := make(chan answer, requests)
	send := func(i int) { done <- h.post("/v1/events/batch", moesifBatch(t, events[i*per:(i+1)*per])) }
	go send(0)
	h.waitFor("the first insert to be held", func() bool { return h.insertCalls() == 1 })
	for i := 1; i < requests; i++ {
		go send(i)
	}
	h.waitFor("the other requests to queue", func() bool { return h.srv.writer.Queued() == (requests-1)*per })
	close(gate)
	for i := 0; i < requests; i++ {
		if a := <-done; a.status != 200 || a.json(t)["accepted"] != float64(per) {
			t.Fatalf("request: %d %s", a.status, a.body)
		}
	}
	if calls := h.insertCalls(); calls != 2 {
		t.Fatalf("%d Store.Insert calls for %d requests, want 2 (the held one, then all the others at once)", calls, requests)
	}
	if n := h.count(); n != requests*per {
		t.Fatalf("stored %d, want %d", n, requests*per)
	}
}

// A failing store fails every request of the round: 503 with Retry-After,
// nothing acknowledged, nothing stored; the client's retry then succeeds.
func TestStoreFailureAnswers503(t *testing.T) {
	h := newHarness(t, nil)
	body := moesifBatch(t, eventgen.Generate(13, 30, testNow.Add(-time.Hour), testNow))
	h.store.set(func(s *slowStore) { s.fail = errors.New("disk full") })
	a := h.post("/v1/events/batch", body)
	wantError(t, a, 503, "store_unavailable", "", -1)
	if a.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if n := h.count(); n != 0 {
		t.Fatalf("stored %d after a failed insert", n)
	}
	h.store.set(func(s *slowStore) { s.fail = nil })
	if a := h.post("/v1/events/batch", body); a.status != 200 || a.json(t)["accepted"] != float64(30) {
		t.Fatalf("retry: %d %s", a.status, a.body)
	}
}
