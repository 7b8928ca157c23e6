package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// openMeterEvent is a CloudEvent as OpenMeter's SDKs send it.
func openMeterEvent(id, subject string, at time.Time, tokens int) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"@openmeter/sdk","type":"prompt","subject":%q,"time":%q,"data":{"tokens":%d}}`,
		id, subject, at.Format(time.RFC3339Nano), tokens)
}

// postJSON posts to OpenMeter's ingestion path with the admin token (one
// client both ingests and queries).
func (h *harness) postJSON(ct, body string) answer {
	h.t.Helper()
	return h.do("POST", "/api/v1/events", strings.NewReader(body), "Authorization", "Bearer "+testAdmin, "Content-Type", ct)
}

// wantProblem asserts an RFC 7807 answer that also carries meterd's code
// and field.
func wantProblem(t *testing.T, a answer, status int, code, field string, index int) {
	t.Helper()
	wantError(t, a, status, code, field, index)
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, a.body)
	}
	m := a.json(t)
	if m["type"] != "about:blank" || m["status"] != float64(status) || m["title"] == "" || m["detail"] != m["message"] ||
		!strings.HasPrefix(m["instance"].(string), "/api/v1/") {
		t.Fatalf("not a problem: %s", a.body)
	}
}

// POST /api/v1/events takes application/json as OpenMeter does: one event
// or an array of them; errors are problems naming the event.
func TestOpenMeterIngestJSON(t *testing.T) {
	h := newHarness(t, nil)
	at := testNow.Add(-time.Minute)
	if a := h.postJSON("application/json", openMeterEvent("e1", "acme", at, 1)); a.status != 200 {
		t.Fatalf("one event: %d %s", a.status, a.body)
	}
	m := h.postJSON("application/json; charset=utf-8", "["+openMeterEvent("e1", "acme", at, 1)+","+openMeterEvent("e2", "acme", at, 2)+"]").json(t)
	if m["accepted"] != float64(1) || m["duplicates"] != float64(1) {
		t.Fatalf("an array: %v", m)
	}
	wantProblem(t, h.postJSON("application/json", "["+openMeterEvent("e3", "acme", at, 1)+`,{"id":"x","source":"s","type":"t"}]`), 400, "missing_field", "specversion", 1)
	wantProblem(t, h.postJSON("application/json", `"x"`), 400, "invalid_type", "", -1)
	wantProblem(t, h.postJSON("text/plain", openMeterEvent("e4", "acme", at, 1)), 415, "unsupported_media_type", "", -1)
	wantProblem(t, h.do("POST", "/api/v1/events", strings.NewReader("{}"), "Content-Type", "application/json"), 401, "unauthorized", "", -1)
	if n := h.count(); n != 2 {
		t.Fatalf("stored %d events, want 2", n)
	}
}

// GET /api/v1/events answers OpenMeter's list-events: the CloudEvents,
// newest first, in its IngestedEvent shape, with its filters.
func TestOpenMeterListEvents(t *testing.T) {
	h := newHarness(t, nil)
	var evs []string
	for i := range 5 {
		evs = append(evs, openMeterEvent(fmt.Sprintf("e%d", i), []string{"acme", "globex"}[i%2], testNow.Add(-time.Duration(5-i)*time.Hour), i))
	}
	if a := h.postJSON("application/cloudevents-batch+json", "["+strings.Join(evs, ",")+"]"); a.status != 200 {
		t.Fatalf("ingest: %d %s", a.status, a.body)
	}
	if a := h.ingest("/v1/events", event("moesif-call", -60)); a.status != 200 {
		t.Fatalf("a Moesif call: %d %s", a.status, a.body)
	}
	list := func(query string) []map[string]any {
		t.Helper()
		a := h.admin("/api/v1/events" + query)
		if a.status != 200 || a.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s %s", query, a.status, a.header.Get("Content-Type"), a.body)
		}
		var out []map[string]any
		if err := json.Unmarshal(a.body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ids := func(l []map[string]any) string {
		var s []string
		for _, e := range l {
			s = append(s, e["event"].(map[string]any)["id"].(string))
		}
		return strings.Join(s, ",")
	}
	all := list("")
	if ids(all) != "e4,e3,e2,e1,e0" {
		t.Fatalf("listed %s, want the CloudEvents newest first", ids(all))
	}
	want := map[string]any{"id": "e4", "source": "@openmeter/sdk", "specversion": "1.0", "type": "prompt", "subject": "acme",
		"time": "2026-11-25T11:00:00.000Z", "datacontenttype": "application/json", "data": map[string]any{"tokens": float64(4)}}
	if got, _ := json.Marshal(all[0]["event"]); string(got) != mustJSON(want) || all[0]["ingestedAt"] != "2026-11-25T12:00:00.000Z" || all[0]["storedAt"] != all[0]["ingestedAt"] {
		t.Fatalf("event %v", all[0])
	}
	for q, want := range map[string]string{
		"?subject=globex": "e3,e1",
		"?id=e2":          "e2",
		"?limit=2":        "e4,e3",
		"?from=" + url.QueryEscape(testNow.Add(-3*time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(testNow.Add(-time.Hour).Format(time.RFC3339)): "e3,e2",
		"?ingestedAtFrom=" + url.QueryEscape(testNow.Add(time.Second).Format(time.RFC3339)):                                                                 "",
		"?clientId=progress-1": "e4,e3,e2,e1,e0",
	} {
		if got := ids(list(q)); got != want {
			t.Errorf("%s: listed %q, want %q", q, got, want)
		}
	}
	// OpenMeter's default window is the last 32 days.
	old := newHarness(t, func(c *Config) {
		c.Now = func() time.Time { return testNow.Add(33 * 24 * time.Hour) }
		c.MaxEventAge = -1
	})
	if a := old.postJSON("application/cloudevents+json", evs[0]); a.status != 200 {
		t.Fatalf("ingest: %d %s", a.status, a.body)
	}
	if a := old.admin("/api/v1/events"); string(a.body) != "[]\n" {
		t.Fatalf("an event older than 32 days without from: %s", a.body)
	}
	wantProblem(t, h.admin("/api/v1/events?limit=101"), 400, "invalid_value", "limit", -1)
	wantProblem(t, h.admin("/api/v1/events?from=yesterday"), 400, "invalid_value", "from", -1)
	wantProblem(t, h.admin("/api/v1/events?customerId=01G65Z755AFWAKHE12NY0CQ9FH"), 400, "unsupported_parameter", "customerId", -1)
	wantProblem(t, h.do("GET", "/api/v1/events", nil, "Authorization", "Bearer "+testIngest), 401, "unauthorized", "", -1)
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// GET /api/v1/meters and /api/v1/meters/{idOrSlug}: OpenMeter's Meter
// shape, archived meters only when asked, in the order asked.
func TestOpenMeterMeters(t *testing.T) {
	var mu sync.Mutex
	tick := testNow
	h := newHarness(t, func(c *Config) { // a second between changes: creation times order the meters
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); tick = tick.Add(time.Second); return tick }
	})
	create := func(body string) string {
		a := h.adminDo("POST", "/v1/meters", body)
		if a.status != 201 {
			t.Fatalf("create: %d %s", a.status, a.body)
		}
		return a.json(t)["id"].(string)
	}
	tokens := create(`{"name":"Tokens","slug":"tokens_total","filter":"true","value":"metadata.tokens","aggregation":"sum"}`)
	users := create(`{"name":"Active users","filter":"true","value":"user_id","aggregation":"unique","group_by":"user_id"}`)
	old := create(`{"name":"Calls","slug":"calls","filter":"true","aggregation":"count"}`)
	if a := h.adminDo("POST", "/v1/meters/"+old+"/archive", ""); a.status != 200 {
		t.Fatal(a.status)
	}
	list := func(q string) []map[string]any {
		t.Helper()
		a := h.admin("/api/v1/meters" + q)
		var out []map[string]any
		if err := json.Unmarshal(a.body, &out); err != nil || a.status != 200 {
			t.Fatalf("%s: %d %s", q, a.status, a.body)
		}
		return out
	}
	slugs := func(l []map[string]any) string {
		var s []string
		for _, m := range l {
			s = append(s, m["slug"].(string))
		}
		return strings.Join(s, ",")
	}
	// A meter without a slug shows its id there: the query takes either.
	for q, want := range map[string]string{
		"":                     users + ",tokens_total",
		"?order=DESC":          "tokens_total," + users,
		"?includeDeleted=true": "calls," + users + ",tokens_total",
		"?orderBy=name&page=2": users + ",tokens_total",
		"?orderBy=aggregation": "tokens_total," + users, // SUM < UNIQUE_COUNT
		"?orderBy=createdAt&order=DESC&includeDeleted=true": "calls," + users + ",tokens_total",
	} {
		if got := slugs(list(q)); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
	m := h.admin("/api/v1/meters/tokens_total").json(t)
	if m["id"] != tokens || m["name"] != "Tokens" || m["aggregation"] != "SUM" || m["eventType"] != "*" || m["createdAt"] == nil ||
		m["deletedAt"] != nil || m["annotations"].(map[string]any)["meterd.value"] != "metadata.tokens" {
		t.Fatalf("meter by slug: %v", m)
	}
	if m := h.admin("/api/v1/meters/" + users).json(t); m["aggregation"] != "UNIQUE_COUNT" || m["annotations"].(map[string]any)["meterd.group_by"] != "user_id" {
		t.Fatalf("meter by id: %v", m)
	}
	if m := h.admin("/api/v1/meters/calls").json(t); m["aggregation"] != "COUNT" || m["deletedAt"] == nil {
		t.Fatalf("an archived meter: %v", m)
	}
	wantProblem(t, h.admin("/api/v1/meters/nope"), 404, "not_found", "", -1)
	wantProblem(t, h.admin("/api/v1/meters?orderBy=slug"), 400, "invalid_value", "orderBy", -1)
	wantProblem(t, h.admin("/api/v1/meters?includeDeleted=yes"), 400, "invalid_value", "includeDeleted", -1)
}

// queryRow is one row of an OpenMeter meter query, compactly.
func queryRows(t *testing.T, a answer) (map[string]any, string) {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("query: %d %s", a.status, a.body)
	}
	var r struct {
		Data []struct {
			Value       float64           `json:"value"`
			WindowStart time.Time         `json:"windowStart"`
			WindowEnd   time.Time         `json:"windowEnd"`
			Subject     *string           `json:"subject"`
			GroupBy     map[string]string `json:"groupBy"`
		} `json:"data"`
	}
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, d := range r.Data {
		s := "-"
		if d.Subject != nil {
			s = *d.Subject
		}
		if d.GroupBy == nil || len(d.GroupBy) != 0 {
			t.Fatalf("groupBy %v, want {}", d.GroupBy)
		}
		rows = append(rows, fmt.Sprintf("%s %s..%s=%v", s, d.WindowStart.Format("02T15:04"), d.WindowEnd.Format("02T15:04"), d.Value))
	}
	return a.json(t), strings.Join(rows, " ")
}

// usageRows is GET /v1/meters/{id}/usage as OpenMeter rows of subject s
// ("-" for none): what the query must answer.
func (h *harness) usageRows(t *testing.T, id, q, bucket, customer string) string {
	t.Helper()
	width := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[bucket]
	subject := "-"
	if customer != "" {
		q += "&customer=" + url.QueryEscape(customer)
		subject = customer
	}
	r := decodeResult(t, h.admin("/v1/meters/"+id+"/usage"+q+"&bucket="+bucket))
	var rows []string
	for _, b := range r.Buckets {
		rows = append(rows, fmt.Sprintf("%s %s..%s=%v", subject, b.Start.Format("02T15:04"), b.Start.Add(width).Format("02T15:04"), *b.Value))
	}
	return strings.Join(rows, " ")
}

// GET /api/v1/meters/{idOrSlug}/query answers in OpenMeter's shape with
// the engine of GET /v1/meters/{id}/usage (each version over its span),
// on both stores: windows of a minute, an hour, a day or the whole
// range, per subject or over all.
func TestOpenMeterQuery(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		a := h.adminDo("POST", "/v1/meters", `{"name":"Tokens","slug":"tokens_total","filter":"true","value":"metadata.tokens","aggregation":"sum"}`)
		if a.status != 201 {
			t.Fatalf("create: %d %s", a.status, a.body)
		}
		id := a.json(t)["id"].(string)
		var evs []string
		for i, e := range []struct {
			subject string
			ago     time.Duration
			tokens  int
		}{
			{"acme", 26 * time.Hour, 5}, {"acme", 25*time.Hour + 30*time.Minute, 7}, {"globex", 25 * time.Hour, 2},
			{"acme", 2 * time.Hour, 3}, {"globex", 2*time.Hour - 30*time.Second, 20}, {"acme", 90 * time.Minute, 4},
			{"acme", 30 * time.Minute, 10}, {"globex", time.Minute, 1},
		} {
			evs = append(evs, openMeterEvent(fmt.Sprint("q", i), e.subject, testNow.Add(-e.ago), e.tokens))
		}
		if a := h.postJSON("application/json", "["+strings.Join(evs, ",")+"]"); a.status != 200 {
			t.Fatalf("ingest: %d %s", a.status, a.body)
		}
		from, to := testNow.Add(-48*time.Hour), testNow
		win := "?from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
		query := func(q string) string {
			t.Helper()
			_, rows := queryRows(t, h.admin("/api/v1/meters/tokens_total/query"+win+q))
			return rows
		}
		for _, c := range []struct{ q, want string }{
			{"&windowSize=DAY", "- 24T00:00..25T00:00=14 - 25T00:00..26T00:00=38"},
			{"&windowSize=HOUR&subject=acme", "acme 24T10:00..24T11:00=12 acme 25T10:00..25T11:00=7 acme 25T11:00..25T12:00=10"},
			{"", "- 23T12:00..25T12:00=52"},
			{"&groupBy=subject", "acme 23T12:00..25T12:00=29 globex 23T12:00..25T12:00=23"},
			{"&subject=acme&subject=globex&windowSize=DAY",
				"acme 24T00:00..25T00:00=12 globex 24T00:00..25T00:00=2 acme 25T00:00..26T00:00=17 globex 25T00:00..26T00:00=21"},
			{"&subject=nobody", ""},
			{"&windowSize=HOUR&windowTimeZone=Europe/Berlin&subject=acme", "acme 24T10:00..24T11:00=12 acme 25T10:00..25T11:00=7 acme 25T11:00..25T12:00=10"},
		} {
			if got := query(c.q); got != c.want {
				t.Errorf("%s:\n got %s\nwant %s", c.q, got, c.want)
			}
		}
		// Every window size, over all and per subject, is what the usage
		// endpoint answers.
		for _, size := range []string{"MINUTE", "HOUR", "DAY"} {
			for _, subject := range []string{"", "acme", "globex"} {
				q := "&windowSize=" + size
				if subject != "" {
					q += "&subject=" + subject
				}
				if got, want := query(q), h.usageRows(t, id, win, strings.ToLower(size), subject); got != want {
					t.Errorf("%s:\n got %s\nwant %s (usage)", q, got, want)
				}
			}
		}
		// The answer repeats the window asked for; without one, from is
		// 400 days before now and the whole range is one row.
		m, _ := queryRows(t, h.admin("/api/v1/meters/"+id+"/query"+win+"&windowSize=HOUR"))
		if m["from"] != "2026-11-23T12:00:00Z" || m["to"] != "2026-11-25T12:00:00Z" || m["windowSize"] != "HOUR" {
			t.Errorf("echo: %v", m)
		}
		m, rows := queryRows(t, h.admin("/api/v1/meters/tokens_total/query"))
		if _, ok := m["from"]; ok || m["windowSize"] != nil || rows != "- 21T12:00..25T12:00=52" {
			t.Errorf("no parameters: %v %s", m, rows)
		}
		// A version from just after now: each version over its span.
		eff := testNow.Add(10 * time.Minute)
		if a := h.adminDo("POST", "/v1/meters/"+id+"/versions", fmt.Sprintf(`{"filter":"true","value":"metadata.tokens * 2","effective_from":%q}`, eff.Format(time.RFC3339))); a.status != 201 {
			t.Fatalf("version: %d %s", a.status, a.body)
		}
		if a := h.postJSON("application/cloudevents+json", openMeterEvent("later", "acme", testNow.Add(20*time.Minute), 6)); a.status != 200 {
			t.Fatalf("ingest: %d %s", a.status, a.body)
		}
		later := "?from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(testNow.Add(time.Hour).Format(time.RFC3339))
		if _, rows := queryRows(t, h.admin("/api/v1/meters/tokens_total/query"+later+"&windowSize=DAY&subject=acme")); rows != "acme 24T00:00..25T00:00=12 acme 25T00:00..26T00:00=29" {
			t.Errorf("two versions: %s", rows)
		}
	})
}

// What meterd cannot answer as OpenMeter would is refused, naming the
// parameter, never answered as if it were honoured.
func TestOpenMeterQueryRefusals(t *testing.T) {
	h := newHarness(t, nil)
	if a := h.adminDo("POST", "/v1/meters", `{"name":"Tokens","slug":"tokens_total","filter":"true","value":"metadata.tokens","aggregation":"sum"}`); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	q := func(params string) answer { return h.admin("/api/v1/meters/tokens_total/query?" + params) }
	for _, c := range []struct{ params, code, field string }{
		{"windowSize=MONTH", "invalid_value", "windowSize"},
		{"windowSize=week", "invalid_value", "windowSize"},
		{"groupBy=model", "unsupported_parameter", "groupBy"},
		{"groupBy=customer_id", "unsupported_parameter", "groupBy"},
		{"filterGroupBy%5Bmodel%5D=gpt", "unsupported_parameter", "filterGroupBy[model]"},
		{"filterCustomerId=c1", "unsupported_parameter", "filterCustomerId"},
		{"advancedMeterGroupByFilters=%7B%7D", "unsupported_parameter", "advancedMeterGroupByFilters"},
		{"subject=", "invalid_value", "subject"},
		{"from=2026-11-25T12:00:00Z&to=2026-11-25T11:00:00Z", "invalid_window", "to"},
		{"from=2020-01-01T00:00:00Z", "invalid_window", "from"},
		{"windowSize=MINUTE&from=2026-10-01T00:00:00Z", "invalid_window", "windowSize"},
		{"windowSize=DAY&windowTimeZone=Europe/Berlin", "invalid_value", "windowTimeZone"},
		{"windowSize=HOUR&windowTimeZone=Asia/Kolkata", "invalid_value", "windowTimeZone"},
		{"windowSize=DAY&windowTimeZone=Mars/Olympus", "invalid_value", "windowTimeZone"},
	} {
		wantProblem(t, q(c.params), 400, c.code, c.field, -1)
	}
	// A zone whose windows are UTC's over the window is fine: Kolkata's
	// minutes, London's days in winter.
	for _, ok := range []string{"windowSize=MINUTE&windowTimeZone=Asia/Kolkata&from=2026-11-25T00:00:00Z",
		"windowSize=DAY&windowTimeZone=Europe/London&from=2026-11-01T00:00:00Z", "windowTimeZone=Asia/Kolkata", "windowSize=DAY&windowTimeZone=UTC"} {
		if a := q(ok); a.status != 200 {
			t.Errorf("%s: %d %s", ok, a.status, a.body)
		}
	}
	wantProblem(t, h.admin("/api/v1/meters/nope/query"), 404, "not_found", "", -1)
	wantProblem(t, h.do("GET", "/api/v1/meters/tokens_total/query", nil, "Authorization", "Bearer "+testIngest), 401, "unauthorized", "", -1)
}
