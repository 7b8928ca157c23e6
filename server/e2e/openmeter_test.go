package e2e

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/server"
	"github.com/meterd/meterd/storage"
)

// The SDKs server/e2e/openmeternode drives: the current @openmeter/sdk and
// the last one that declares Node 18/20 support (undici-based, hand-written).
var openMeterSDKs = []string{"current", "undici"}

// TestOpenMeterSDK points the real @openmeter/sdk clients, configured with
// meterd's admin token (processAdmin), at meterd on every store: they ingest (a batch and
// a single event), list events, list and get meters, and query a meter by
// slug with HOUR, DAY and MINUTE windows, the whole range, a subject and
// groupBy subject, each answer equal to GET /v1/meters/{id}/usage; their
// errors are problems they read.
func TestOpenMeterSDK(t *testing.T) {
	dir := openMeterApp(t)
	for name, open := range storeOpeners("meterd_openmeter_e2e") {
		t.Run(name, func(t *testing.T) {
			for _, sdk := range openMeterSDKs {
				t.Run(sdk, func(t *testing.T) { openMeterEndToEnd(t, dir, sdk, open(t)) })
			}
		})
	}
}

// openMeterApp is the SDKs' directory, with them installed.
func openMeterApp(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("openmeternode")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@openmeter", "sdk")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("@openmeter/sdk is not installed in %s (run npm ci there): %v", dir, err)
		}
		t.Skipf("@openmeter/sdk not installed (cd %s && npm ci)", dir)
	}
	return dir
}

// sdkCall runs one SDK method (sdk.mjs) and decodes what it returned into
// ok, or fails the test with what it threw; problem gets the error when
// ok is nil.
type sdkRunner struct {
	t        *testing.T
	dir, sdk string
	url      string
}

type sdkError struct {
	Status  int            `json:"status"`
	Message string         `json:"message"`
	Problem map[string]any `json:"problem"`
}

func (r sdkRunner) run(method string, args ...any) (json.RawMessage, *sdkError) {
	r.t.Helper()
	argv := []string{"sdk.mjs", r.sdk, method}
	for _, a := range args {
		b, _ := json.Marshal(a)
		argv = append(argv, string(b))
	}
	cmd := exec.Command("node", argv...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "METERD_URL="+r.url, "METERD_TOKEN="+processAdmin)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("node sdk.mjs %s %s: %v", r.sdk, method, err)
	}
	var res struct {
		OK    json.RawMessage `json:"ok"`
		Error *sdkError       `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		r.t.Fatalf("%s %s printed %q", r.sdk, method, out)
	}
	return res.OK, res.Error
}

func (r sdkRunner) ok(v any, method string, args ...any) {
	r.t.Helper()
	res, e := r.run(method, args...)
	if e != nil {
		r.t.Fatalf("%s %s threw %+v", r.sdk, method, *e)
	}
	if err := json.Unmarshal(res, v); err != nil {
		r.t.Fatalf("%s %s returned %s: %v", r.sdk, method, res, err)
	}
}

type omEvent struct {
	subject string
	at      time.Time
	tokens  int
}

func (e omEvent) json(id string) map[string]any {
	return map[string]any{"id": id, "type": "prompt", "subject": e.subject, "time": e.at.Format(time.RFC3339Nano), "data": map[string]any{"tokens": e.tokens}}
}

func openMeterEndToEnd(t *testing.T, dir, sdk string, st storage.Store) {
	srv, err := server.New(server.Config{Store: st, AdminToken: processAdmin, IngestKey: ingestKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	meterd := httptest.NewServer(srv.Handler())
	t.Cleanup(meterd.Close)
	r := sdkRunner{t: t, dir: dir, sdk: sdk, url: meterd.URL}

	var meter struct{ ID string }
	decode(t, adminReq(t, "POST", meterd.URL+"/v1/meters",
		`{"name":"Tokens","slug":"tokens_total","filter":"true","value":"metadata.tokens","aggregation":"sum"}`), &meter)

	// Events over the last two days (events must be recent), in two days
	// and several hours and minutes.
	base := time.Now().UTC().Truncate(time.Hour)
	batch := []omEvent{
		{"acme", base.Add(-26*time.Hour + 5*time.Minute), 5}, {"acme", base.Add(-25*time.Hour + 30*time.Minute), 7},
		{"globex", base.Add(-25 * time.Hour), 2}, {"acme", base.Add(-2*time.Hour + time.Minute), 3},
		{"globex", base.Add(-2*time.Hour + 30*time.Second), 20}, {"acme", base.Add(-90 * time.Minute), 4},
		{"acme", base.Add(-30 * time.Minute), 10}, {"globex", base.Add(-time.Minute), 1},
	}
	var events []map[string]any
	for i, e := range batch {
		events = append(events, e.json(fmt.Sprint("evt-", i)))
	}
	var ingested struct{ Accepted, Duplicates int }
	r.ok(&ingested, "ingest", events)
	if ingested.Accepted != len(batch) {
		t.Fatalf("batch: %+v", ingested)
	}
	single := omEvent{"acme", base.Add(-10 * time.Minute), 6}
	r.ok(&ingested, "ingest", single.json("evt-single"))
	if ingested.Accepted != 1 {
		t.Fatalf("a single event: %+v", ingested)
	}
	r.ok(&ingested, "ingest", single.json("evt-single"))
	if ingested.Accepted != 0 || ingested.Duplicates != 1 {
		t.Fatalf("the single event again: %+v", ingested)
	}

	// events.list: the CloudEvents as sent, newest first.
	var listed []struct {
		Event struct {
			ID, Source, Subject, Type string
			Time                      time.Time
			Data                      struct{ Tokens int }
		}
		IngestedAt time.Time
	}
	r.ok(&listed, "listEvents", map[string]any{"subject": "acme", "limit": 100})
	var got []string
	for _, e := range listed {
		got = append(got, fmt.Sprintf("%s %s %s %d", e.Event.ID, e.Event.Subject, e.Event.Time.Format(time.RFC3339), e.Event.Data.Tokens))
		if e.Event.Source != "@openmeter/sdk" || e.Event.Type != "prompt" || e.IngestedAt.IsZero() {
			t.Errorf("listed %+v", e)
		}
	}
	want := []string{}
	for i, e := range append(batch, single) {
		id := fmt.Sprint("evt-", i)
		if i == len(batch) {
			id = "evt-single"
		}
		if e.subject == "acme" {
			want = append(want, fmt.Sprintf("%s acme %s %d", id, e.at.Format(time.RFC3339), e.tokens))
		}
	}
	sort.Slice(want, func(i, j int) bool { return strings.Fields(want[i])[2] > strings.Fields(want[j])[2] })
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events.list subject acme:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r.ok(&listed, "listEvents", map[string]any{"limit": 3})
	if len(listed) != 3 || listed[0].Event.ID != "evt-7" {
		t.Errorf("events.list limit 3: %+v", listed)
	}

	// meters.list and meters.get.
	var meters []struct{ ID, Slug, Name, Aggregation string }
	r.ok(&meters, "listMeters")
	if len(meters) != 1 || meters[0].ID != meter.ID || meters[0].Slug != "tokens_total" || meters[0].Aggregation != "SUM" {
		t.Fatalf("meters.list: %+v", meters)
	}
	var one struct{ ID string }
	if r.ok(&one, "getMeter", "tokens_total"); one.ID != meter.ID {
		t.Fatalf("meters.get: %+v", one)
	}

	// meters.query, each answer what GET /v1/meters/{id}/usage says.
	from, to := base.Add(-48*time.Hour), base.Add(time.Hour)
	window := "?from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
	for _, q := range []struct {
		size     string
		subjects []string
		groupBy  bool
	}{
		{"HOUR", nil, false}, {"DAY", nil, false}, {"HOUR", []string{"acme"}, false}, {"DAY", []string{"acme"}, false},
		{"DAY", []string{"acme", "globex"}, false}, {"", nil, false}, {"", []string{"globex"}, false}, {"", nil, true},
	} {
		params := map[string]any{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}
		if q.size != "" {
			params["windowSize"] = q.size
		}
		if q.subjects != nil {
			params["subject"] = q.subjects
		}
		if q.groupBy {
			params["groupBy"] = []string{"subject"}
		}
		var res struct {
			WindowSize string
			Data       []struct {
				Value                  float64
				WindowStart, WindowEnd time.Time
				Subject                *string
				GroupBy                map[string]string
			}
		}
		r.ok(&res, "query", "tokens_total", params)
		var rows []string
		for _, d := range res.Data {
			s := "-"
			if d.Subject != nil {
				s = *d.Subject
			}
			rows = append(rows, fmt.Sprintf("%s %s..%s=%g", s, d.WindowStart.Format(time.RFC3339), d.WindowEnd.Format(time.RFC3339), d.Value))
		}
		subjects := q.subjects
		if q.groupBy {
			subjects = []string{"acme", "globex"}
		}
		if want := usageRows(t, meterd.URL, meter.ID, window, q.size, subjects, from, to); strings.Join(rows, " ") != want || res.WindowSize != q.size {
			t.Errorf("query %+v (%s):\n got %s\nwant %s", q, res.WindowSize, strings.Join(rows, " "), want)
		}
	}

	// Errors are problems the SDK reads.
	if _, e := r.run("query", "tokens_total", map[string]any{"windowSize": "MONTH"}); e == nil || e.Status != 400 ||
		e.Problem["code"] != "invalid_value" || e.Problem["field"] != "windowSize" || !strings.Contains(e.Problem["detail"].(string), "MONTH") {
		t.Errorf("a MONTH window: %+v", e)
	}
	if _, e := r.run("query", "nope", map[string]any{}); e == nil || e.Status != 404 || e.Problem["title"] != "Not Found" {
		t.Errorf("an unknown meter: %+v", e)
	}
}

// usageRows is GET /v1/meters/{id}/usage as the rows an OpenMeter query
// of window size size ("" the whole range) and subjects answers, ordered
// as it orders them.
func usageRows(t *testing.T, base, id, window, size string, subjects []string, from, to time.Time) string {
	t.Helper()
	bucket := map[string]string{"": "day", "MINUTE": "minute", "HOUR": "hour", "DAY": "day"}[size]
	width := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[bucket]
	var rows []usageRow
	for _, subject := range subjects {
		rows = append(rows, usageOf(t, base, id, window, bucket, subject, width, size == "", from, to)...)
	}
	if subjects == nil {
		rows = usageOf(t, base, id, window, bucket, "", width, size == "", from, to)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].start.Before(rows[j].start) })
	var out []string
	for _, r := range rows {
		out = append(out, r.s)
	}
	return strings.Join(out, " ")
}

// usageRow is a row of usageRows and when it starts.
type usageRow struct {
	start time.Time
	s     string
}

// usageOf is one customer's usage ("" all) as query rows.
func usageOf(t *testing.T, base, id, window, bucket, customer string, width time.Duration, whole bool, from, to time.Time) []usageRow {
	t.Helper()
	q := window + "&bucket=" + bucket
	subject := "-"
	if customer != "" {
		q += "&customer=" + customer
		subject = customer
	}
	var u struct {
		Buckets []struct {
			Start time.Time
			Value *float64
		}
		Total         *float64
		MatchedEvents int64 `json:"matched_events"`
	}
	decode(t, adminReq(t, "GET", base+"/v1/meters/"+id+"/usage"+q, ""), &u)
	if whole {
		if u.Total == nil || customer != "" && u.MatchedEvents == 0 {
			return nil
		}
		return []usageRow{{from, fmt.Sprintf("%s %s..%s=%g", subject, from.Format(time.RFC3339), to.Format(time.RFC3339), *u.Total)}}
	}
	var rows []usageRow
	for _, b := range u.Buckets {
		rows = append(rows, usageRow{b.Start, fmt.Sprintf("%s %s..%s=%g", subject, b.Start.Format(time.RFC3339), b.Start.Add(width).Format(time.RFC3339), *b.Value)})
	}
	return rows
}
