// Package bench implements `meterd bench ingest`: it measures ingestion
// through the HTTP batch endpoint against, in the same run, the ceiling of
// inserting the same events straight into the same kind of store.
package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/meterd/meterd/server"
	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
	"github.com/meterd/meterd/storage/eventgen"
)

// IngestOptions configure one run.
type IngestOptions struct {
	Store   string // DSN; each phase gets a fresh store (see freshDSN)
	Events  int
	Clients int
	Batch   int
	Gzip    bool
	Seed    int64
}

// IngestResult holds what one run measured.
type IngestResult struct {
	Events          int
	DirectPerSec    float64 // store.Insert alone, no HTTP (the ceiling)
	HTTPPerSec      float64
	P50, P99        time.Duration // per batch request
	HeapPeak        uint64        // Go heap in use, sampled during the HTTP phase
	HeapEnd         uint64
	RSSPeak, RSSEnd uint64 // whole process (includes DuckDB's own memory)
	InsertCalls     int    // store.Insert calls during the HTTP phase (group commit)
	BatchesSent     int
	DirectBatchSize int
}

const (
	benchAdmin  = "bench-admin"
	benchIngest = "bench-ingest"
)

// Ingest runs the benchmark and prints a report to w.
func Ingest(ctx context.Context, o IngestOptions, w io.Writer) error {
	r, err := RunIngest(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "meterd bench ingest: %d events, %d clients, %d events/batch, gzip=%v, store %s\n",
		r.Events, o.Clients, o.Batch, o.Gzip, backends.Redact(o.Store))
	fmt.Fprintf(w, "  direct store insert (ceiling): %10.0f events/s  (batches of %d)\n", r.DirectPerSec, r.DirectBatchSize)
	fmt.Fprintf(w, "  HTTP /v1/events/batch:         %10.0f events/s  = %.2f x ceiling\n", r.HTTPPerSec, r.HTTPPerSec/r.DirectPerSec)
	fmt.Fprintf(w, "  batch latency:                 p50 %v  p99 %v\n", r.P50.Round(time.Microsecond*10), r.P99.Round(time.Microsecond*10))
	fmt.Fprintf(w, "  group commit:                  %d requests -> %d store inserts\n", r.BatchesSent, r.InsertCalls)
	fmt.Fprintf(w, "  memory (HTTP phase):           Go heap peak %s, end %s; process RSS peak %s, end %s\n",
		mib(r.HeapPeak), mib(r.HeapEnd), mib(r.RSSPeak), mib(r.RSSEnd))
	return nil
}

// RunIngest measures without printing (also used by the Go benchmark test).
func RunIngest(ctx context.Context, o IngestOptions) (IngestResult, error) {
	if o.Events <= 0 || o.Clients <= 0 || o.Batch <= 0 {
		return IngestResult{}, fmt.Errorf("events, clients and batch must be positive")
	}
	now := time.Now().UTC()
	events := eventgen.Generate(o.Seed, o.Events, now.Add(-6*time.Hour), now)
	bodies, err := encodeBatches(events, o.Batch, o.Gzip)
	if err != nil {
		return IngestResult{}, err
	}
	res := IngestResult{Events: len(events), BatchesSent: len(bodies)}

	// Ceiling: the same events, decoded ahead of time, inserted by one writer
	// in batches as large as group commit can make them.
	res.DirectBatchSize = o.Batch * o.Clients
	direct, err := openFresh(ctx, o.Store, "direct")
	if err != nil {
		return res, err
	}
	start := time.Now()
	for i := 0; i < len(events); i += res.DirectBatchSize {
		if _, err := direct.Insert(ctx, events[i:min(i+res.DirectBatchSize, len(events))]); err != nil {
			direct.Close()
			return res, err
		}
	}
	res.DirectPerSec = float64(len(events)) / time.Since(start).Seconds()
	direct.Close()

	// Through HTTP, on a fresh store of the same kind.
	st, err := openFresh(ctx, o.Store, "http")
	if err != nil {
		return res, err
	}
	defer st.Close()
	counted := &countingStore{Store: st}
	srv, err := server.New(server.Config{Store: counted, AdminToken: benchAdmin, IngestKey: benchIngest,
		MaxEventAge: -1})
	if err != nil {
		return res, err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String() + "/v1/events/batch"

	stopSampling := sampleMemory(&res)
	lat, took, err := send(ctx, url, bodies, o.Clients, o.Gzip)
	stopSampling()
	if err != nil {
		return res, err
	}
	res.HTTPPerSec = float64(len(events)) / took.Seconds()
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	res.InsertCalls = counted.calls()
	return res, nil
}

func encodeBatches(events []storage.Event, size int, gz bool) ([][]byte, error) {
	var out [][]byte
	for i := 0; i < len(events); i += size {
		var buf bytes.Buffer
		buf.WriteByte('[')
		for j, e := range events[i:min(i+size, len(events))] {
			if j > 0 {
				buf.WriteByte(',')
			}
			b, err := wire.EncodeMoesif(e)
			if err != nil {
				return nil, err
			}
			buf.Write(b)
		}
		buf.WriteByte(']')
		if !gz {
			out = append(out, buf.Bytes())
			continue
		}
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(buf.Bytes())
		zw.Close()
		out = append(out, z.Bytes())
	}
	return out, nil
}

// send posts every body with n concurrent clients and returns each request's
// latency and the wall time of the whole phase.
func send(ctx context.Context, url string, bodies [][]byte, n int, gz bool) ([]time.Duration, time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	next := make(chan []byte)
	lat := make([]time.Duration, 0, len(bodies))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range next {
				t0 := time.Now()
				err := post(ctx, client, url, body, gz)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, b := range bodies {
		next <- b
	}
	close(next)
	wg.Wait()
	return lat, time.Since(start), firstErr
}

// post sends one batch, retrying when the server sheds load (as a
// well-behaved client does), so the run measures sustained throughput.
func post(ctx context.Context, client *http.Client, url string, body []byte, gz bool) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Moesif-Application-Id", benchIngest)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
			return nil
		case (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 100:
			time.Sleep(10 * time.Millisecond)
		default:
			return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, msg)
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// sampleMemory records the Go heap and the process RSS every 50 ms until
// the returned stop function is called.
func sampleMemory(r *IngestResult) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			rss := processRSS()
			r.HeapPeak = max(r.HeapPeak, m.HeapInuse)
			r.RSSPeak = max(r.RSSPeak, rss)
			r.HeapEnd, r.RSSEnd = m.HeapInuse, rss
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// countingStore counts Insert calls, to show group commit at work.
type countingStore struct {
	storage.Store
	mu sync.Mutex
	n  int
}

func (c *countingStore) Insert(ctx context.Context, ev []storage.Event) (storage.InsertResult, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Store.Insert(ctx, ev)
}

func (c *countingStore) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
