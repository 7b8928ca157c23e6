package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// ProbeResult is what the probe saw: each answer's round trip in
// milliseconds, by kind.
type ProbeResult struct {
	AcceptedMs []float64 `json:"accepted_ms"`
	RefusedMs  []float64 `json:"refused_ms"`
	Failed     int       `json:"failed"`
}

// probeEvery is the probe's pace.
const probeEvery = 200 * time.Millisecond

// startProbe runs `meterd bench probe` in a process of its own for the
// flood's duration; wait returns what it saw.
func startProbe(ctx context.Context, url string, o OverloadOptions) (wait func() (ProbeResult, error), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, self, "bench", "probe", "-url", url, "-batch", strconv.Itoa(o.Batch),
		"-duration", o.Duration.String(), "-seed", strconv.FormatInt(o.Seed+1, 10))
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() (ProbeResult, error) {
		var r ProbeResult
		if err := cmd.Wait(); err != nil {
			return r, err
		}
		return r, json.Unmarshal(out.Bytes(), &r)
	}, nil
}

// Probe is `meterd bench probe`: one client sending a batch every 200 ms
// for duration (new ids after each accepted one), printing what it saw
// as JSON.
func Probe(ctx context.Context, url string, n int, seed int64, duration time.Duration, w io.Writer) error {
	template, offsets, err := overloadBatch(seed, n)
	if err != nil {
		return err
	}
	var seq atomic.Int64
	seq.Store(9_000_000_000) // ids apart from the flood's
	b := &batch{body: template, offsets: offsets, seq: &seq}
	b.renew()
	client := &http.Client{Timeout: 5 * time.Minute}
	var r ProbeResult
	for end := time.Now().Add(duration); time.Now().Before(end); time.Sleep(probeEvery) {
		t0 := time.Now()
		a, err := postOnce(ctx, client, url, b.body, nil)
		d := float64(time.Since(t0).Microseconds()) / 1000
		switch {
		case err == nil && a.status == http.StatusOK:
			r.AcceptedMs = append(r.AcceptedMs, d)
			b.renew()
		case err == nil && (a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable):
			r.RefusedMs = append(r.RefusedMs, d)
		default:
			r.Failed++
		}
	}
	return json.NewEncoder(w).Encode(r)
}

// percentileMs is percentile for the probe's milliseconds.
func percentileMs(v []float64, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return time.Duration(s[min(len(s)-1, int(p*float64(len(s))))] * float64(time.Millisecond))
}
