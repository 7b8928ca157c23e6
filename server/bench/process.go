package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meterd/meterd/storage/backends"
)

const (
	benchAdminToken = "bench-admin-token"
	benchIngestKey  = "bench-ingest-key-0123456789abcdef0123456789abcdef0123456789"
)

// server is a `meterd serve` child process on a fresh store.
type server struct {
	cmd     *exec.Cmd
	url     string
	cleanup func()
}

// startServer starts serve (default: this executable's "serve") on a
// fresh store of the kind store names.
func startServer(ctx context.Context, store string, serve []string) (*server, error) {
	dsn, _, cleanup, err := backends.Fresh(store, "http")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cleanup()
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	argv := serve
	if len(argv) == 0 {
		self, err := os.Executable()
		if err != nil {
			cleanup()
			return nil, err
		}
		argv = []string{self, "serve"}
	}
	dataDir, err := os.MkdirTemp("", "meterd-bench-data-")
	if err != nil {
		cleanup()
		return nil, err
	}
	argv = append(argv, "--addr", addr, "--data", dataDir, "--store", dsn,
		"--admin-token", benchAdminToken, "--ingest-key", benchIngestKey, "--max-event-age", "-1s")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, err
	}
	s := &server{cmd: cmd, url: "http://" + addr, cleanup: func() { cleanup(); os.RemoveAll(dataDir) }}
	for i := 0; ; i++ {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if i > 300 {
			s.stop()
			return nil, fmt.Errorf("%s did not answer /healthz", strings.Join(argv, " "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cleanup()
}

// memory is what sampling the server process saw.
type memory struct {
	// RSS at each quarter of the sampling: flat memory under sustained
	// load shows as a plateau.
	RSSQuarters      [4]uint64
	RSSPeak          uint64
	HeapPeak         uint64 // the Go heap in use
	QueuedPeak       int    // events waiting for the group commit
	IngestMemoryPeak int64  // what the server counted against --ingest-memory
}

// sample records the server's resident memory and runtime figures every
// 100 ms until the returned function is called, which returns them.
func (s *server) sample() (stop func() memory) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var samples []uint64
	var m memory
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			samples = append(samples, rss(s.cmd.Process.Pid))
			rt := s.runtime()
			m.HeapPeak = max(m.HeapPeak, rt.Heap)
			m.QueuedPeak = max(m.QueuedPeak, rt.Queued)
			m.IngestMemoryPeak = max(m.IngestMemoryPeak, rt.IngestPeak)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() memory {
		close(done)
		wg.Wait()
		for q := range 4 {
			m.RSSQuarters[q] = samples[min(len(samples)-1, (q+1)*len(samples)/4)]
		}
		for _, v := range samples {
			m.RSSPeak = max(m.RSSPeak, v)
		}
		return m
	}
}

// runtimeStats is what GET /v1/debug/runtime reports (zero when the
// server does not answer).
type runtimeStats struct {
	Heap       uint64   `json:"go_heap_inuse_bytes"`
	Queued     int      `json:"queued_events"`
	IngestUsed int64    `json:"ingest_memory_bytes"`
	IngestPeak int64    `json:"ingest_memory_peak"`
	Refused    refusals `json:"refused"`
}

// refusals are the server's overload refusals by when they were decided.
type refusals struct {
	Admission int64 `json:"at_admission"`
	Reading   int64 `json:"while_reading"`
	Decoding  int64 `json:"after_decoding"`
}

func (s *server) runtime() runtimeStats {
	var m runtimeStats
	req, _ := http.NewRequest("GET", s.url+"/v1/debug/runtime", nil)
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m
}

// rss reads a process's resident set size from /proc (Linux; 0 elsewhere).
func rss(pid int) uint64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
