package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/server"
	"github.com/meterd/meterd/storage/duckdb"
)

// ingestKey is as long as Moesif's agents require application ids to be.
const ingestKey = "ing-e2e-0123456789abcdef0123456789abcdef0123456789abcdef"

// storedEvent is the part of GET /v1/events' event shape this test reads.
type storedEvent struct {
	UserID    string `json:"user_id"`
	CompanyID string `json:"company_id"`
	Request   struct {
		Verb  string `json:"verb"`
		Route string `json:"route"`
		URI   string `json:"uri"`
	} `json:"request"`
	Response *struct {
		Status int `json:"status"`
	} `json:"response"`
	Metadata map[string]any `json:"metadata"`
}

type call struct {
	method, path, body string
	user, company      string
	plan               string
	tokens             int
	wantStatus         int
	wantRoute          string
}

// TestMoesifNodeMiddleware sends API calls through an Express app that uses
// the real moesif-nodejs middleware with baseUri pointed at meterd, and
// asserts every call is stored with its user, company, status, route and
// metadata.
func TestMoesifNodeMiddleware(t *testing.T) {
	appDir, err := filepath.Abs("moesifnode")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(appDir, "node_modules", "moesif-nodejs")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("moesif-nodejs is not installed in %s (run npm ci there): %v", appDir, err)
		}
		t.Skipf("moesif-nodejs not installed (cd %s && npm ci)", appDir)
	}
	ctx := context.Background()
	st, err := duckdb.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(server.Config{Store: st, AdminToken: "adm-e2e", IngestKey: ingestKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	meterd := httptest.NewServer(srv.Handler())
	t.Cleanup(meterd.Close)

	appURL := startApp(t, appDir, meterd.URL, ingestKey)

	calls := []call{
		{"GET", "/v1/search?q=shoes", "", "u-1", "c-acme", "pro", 12, 200, "/v1/search"},
		{"GET", "/v1/search?q=%C3%BC%20boots", "", "u-2", "c-acme", "pro", 7, 200, "/v1/search"},
		{"POST", "/v1/orders", `{"items":[1,2]}`, "u-3", "c-globex", "free", 0, 201, "/v1/orders"},
		{"GET", "/v1/users/42", "", "u-4", "c-globex", "free", 1, 200, "/v1/users/42"},
		{"GET", "/v1/users/missing", "", "u-5", "c-initech", "", 3, 404, "/v1/users/missing"},
		{"GET", "/v1/limited", "", "u-6", "c-initech", "enterprise", 99, 429, "/v1/limited"},
	}
	for i := 0; i < 14; i++ { // enough calls to span several middleware batches
		calls = append(calls, call{"GET", fmt.Sprintf("/v1/search?page=%d", i), "", fmt.Sprintf("u-bulk-%d", i), "c-bulk", "pro", i, 200, "/v1/search"})
	}
	for _, c := range calls {
		req, _ := http.NewRequest(c.method, appURL+c.path, strings.NewReader(c.body))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("X-User-Id", c.user)
		req.Header.Set("X-Company-Id", c.company)
		if c.plan != "" {
			req.Header.Set("X-Plan", c.plan)
		}
		req.Header.Set("X-Tokens", fmt.Sprint(c.tokens))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.wantStatus {
			t.Fatalf("%s %s: app answered %d, want %d", c.method, c.path, resp.StatusCode, c.wantStatus)
		}
	}

	// The middleware batches and sends asynchronously: wait for all of them.
	var events []storedEvent
	deadline := time.Now().Add(30 * time.Second)
	for {
		events = listEvents(t, meterd.URL, "adm-e2e")
		if len(events) >= len(calls) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(events) != len(calls) {
		t.Fatalf("meterd stored %d events, want %d", len(events), len(calls))
	}
	byUser := map[string]storedEvent{}
	for _, e := range events {
		if _, dup := byUser[e.UserID]; dup {
			t.Fatalf("user %s stored twice", e.UserID)
		}
		byUser[e.UserID] = e
	}
	for _, c := range calls {
		e, ok := byUser[c.user]
		if !ok {
			t.Errorf("call by %s (%s %s) not stored", c.user, c.method, c.path)
			continue
		}
		if e.CompanyID != c.company {
			t.Errorf("%s: company %q, want %q", c.user, e.CompanyID, c.company)
		}
		if e.Request.Verb != c.method || e.Request.Route != c.wantRoute {
			t.Errorf("%s: request %s %s, want %s %s", c.user, e.Request.Verb, e.Request.Route, c.method, c.wantRoute)
		}
		if e.Response == nil || e.Response.Status != c.wantStatus {
			t.Errorf("%s: response %+v, want status %d", c.user, e.Response, c.wantStatus)
		}
		var wantPlan any
		if c.plan != "" {
			wantPlan = c.plan
		}
		if e.Metadata["plan"] != wantPlan || e.Metadata["tokens"] != float64(c.tokens) || e.Metadata["e2e"] != true {
			t.Errorf("%s: metadata %v, want plan=%v tokens=%d e2e=true", c.user, e.Metadata, wantPlan, c.tokens)
		}
	}
}

// startApp runs the Express app and returns its base URL.
func startApp(t *testing.T, dir, meterdURL, ingestKey string) string {
	t.Helper()
	cmd := exec.Command("node", "app.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "METERD_URL="+meterdURL, "METERD_INGEST_KEY="+ingestKey, "APP_PORT=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- port
			}
		}
	}()
	select {
	case port := <-ready:
		return "http://127.0.0.1:" + port
	case <-exited:
		t.Fatal("the Express app exited before it was ready (its error is above)")
	case <-time.After(30 * time.Second):
		t.Fatal("the Express app did not start")
	}
	return ""
}

func listEvents(t *testing.T, base, token string) []storedEvent {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/events?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/events: %d", resp.StatusCode)
	}
	var page struct {
		Events []storedEvent `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return page.Events
}
