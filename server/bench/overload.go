package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterd/meterd/storage/backends"
	"github.com/meterd/meterd/storage/eventgen"
)

// OverloadOptions configure `meterd bench overload`: many clients sending
// large batches without any backoff, then many gzip bombs at once,
// against a real `meterd serve` at its default bounds.
type OverloadOptions struct {
	Store    string // DSN; the server gets a fresh store (see backends.Fresh)
	Clients  int
	Batch    int
	Duration time.Duration
	Bombs    int   // gzip bombs sent at once
	BombSize int64 // each bomb's size once inflated
	Seed     int64
	Serve    []string // as IngestOptions.Serve
	// ClientNice, when above 0, is the nice value the flood's and the
	// bombs' clients run at, set once the server and the probe have
	// started (they keep this process's priority): on one machine the
	// clients stand in for clients on others, which would not take the
	// server's cores. 0 shares the cores equally.
	ClientNice int
}

// OverloadResult holds what one run measured.
type OverloadResult struct {
	Requests, Accepted, Refused429, Refused503, Failed int
	FirstFailure                                       string
	NoRetryAfter                                       int // refusals without Retry-After
	AcceptedEvents                                     int
	AcceptedP50, AcceptedP99, AcceptedMax              time.Duration
	RefusalP50, RefusalP99, RefusalMax                 time.Duration
	// From the request's headers written to the answer's first byte.
	RefusalServerP50, RefusalServerP99 time.Duration
	Memory                             memory

	// The server's count of its refusals by when they were decided (the
	// probe's included).
	ServerRefusals refusals

	// The probe: one client in a process of its own, sending a batch
	// every 200 ms during the flood (what a client that is not part of
	// the flood sees, without the flood's goroutines in its way).
	Probe ProbeResult

	BombStatuses       map[int]int // answers to the bombs, by status (-1: no answer)
	BombP99, BombMax   time.Duration
	BombMemory         memory
	BombCompressedSize int
}

// Overload runs the benchmark and prints a report to w.
func Overload(ctx context.Context, o OverloadOptions, w io.Writer) error {
	fmt.Fprintf(w, "meterd bench overload: %d clients x %d events/batch without backoff for %v, then %d gzip bombs (%d MiB inflated) at once, store %s\n",
		o.Clients, o.Batch, o.Duration, o.Bombs, o.BombSize>>20, backends.Redact(o.Store))
	if o.ClientNice > 0 {
		fmt.Fprintf(w, "  the flood's and the bombs' clients run at nice %d, the server and the probe at this command's priority (-client-nice 0: all alike)\n", o.ClientNice)
	}
	r, err := RunOverload(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  requests:   %d: %d accepted (%d events, %.0f events/s), %d refused 429, %d refused 503, %d failed%s\n",
		r.Requests, r.Accepted, r.AcceptedEvents, float64(r.AcceptedEvents)/o.Duration.Seconds(), r.Refused429, r.Refused503, r.Failed, failure(r.FirstFailure))
	fmt.Fprintf(w, "  accepted:   p50 %v  p99 %v  max %v\n", ms(r.AcceptedP50), ms(r.AcceptedP99), ms(r.AcceptedMax))
	fmt.Fprintf(w, "  refused:    p50 %v  p99 %v  max %v  (%d without Retry-After); headers sent to first byte back: p50 %v  p99 %v\n",
		ms(r.RefusalP50), ms(r.RefusalP99), ms(r.RefusalMax), r.NoRetryAfter, ms(r.RefusalServerP50), ms(r.RefusalServerP99))
	fmt.Fprintf(w, "  the server refused %d at admission, before reading the body; %d while the body arrived; %d after decoding it\n",
		r.ServerRefusals.Admission, r.ServerRefusals.Reading, r.ServerRefusals.Decoding)
	fmt.Fprintf(w, "  probe:      %d accepted, p50 %v  p99 %v; %d refused, p50 %v  p99 %v  max %v; %d failed (one client in its own process, a batch every 200 ms)\n",
		len(r.Probe.AcceptedMs), ms(percentileMs(r.Probe.AcceptedMs, 0.5)), ms(percentileMs(r.Probe.AcceptedMs, 0.99)),
		len(r.Probe.RefusedMs), ms(percentileMs(r.Probe.RefusedMs, 0.5)), ms(percentileMs(r.Probe.RefusedMs, 0.99)), ms(percentileMs(r.Probe.RefusedMs, 1)), r.Probe.Failed)
	fmt.Fprintf(w, "  server:     Go heap peak %s; RSS at 25/50/75/100%% %s / %s / %s / %s, peak %s; queue peak %d events; ingest memory peak %s\n",
		mib(r.Memory.HeapPeak), mib(r.Memory.RSSQuarters[0]), mib(r.Memory.RSSQuarters[1]), mib(r.Memory.RSSQuarters[2]), mib(r.Memory.RSSQuarters[3]),
		mib(r.Memory.RSSPeak), r.Memory.QueuedPeak, mib(uint64(r.Memory.IngestMemoryPeak)))
	fmt.Fprintf(w, "  gzip bombs: %d x %d KiB: answers %v; p99 %v  max %v; Go heap peak %s, RSS peak %s\n",
		o.Bombs, r.BombCompressedSize>>10, r.BombStatuses, ms(r.BombP99), ms(r.BombMax), mib(r.BombMemory.HeapPeak), mib(r.BombMemory.RSSPeak))
	return nil
}

func failure(first string) string {
	if first == "" {
		return ""
	}
	return " (first: " + first + ")"
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// RunOverload measures without printing.
func RunOverload(ctx context.Context, o OverloadOptions) (OverloadResult, error) {
	var r OverloadResult
	if o.Clients <= 0 || o.Batch <= 0 || o.Duration <= 0 || o.Bombs < 0 {
		return r, fmt.Errorf("clients, batch and duration must be positive")
	}
	template, offsets, err := overloadBatch(o.Seed, o.Batch)
	if err != nil {
		return r, err
	}
	srv, err := startServer(ctx, o.Store, o.Serve)
	if err != nil {
		return r, fmt.Errorf("starting the server: %w", err)
	}
	defer srv.stop()

	stopSampling := srv.sample()
	probe, err := startProbe(ctx, srv.url+"/v1/events/batch", o)
	if err != nil {
		return r, err
	}
	if o.ClientNice > 0 {
		if err := lowerPriority(o.ClientNice); err != nil {
			return r, err
		}
	}
	flood(ctx, srv.url+"/v1/events/batch", template, offsets, o, &r)
	r.Memory = stopSampling()
	r.ServerRefusals = srv.runtime().Refused
	if r.Probe, err = probe(); err != nil {
		return r, fmt.Errorf("probe: %w", err)
	}
	if err := srv.drain(ctx); err != nil {
		return r, err
	}
	if o.Bombs > 0 {
		stopSampling = srv.sample()
		err = bombs(ctx, srv.url+"/v1/events/batch", o, &r)
		r.BombMemory = stopSampling()
	}
	return r, err
}

// idDigits is the width of the per-request part of the events' ids.
const idDigits = 10

// overloadBatch encodes one batch whose transaction ids all start with
// idDigits zeros at the returned offsets: each request rewrites them, so
// that every accepted request stores new events.
func overloadBatch(seed int64, n int) ([]byte, []int, error) {
	now := time.Now().UTC()
	events := eventgen.Generate(seed, n, now.Add(-6*time.Hour), now)
	zeros := bytes.Repeat([]byte{'0'}, idDigits)
	for i := range events {
		events[i].ID = "ovl-" + string(zeros) + "-" + strconv.Itoa(i)
		events[i].ExternalID = events[i].ID
	}
	bodies, err := encodeBatches(events, n, false)
	if err != nil {
		return nil, nil, err
	}
	body := bodies[0]
	var offsets []int
	marker := []byte(`"ovl-` + string(zeros) + "-")
	for i := 0; ; {
		j := bytes.Index(body[i:], marker)
		if j < 0 {
			break
		}
		offsets = append(offsets, i+j+len(`"ovl-`))
		i += j + len(marker)
	}
	if len(offsets) != n {
		return nil, nil, fmt.Errorf("found %d of %d ids in the batch", len(offsets), n)
	}
	return body, offsets, nil
}

// batch is a client's batch: its ids change after each accepted request.
type batch struct {
	body    []byte
	offsets []int
	seq     *atomic.Int64
}

func (b *batch) renew() {
	id := strconv.AppendInt(nil, b.seq.Add(1), 10)
	for _, off := range b.offsets {
		copy(b.body[off+idDigits-len(id):off+idDigits], id)
	}
}

// flood runs o.Clients clients for o.Duration, each sending its batch
// again as soon as it has an answer, with new ids once it was accepted.
func flood(ctx context.Context, url string, template []byte, offsets []int, o OverloadOptions, r *OverloadResult) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Clients}, Timeout: 5 * time.Minute}
	end := time.Now().Add(o.Duration)
	var seq atomic.Int64
	var mu sync.Mutex
	var accepted, refused, refusedServer []time.Duration
	var wg sync.WaitGroup
	for range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := &batch{body: bytes.Clone(template), offsets: offsets, seq: &seq}
			b.renew()
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				a, err := postOnce(ctx, client, url, b.body, nil)
				d := time.Since(t0)
				mu.Lock()
				r.Requests++
				switch {
				case a.status == http.StatusOK:
					r.Accepted++
					r.AcceptedEvents += len(offsets)
					accepted = append(accepted, d)
				case a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable:
					if a.status == http.StatusTooManyRequests {
						r.Refused429++
					} else {
						r.Refused503++
					}
					if a.retry == "" {
						r.NoRetryAfter++
					}
					refused = append(refused, d)
					refusedServer = append(refusedServer, a.server)
				default:
					r.Failed++
					if r.FirstFailure == "" {
						r.FirstFailure = fmt.Sprintf("%d %v", a.status, err)
					}
				}
				mu.Unlock()
				if a.status == http.StatusOK {
					b.renew()
				}
			}
		}()
	}
	wg.Wait()
	r.AcceptedP50, r.AcceptedP99, r.AcceptedMax = percentile(accepted, 0.50), percentile(accepted, 0.99), percentile(accepted, 1)
	r.RefusalP50, r.RefusalP99, r.RefusalMax = percentile(refused, 0.50), percentile(refused, 0.99), percentile(refused, 1)
	r.RefusalServerP50, r.RefusalServerP99 = percentile(refusedServer, 0.50), percentile(refusedServer, 0.99)
}

// answer is one request's outcome: its status (0 when there was no
// answer), its Retry-After, and the time from its headers being written
// to the first byte of the answer (what the server took, plus the
// client's own scheduling).
type answer struct {
	status int
	retry  string
	server time.Duration
}

// postOnce sends one request.
func postOnce(ctx context.Context, client *http.Client, url string, body []byte, headers map[string]string) (answer, error) {
	var a answer
	var wrote, first atomic.Int64 // the trace's callbacks run on the transport's goroutines
	trace := &httptrace.ClientTrace{
		WroteHeaders:         func() { wrote.Store(time.Now().UnixNano()) },
		GotFirstResponseByte: func() { first.Store(time.Now().UnixNano()) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "POST", url, bytes.NewReader(body))
	if err != nil {
		return a, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Moesif-Application-Id", benchIngestKey)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return a, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a.status, a.retry = resp.StatusCode, resp.Header.Get("Retry-After")
	a.server = time.Duration(first.Load() - wrote.Load())
	return a, nil
}

// drain waits until the server holds no queued events nor request memory.
func (s *server) drain(ctx context.Context) error {
	for i := 0; i < 1200; i++ {
		if rt := s.runtime(); rt.Queued == 0 && rt.IngestUsed == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the server did not drain its queue within 2 minutes")
}

// bombs sends o.Bombs gzip bombs at once: o.BombSize bytes of JSON white
// space, compressed.
func bombs(ctx context.Context, url string, o OverloadOptions, r *OverloadResult) error {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	space := bytes.Repeat([]byte{' '}, 1<<20)
	for left := o.BombSize; left > 0; left -= int64(len(space)) {
		if _, err := zw.Write(space[:min(int64(len(space)), left)]); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	bomb := z.Bytes()
	r.BombCompressedSize = len(bomb)
	r.BombStatuses = map[int]int{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Bombs}, Timeout: 5 * time.Minute}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for range o.Bombs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			a, err := postOnce(ctx, client, url, bomb, map[string]string{"Content-Encoding": "gzip"})
			d := time.Since(t0)
			if err != nil {
				a.status = -1
			}
			mu.Lock()
			r.BombStatuses[a.status]++
			lat = append(lat, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.BombP99, r.BombMax = percentile(lat, 0.99), percentile(lat, 1)
	return nil
}
