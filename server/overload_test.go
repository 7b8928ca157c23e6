package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/storage/eventgen"
)

// slowClient is a raw TCP connection that sent a request's headers and the
// first bytes of its body, and sends the rest when told.
type slowClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// startSlow sends headers declaring a body of length bytes, then prefix.
func (h *harness) startSlow(path string, length int, prefix []byte, headers ...string) *slowClient {
	h.t.Helper()
	u, _ := url.Parse(h.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nX-Moesif-Application-Id: %s\r\nContent-Length: %d\r\n", path, u.Host, testIngest, length)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n")
	if _, err := conn.Write(append([]byte(b.String()), prefix...)); err != nil {
		h.t.Fatal(err)
	}
	return &slowClient{conn: conn, r: bufio.NewReader(conn)}
}

// answer reads the response, waiting at most a generous minute.
func (c *slowClient) answer(t *testing.T) answer {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// The attack: 64 connections declare a 1 MB body and send it a
// byte at a time. They used to take every decoding slot before their body
// arrived, and every other client got 429 for as long as they trickled.
// Other clients now get 200: a body holds only the memory of the bytes
// that arrived, and takes a decoding slot once it is whole.
func TestTricklingClientsDoNotLockOthersOut(t *testing.T) {
	h := newHarness(t, nil)
	var slow []*slowClient
	for range 64 {
		slow = append(slow, h.startSlow("/v1/events/batch", 1_000_000, []byte("[")))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range slow {
		wg.Add(1)
		go func() { // a byte at a time, until the test ends
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					if _, err := c.conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	h.waitFor("the slow bodies to be read", func() bool { return h.srv.budget.Used() >= 64*requestOverhead })
	events := eventgen.Generate(21, 200, testNow.Add(-time.Hour), testNow)
	for i := range 10 {
		if a := h.post("/v1/events/batch", moesifBatch(t, events[i*20:(i+1)*20])); a.status != 200 {
			t.Fatalf("normal client, request %d, while 64 bodies trickle: %d %s", i, a.status, a.body)
		}
	}
	if n := h.count(); n != 200 {
		t.Fatalf("stored %d, want 200", n)
	}
}

// A body that does not arrive within BodyReadTimeout is answered 408 and
// its connection closed; its memory is given back.
func TestSlowBodyIsCutOff(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.BodyReadTimeout = 500 * time.Millisecond })
	c := h.startSlow("/v1/events/batch", 1_000_000, []byte("["))
	go func() {
		for range 200 { // 10 s of a byte every 50 ms, far past the timeout
			time.Sleep(50 * time.Millisecond)
			if _, err := c.conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	a := c.answer(t)
	wantError(t, a, 408, "request_timeout", "", -1)
	c.conn.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := c.r.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection kept open after a timed-out body: read %d, %v", n, err)
	}
	h.waitFor("the memory to be given back", func() bool { return h.srv.budget.Used() == 0 })
}

// Decompressed bytes count against the ingest memory as they are produced:
// a gzip bomb cannot take more than what is free. A client that stalled
// half way through its body holds memory here; the bomb that would fit
// the body cap but not the free memory is refused 429, not read to 413.
func TestGzipBombCountsAgainstMemory(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 1 << 20; c.IngestMemory = 8 << 20 })
	stalled := h.startSlow("/v1/events/batch", 1<<20, append([]byte("["), bytes.Repeat([]byte(" "), 700<<10)...))
	h.waitFor("the stalled body to be read", func() bool { return h.srv.budget.Used() >= readCost*(700<<10) })
	bomb := gz(bytes.Repeat([]byte{' '}, 50<<20))
	a := h.do("POST", "/v1/events/batch", bytes.NewReader(bomb), "X-Moesif-Application-Id", testIngest, "Content-Encoding", "gzip")
	wantError(t, a, 429, "overloaded", "", -1)
	if a.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if peak := h.srv.budget.Peak(); peak > 8<<20 {
		t.Fatalf("ingest memory peaked at %d bytes, past its bound of %d", peak, 8<<20)
	}
	stalled.conn.Close()
	h.waitFor("the stalled body's memory to be given back", func() bool { return h.srv.budget.Used() == 0 })
	// With the memory free, the same bomb is read up to the body cap.
	a = h.do("POST", "/v1/events/batch", bytes.NewReader(bomb), "X-Moesif-Application-Id", testIngest, "Content-Encoding", "gzip")
	wantError(t, a, 413, "body_too_large", "", -1)
}

// Many gzip bombs at once: each is refused (413 at the body cap, or 429
// when the memory is taken), the memory held never passes its bound, and
// a normal client is served once they are gone.
func TestConcurrentGzipBombsStayWithinMemory(t *testing.T) {
	const limit = 32 << 20
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 4 << 20; c.IngestMemory = limit })
	bomb := gz(bytes.Repeat([]byte{' '}, 64<<20))
	var wg sync.WaitGroup
	statuses := make(chan int, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", h.url+"/v1/events/batch", bytes.NewReader(bomb))
			req.Header.Set("X-Moesif-Application-Id", testIngest)
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 413 && s != 429 {
			t.Fatalf("a gzip bomb got %d, want 413 or 429", s)
		}
	}
	if peak := h.srv.budget.Peak(); peak > limit {
		t.Fatalf("ingest memory peaked at %d bytes, past its bound of %d", peak, limit)
	}
	h.waitFor("the memory to be given back", func() bool { return h.srv.budget.Used() == 0 })
	if a := h.ingest("/v1/events/batch", batch(event("after", 0))); a.status != 200 {
		t.Fatalf("after the bombs: %d %s", a.status, a.body)
	}
}

// Whether a request is refused is decided before it waits for anything:
// with every decoding slot busy, a request past the queue bound gets 503
// and one past the memory bound 429 at once, while an admitted request
// waits for a slot instead of being refused.
func TestRefusalsDoNotWaitForDecoding(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.MaxInflight = 1
		c.MaxQueuedEvents = 1
		c.IngestMemory = 2 << 20
		c.MaxBodyBytes = 256 << 10
	})
	h.srv.decoding <- struct{}{} // the only slot, busy
	waiting := make(chan answer, 1)
	go func() { waiting <- h.ingest("/v1/events/batch", batch(event("a", 0))) }()
	h.waitFor("the admitted request to wait for the slot", func() bool { return h.srv.budget.Used() > 0 })

	hold := h.srv.budget.Hold(h.srv.budget.Free() - 1000) // the memory, taken
	a := h.ingest("/v1/events/batch", batch(event("b", 0)))
	wantError(t, a, 429, "overloaded", "", -1)
	hold.Release()

	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // a failure must not leave the writer blocked
	h.store.set(func(s *slowStore) { s.gate = gate })
	<-h.srv.decoding
	h.waitFor("the first insert to be held", func() bool { return h.insertCalls() == 1 })
	h.srv.decoding <- struct{}{}
	queued := make(chan answer, 1)
	go func() { queued <- h.ingest("/v1/events/batch", batch(event("c", 0))) }()
	<-h.srv.decoding // let it through
	h.waitFor("a request to queue", func() bool { return h.srv.writer.Queued() == 1 })
	h.srv.decoding <- struct{}{}
	a = h.ingest("/v1/events/batch", batch(event("d", 0)))
	wantError(t, a, 503, "overloaded", "", -1)
	if a.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	<-h.srv.decoding
	open()
	for _, c := range []chan answer{waiting, queued} {
		if a := <-c; a.status != 200 {
			t.Fatalf("admitted request: %d %s", a.status, a.body)
		}
	}
	if n := h.count(); n != 2 {
		t.Fatalf("stored %d, want 2", n)
	}
}

// Each event is stored with its user's and company's traits, which the
// store copies into every row it writes: they count in the ingest memory.
// A batch that could never fit is refused 413 (a retry would not fit
// either), a smaller one is stored.
func TestTraitsCountInTheIngestMemory(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 1 << 20; c.IngestMemory = 8 << 20 })
	big := `{"user_id":"u1","metadata":{"notes":"` + strings.Repeat("n", 100<<10) + `"}}`
	if a := h.ingest("/v1/users", big); a.status != 200 {
		t.Fatalf("profile: %d %s", a.status, a.body)
	}
	var many []string
	for i := range 100 {
		many = append(many, event(fmt.Sprint("t", i), 0)) // user u1
	}
	a := h.ingest("/v1/events/batch", batch(many...))
	wantError(t, a, 413, "body_too_large", "", -1)
	if a := h.ingest("/v1/events/batch", batch(many[:10]...)); a.status != 200 {
		t.Fatalf("10 events: %d %s", a.status, a.body)
	}
	h.waitFor("the memory to be given back", func() bool { return h.srv.budget.Used() == 0 })
}
