package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/meterd/meterd/server/bench"
)

// TestMain lets the test binary be meterd for the child processes a test
// starts (`meterd bench overload` starts `meterd serve` and `meterd bench
// probe`): with METERD_TEST_AS_MAIN=1 it runs main on its arguments.
func TestMain(m *testing.M) {
	if os.Getenv("METERD_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// `meterd bench overload`, small: a real server whose ingest memory
// (13 MiB) cannot hold the flood's eight 1.2 MB bodies, counted 6 bytes
// per byte, so it refuses some; every refusal carries Retry-After, the
// memory stays within its bound, the probe is answered, and gzip bombs
// that inflate past --max-body-bytes are refused.
func TestBenchOverloadMeasures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts meterd processes")
	}
	t.Setenv("METERD_TEST_AS_MAIN", "1") // for the children
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const limit = 13 << 20
	r, err := bench.RunOverload(context.Background(), bench.OverloadOptions{
		Store: "duckdb://", Clients: 8, Batch: 2000, Duration: 3 * time.Second, Bombs: 4, BombSize: 64 << 20, Seed: 1,
		Serve: []string{self, "serve", "--max-body-bytes", "2097152", "--ingest-memory", "13631488", "--billing=false"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted == 0 || r.Refused429 == 0 || r.Failed != 0 || r.Requests != r.Accepted+r.Refused429+r.Refused503+r.Failed {
		t.Errorf("requests %d: %d accepted, %d and %d refused, %d failed (%s)", r.Requests, r.Accepted, r.Refused429, r.Refused503, r.Failed, r.FirstFailure)
	}
	if r.NoRetryAfter != 0 {
		t.Errorf("%d refusals without Retry-After", r.NoRetryAfter)
	}
	if r.AcceptedEvents != r.Accepted*2000 {
		t.Errorf("%d events accepted in %d batches of 2000", r.AcceptedEvents, r.Accepted)
	}
	if m := r.Memory; m.IngestMemoryPeak == 0 || m.IngestMemoryPeak > limit || m.HeapPeak == 0 || m.RSSPeak == 0 {
		t.Errorf("server memory %+v: the ingest memory must peak within its %d bytes", m, limit)
	}
	if s := r.ServerRefusals; s.Admission+s.Reading+s.Decoding == 0 {
		t.Errorf("the server counted no refusal: %+v", s)
	}
	if p := r.Probe; len(p.AcceptedMs)+len(p.RefusedMs) == 0 || p.Failed != 0 {
		t.Errorf("the probe: %d accepted, %d refused, %d failed", len(p.AcceptedMs), len(p.RefusedMs), p.Failed)
	}
	n := 0
	for status, k := range r.BombStatuses {
		if status != 413 && status != 429 {
			t.Errorf("%d gzip bombs answered %d, want 413 or 429", k, status)
		}
		n += k
	}
	if n != 4 {
		t.Errorf("gzip bombs answered: %v, want all 4", r.BombStatuses)
	}
}
