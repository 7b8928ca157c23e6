package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/meterd/meterd/storage/storetest"
)

const processAdmin = "adm-processes"

// TestTwoProcessesOneClickHouse: two meterd processes write one ClickHouse
// database and receive the same batches at the same moment (a load balancer
// retrying on the other replica, or a client sending twice), so they race
// between the duplicate lookup and the insert. Every figure they then give
// (stats, listing, backtests on SQL and on the VM, a saved meter's usage
// per customer, which the billing worker reads) equals a single process's
// that received each batch once.
func TestTwoProcessesOneClickHouse(t *testing.T) {
	base := storetest.ClickHouseDSN(t)
	if base == "" {
		t.Skip("METERD_TEST_CLICKHOUSE not set")
	}
	bin := buildMeterd(t)
	pairDSN := storetest.FreshClickHouseDSN(t, "meterd_pair")
	soloDSN := storetest.FreshClickHouseDSN(t, "meterd_solo")
	a, b := startServe(t, bin, pairDSN), startServe(t, bin, pairDSN)
	solo := startServe(t, bin, soloDSN)

	// CloudEvents without time are stamped on arrival: keep every arrival
	// of this test inside one hour, so that hourly figures can agree.
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 3*time.Minute {
		time.Sleep(left + time.Second)
	}
	now := time.Now().UTC()
	raced := func() uint64 {
		opts, err := ch.ParseDSN(pairDSN)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := ch.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var n uint64 // rows stored beyond one per identity: both processes inserted
		if err := conn.QueryRow(context.Background(), `SELECT toUInt64(count() - uniqExact(id)) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Batches until the two processes did race (on a busy machine one may
	// often come second and find the other's rows): at least 20, at most 200.
	for i := 0; i < 200 && (i < 20 || raced() == 0); i++ {
		path, ct, body := testBatch(i, now)
		var wg sync.WaitGroup
		for _, p := range []string{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); post(t, p+path, ct, body) }()
		}
		wg.Wait()
		post(t, solo+path, ct, body)
	}
	if raced() == 0 {
		t.Fatal("the two processes never raced on one identity: the test proved nothing")
	}
	// Retries later: with other times for events that have an id (a
	// transaction_id, a CloudEvent), as sent for those whose id is derived
	// from their content (time included): duplicates everywhere.
	for i, at := range []time.Time{now.Add(-time.Hour), now, now.Add(-2 * time.Hour)} {
		path, ct, body := testBatch(i, at)
		for _, p := range []string{a, b, solo} {
			if got := post(t, p+path, ct, body); !strings.Contains(got, `"accepted":0`) {
				t.Errorf("retry of batch %d at another time on %s: %s, want nothing accepted", i, p, got)
			}
		}
	}

	meter := `{"name":"tokens","filter":"request.route startsWith \"/v1/\" or metadata.tokens != nil","aggregation":"sum","value":"float(metadata.tokens ?? 1)","group_by":"company_id"}`
	ids := map[string]string{}
	for _, p := range []string{a, solo} {
		var m struct{ ID string }
		decode(t, adminReq(t, "POST", p+"/v1/meters", meter), &m)
		ids[p] = m.ID
	}
	from, to := now.Add(-3*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	figures := func(p, meterID string) map[string]any {
		out := map[string]any{}
		for name, req := range map[string][2]string{
			"stats":       {"GET", "/v1/events/stats"},
			"list":        {"GET", "/v1/events?limit=1000"},
			"backtestSQL": {"POST", "/v1/backtest"},
			"backtestVM":  {"POST", "/v1/backtest"},
			"usage":       {"GET", "/v1/meters/" + meterID + "/usage?bucket=hour&top=100&from=" + from + "&to=" + to},
			"usageAcme":   {"GET", "/v1/meters/" + meterID + "/usage?bucket=hour&customer=acme&from=" + from + "&to=" + to},
		} {
			body := ""
			if req[0] == "POST" {
				eng := map[string]string{"backtestSQL": "sql", "backtestVM": "vm"}[name]
				body = `{"filter":"true","aggregation":"sum","value":"float(metadata.tokens ?? 1)","group_by":"company_id",` +
					`"from":"` + from + `","to":"` + to + `","bucket":"hour","top":100,"engine":"` + eng + `"}`
			}
			var v any
			decode(t, adminReq(t, req[0], p+req[1], body), &v)
			out[name] = withoutVolatile(v)
		}
		return out
	}
	want := figures(solo, ids[solo])
	for _, p := range []string{a, b} {
		got := figures(p, ids[a])
		for name := range want {
			if !reflect.DeepEqual(got[name], want[name]) {
				g, _ := json.Marshal(got[name])
				w, _ := json.Marshal(want[name])
				t.Errorf("%s from %s differs from a single process's:\n got %.600s\nwant %.600s", name, p, g, w)
			}
		}
	}
}

// testBatch is the i-th batch: Moesif calls with and without
// transaction_id, or CloudEvents without time (stamped on arrival, so each
// process and each retry gives them another time).
func testBatch(i int, at time.Time) (path, contentType, body string) {
	var evs []string
	customers := []string{"acme", "globex", "initech"}
	for j := 0; j < 50; j++ {
		c := customers[(i+j)%3]
		switch i % 3 {
		case 0, 1:
			txn := ""
			if i%3 == 0 {
				txn = fmt.Sprintf(`"transaction_id":"txn-%d-%d",`, i, j)
			}
			ts := at.Add(-time.Duration(i*50+j) * time.Second).Format(time.RFC3339Nano)
			evs = append(evs, `{`+txn+`"request":{"time":"`+ts+`","uri":"https://api.example.com/v1/search?b=`+fmt.Sprint(i, "-", j)+
				`","verb":"GET"},"response":{"time":"`+ts+`","status":200},"company_id":"`+c+`","user_id":"u-`+fmt.Sprint(j%7)+
				`","metadata":{"tokens":`+fmt.Sprint(j+1)+`}}`)
		default:
			evs = append(evs, `{"specversion":"1.0","id":"ce-`+fmt.Sprint(i, "-", j)+`","source":"svc","type":"tokens","subject":"`+c+
				`","data":{"tokens":`+fmt.Sprint(100+j)+`}}`)
		}
	}
	if i%3 == 2 {
		return "/api/v1/events", "application/cloudevents-batch+json", "[" + strings.Join(evs, ",") + "]"
	}
	return "/v1/events/batch", "application/json", "[" + strings.Join(evs, ",") + "]"
}

// withoutVolatile drops what may differ between two runs of one query:
// timings, and the ids and arrival times the listing shows.
func withoutVolatile(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			switch k {
			case "took_ms", "received_at", "meter_id", "id",
				"first_time", "last_time": // the last is a CloudEvent's arrival
				continue
			}
			out[k] = withoutVolatile(e)
		}
		// CloudEvents are stamped on arrival: compare them without times.
		if x["format"] == "cloudevents" {
			delete(out, "time")
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutVolatile(e)
		}
		return out
	}
	return v
}

func post(t *testing.T, url, contentType, body string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Moesif-Application-Id", ingestKey)
	req.Header.Set("Authorization", "Bearer "+ingestKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func adminReq(t *testing.T, method, url, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+processAdmin)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return b
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// freeAddr is a local address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe starts `meterd serve` on dsn and a free port, with flags
// added; it answers once healthy, and is stopped when t ends.
func startServe(t *testing.T, bin, dsn string, flags ...string) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", t.TempDir(), "--store", dsn,
		"--admin-token", processAdmin, "--ingest-key", ingestKey, "--billing=false"}, flags...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("meterd on %s:\n%s", addr, out.String())
		}
	})
	url := "http://" + addr
	for i := 0; i < 300; i++ {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("meterd serve on %s did not become healthy:\n%s", addr, out.String())
	return ""
}

var meterdBin struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildMeterd builds the meterd command once for the package's tests.
func buildMeterd(t *testing.T) string {
	t.Helper()
	meterdBin.once.Do(func() {
		if meterdBin.dir, meterdBin.err = os.MkdirTemp("", "meterd-e2e-"); meterdBin.err != nil {
			return
		}
		meterdBin.path = filepath.Join(meterdBin.dir, "meterd")
		if out, err := exec.Command("go", "build", "-o", meterdBin.path, "github.com/meterd/meterd").CombinedOutput(); err != nil {
			meterdBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if meterdBin.err != nil {
		t.Fatal(meterdBin.err)
	}
	return meterdBin.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if meterdBin.dir != "" {
		os.RemoveAll(meterdBin.dir)
	}
	os.Exit(code)
}
