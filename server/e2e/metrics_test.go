package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// meterd serve --metrics-addr serves GET /metrics there without
// credentials (for a Prometheus scraper) and nothing else, while the API
// listener serves it only with the admin token: both show the process's
// ingestion.
func TestMetricsListener(t *testing.T) {
	metricsAddr := freeAddr(t)
	api := startServe(t, buildMeterd(t), "duckdb://"+t.TempDir()+"/m.duckdb", "--metrics-addr", metricsAddr)
	path, ct, body := testBatch(1, time.Now().UTC())
	post(t, api+path, ct, body)

	get := func(url string, headers ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	accepted := `meterd_ingest_events_total{format="moesif",result="accepted"} 50`
	if status, text := get("http://" + metricsAddr + "/metrics"); status != 200 || !strings.Contains(text, accepted) {
		t.Errorf("--metrics-addr without credentials: %d, want 200 with %s:\n%.2000s", status, accepted, text)
	}
	if status, _ := get("http://" + metricsAddr + "/v1/events/stats"); status != 404 {
		t.Errorf("the metrics listener serves the API: %d", status)
	}
	if status, _ := get(api + "/metrics"); status != 401 {
		t.Errorf("the API's /metrics without the admin token: %d, want 401", status)
	}
	if status, text := get(api+"/metrics", "Authorization", "Bearer "+processAdmin); status != 200 || !strings.Contains(text, accepted) {
		t.Errorf("the API's /metrics with the admin token: %d:\n%.2000s", status, text)
	}
}
