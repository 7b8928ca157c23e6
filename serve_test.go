package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
)

const (
	testAdmin  = "admin-token-of-the-main-test"
	testIngest = "ingest-key-of-the-main-test-0123456789-0123456789-0123456789"
)

// Main as 'meterd serve' runs it: started on a DuckDB file and a free
// port, it ingests a CloudEvent and reads it back over HTTP; closed, it
// has let go of the port and the file, and the event is in the file.
func TestMainServes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := NewMain()
	var banner bytes.Buffer
	m.Stdout, m.Stderr = &banner, io.Discard
	if err := m.ParseFlags(ctx, []string{"--addr", "127.0.0.1:0", "--data", dir, "--metrics-addr", "127.0.0.1:0",
		"--admin-token", testAdmin, "--ingest-key", testIngest, "--billing-interval", "1h"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			m.Close()
		}
	}()
	base := "http://" + m.Addr()
	if !strings.Contains(banner.String(), "listening on "+m.Addr()) || !strings.Contains(banner.String(), filepath.Join(dir, "meterd.duckdb")) {
		t.Fatalf("banner:\n%s", banner.String())
	}

	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	ce := `{"specversion":"1.0","id":"main-1","source":"svc","type":"tokens","subject":"acme","time":"` + at.Format(time.RFC3339) + `","data":{"tokens":12}}`
	if status, body := call(t, "POST", base+"/api/v1/events", testIngest, "application/cloudevents+json", ce); status != 200 {
		t.Fatalf("ingest: %d %s", status, body)
	}
	status, body := call(t, "GET", base+"/v1/events", testAdmin, "", "")
	var got struct {
		Events []struct {
			ExternalID string `json:"external_id"`
			CompanyID  string `json:"company_id"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &got); status != 200 || err != nil || len(got.Events) != 1 || got.Events[0].ExternalID != "main-1" || got.Events[0].CompanyID != "acme" {
		t.Fatalf("read back: %d %s", status, body)
	}

	// the billing worker has marked itself alive (its first beat comes
	// as it starts: wait for it, without a bound on how long it takes)
	for workers := 0; workers != 1; {
		status, body := call(t, "GET", base+"/v1/billing/workers", testAdmin, "", "")
		var w struct{ Workers []any }
		if err := json.Unmarshal(body, &w); status != 200 || err != nil {
			t.Fatalf("workers: %d %s", status, body)
		}
		if workers = len(w.Workers); workers == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}

	closed = true
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", m.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("the API still listens after Close")
	}
	// DuckDB locks its file per process: another one opens it only once
	// Close has closed the store.
	path := filepath.Join(dir, "meterd.duckdb")
	if out, err := openInAnotherProcess(path); err != nil {
		t.Fatalf("the DuckDB file does not open in another process after Close: %v\n%s", err, out)
	}
	st, err := backends.Open(ctx, "duckdb://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if evs, err := st.ListEvents(ctx, storage.EventFilter{Limit: 10}); err != nil || len(evs) != 1 || evs[0].ExternalID != "main-1" {
		t.Fatalf("stored: %v %v", evs, err)
	}
	// the worker stopped before the store closed, retiring its mark
	if live, err := st.LiveWorkers(ctx, time.Time{}); err != nil || len(live) != 0 {
		t.Fatalf("workers after Close: %v %v", live, err)
	}
}

// openInAnotherProcess opens a DuckDB file in a child process (this test
// binary running TestOpenStoreHelper), as a restarted meterd would.
func openInAnotherProcess(path string) ([]byte, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenStoreHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "METERD_TEST_OPEN_STORE="+path)
	return cmd.CombinedOutput()
}

// TestOpenStoreHelper is openInAnotherProcess's child.
func TestOpenStoreHelper(t *testing.T) {
	path := os.Getenv("METERD_TEST_OPEN_STORE")
	if path == "" {
		t.Skip("the child process of TestMainServes")
	}
	st, err := backends.Open(context.Background(), "duckdb://"+path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// A bad variable stops the start with its name and value, before
// anything is opened (it used to be ignored for the default).
func TestMainRefusesABadVariable(t *testing.T) {
	t.Setenv("METERD_MAX_BODY_BYTES", "16MB")
	m := NewMain()
	m.Stderr = io.Discard
	err := m.ParseFlags(context.Background(), []string{"--data", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `METERD_MAX_BODY_BYTES="16MB"`) {
		t.Fatalf("got %v, want an error naming METERD_MAX_BODY_BYTES and its value", err)
	}
}

// call makes a request with a bearer token, returning the status and body.
func call(t *testing.T, method, url, token, contentType, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
