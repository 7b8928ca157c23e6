// Package bench implements `meterd bench ingest`: it measures ingestion
// through the HTTP batch endpoint of a real `meterd serve` process against,
// in the same run, the ceiling of inserting the same events straight into
// the same kind of store.
package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
	"github.com/meterd/meterd/storage/eventgen"
)

// IngestOptions configure one run.
type IngestOptions struct {
	Store   string // DSN; each phase gets a fresh store (see backends.Fresh)
	Events  int
	Clients int
	Batch   int
	Gzip    bool
	Seed    int64
	// Serve is the command that runs the server under test (default: this
	// executable's "serve").
	Serve []string
}

// IngestResult holds what one run measured.
type IngestResult struct {
	Events          int
	DirectPerSec    float64 // store.Insert alone, no HTTP (the ceiling)
	DirectBatchSize int
	HTTPPerSec      float64
	P50, P99        time.Duration // per batch request
	Batches         int
	// RSS of the server process at each quarter of the HTTP phase: flat
	// memory under sustained load shows as a plateau.
	RSSQuarters [4]uint64
	RSSPeak     uint64
	HeapPeak    uint64 // the server's Go heap in use, sampled
}

// Ingest runs the benchmark and prints a report to w.
func Ingest(ctx context.Context, o IngestOptions, w io.Writer) error {
	fmt.Fprintf(w, "meterd bench ingest: %d events, %d clients x %d events/batch, gzip=%v, store %s\n",
		o.Events, o.Clients, o.Batch, o.Gzip, backends.Redact(o.Store))
	r, err := RunIngest(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  direct store insert (ceiling): %8.0f events/s  (one writer, batches of %d, no HTTP)\n", r.DirectPerSec, r.DirectBatchSize)
	fmt.Fprintf(w, "  HTTP /v1/events/batch:         %8.0f events/s  = %.2f x ceiling\n", r.HTTPPerSec, r.HTTPPerSec/r.DirectPerSec)
	fmt.Fprintf(w, "  batch latency:                 p50 %v  p99 %v  (%d batches)\n", r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Batches)
	fmt.Fprintf(w, "  server memory:                 Go heap peak %s; RSS at 25/50/75/100%% %s / %s / %s / %s (RSS includes the store's cache)\n",
		mib(r.HeapPeak), mib(r.RSSQuarters[0]), mib(r.RSSQuarters[1]), mib(r.RSSQuarters[2]), mib(r.RSSQuarters[3]))
	return nil
}

// RunIngest measures without printing.
func RunIngest(ctx context.Context, o IngestOptions) (IngestResult, error) {
	if o.Events <= 0 || o.Clients <= 0 || o.Batch <= 0 {
		return IngestResult{}, fmt.Errorf("events, clients and batch must be positive")
	}
	now := time.Now().UTC()
	events := eventgen.Generate(o.Seed, o.Events, now.Add(-6*time.Hour), now)
	res := IngestResult{Events: len(events), DirectBatchSize: o.Batch * o.Clients}

	if err := direct(ctx, o, events, &res); err != nil {
		return res, fmt.Errorf("direct phase: %w", err)
	}
	bodies, err := encodeBatches(events, o.Batch, o.Gzip)
	if err != nil {
		return res, err
	}
	events = nil // the server process holds what it needs
	srv, err := startServer(ctx, o.Store, o.Serve)
	if err != nil {
		return res, fmt.Errorf("starting the server: %w", err)
	}
	defer srv.stop()
	stopSampling := srv.sample()
	lat, took, err := send(ctx, srv.url+"/v1/events/batch", bodies, o.Clients, o.Gzip)
	mem := stopSampling()
	res.RSSQuarters, res.RSSPeak, res.HeapPeak = mem.RSSQuarters, mem.RSSPeak, mem.HeapPeak
	if err != nil {
		return res, err
	}
	res.HTTPPerSec = float64(res.Events) / took.Seconds()
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	res.Batches = len(bodies)
	return res, nil
}

// direct measures the ceiling: the same events inserted by one writer in
// batches as large as group commit makes them, already flattened (the
// server flattens in its request goroutines, not in the writer).
func direct(ctx context.Context, o IngestOptions, events []storage.Event, res *IngestResult) error {
	dsn, _, cleanup, err := backends.Fresh(o.Store, "direct")
	if err != nil {
		return err
	}
	defer cleanup()
	st, err := backends.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	prepared := make([]storage.Event, len(events))
	for i, e := range events {
		if e.Flat, err = e.Flatten(); err != nil {
			return err
		}
		prepared[i] = e
	}
	start := time.Now()
	for i := 0; i < len(prepared); i += res.DirectBatchSize {
		if _, err := st.Insert(ctx, prepared[i:min(i+res.DirectBatchSize, len(prepared))]); err != nil {
			return err
		}
	}
	res.DirectPerSec = float64(len(prepared)) / time.Since(start).Seconds()
	return nil
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

// send posts every body with n concurrent clients and returns each
// request's latency and the wall time of the whole phase.
func send(ctx context.Context, url string, bodies [][]byte, n int, gz bool) ([]time.Duration, time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: time.Minute}
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
		req.Header.Set("X-Moesif-Application-Id", benchIngestKey)
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
		case (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 1000:
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

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
