package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// call is one Moesif event for the backtest tests.
func call(at time.Time, status int, route, company string, tokens any) string {
	meta := ""
	if tokens != nil {
		b, _ := json.Marshal(tokens)
		meta = `,"metadata":{"tokens":` + string(b) + `}`
	}
	ts := at.Format(time.RFC3339Nano)
	return fmt.Sprintf(`{"request":{"time":%q,"uri":"https://api.example.com%s","verb":"GET"},"response":{"time":%q,"status":%d},"company_id":%q%s}`,
		ts, route, ts, status, company, meta)
}

// backtestFixture stores 6 calls over two hours before testNow:
//
//	h-2: c1 200 /v1/search tokens 5;  c1 200 /v1/search tokens "7" (a string)
//	h-1: c2 200 /v1/search tokens 10; c2 500 /v1/search tokens 100
//	     c2 200 /v2/other tokens 1;   c3 200 /v1/search (no tokens)
func backtestFixture(t *testing.T) *harness {
	h := newHarness(t, nil)
	h2, h1 := testNow.Add(-2*time.Hour+time.Minute), testNow.Add(-time.Hour+time.Minute)
	a := h.ingest("/v1/events/batch", batch(
		call(h2, 200, "/v1/search?q=a", "c1", 5),
		call(h2.Add(time.Second), 200, "/v1/search", "c1", "7"),
		call(h1, 200, "/v1/search", "c2", 10),
		call(h1.Add(time.Second), 500, "/v1/search", "c2", 100),
		call(h1.Add(2*time.Second), 200, "/v2/other", "c2", 1),
		call(h1.Add(3*time.Second), 200, "/v1/search", "c3", nil),
	))
	if a.status != 200 && a.status != 201 {
		t.Fatalf("ingest: %d %s", a.status, a.body)
	}
	return h
}

var searchTokens = `"filter":"response.status == 200 and request.route startsWith \"/v1/search\"","value":"metadata.tokens","aggregation":"sum"`

func window(from, to time.Time, bucket string) string {
	return fmt.Sprintf(`"from":%q,"to":%q,"bucket":%q`, from.Format(time.RFC3339), to.Format(time.RFC3339), bucket)
}

type resultJSON struct {
	Buckets []struct {
		Start  time.Time `json:"start"`
		Value  *float64  `json:"value"`
		Events int64     `json:"events"`
	} `json:"buckets"`
	Groups []struct {
		Key    string   `json:"key"`
		Value  *float64 `json:"value"`
		Events int64    `json:"events"`
	} `json:"groups"`
	Total         *float64 `json:"total"`
	MatchedEvents int64    `json:"matched_events"`
	ScannedEvents int64    `json:"scanned_events"`
	ValueErrors   int64    `json:"value_errors"`
	Engine        string   `json:"engine"`
	TookMs        *int64   `json:"took_ms"`
	Versions      []struct {
		Version int       `json:"version"`
		From    time.Time `json:"from"`
		To      time.Time `json:"to"`
	} `json:"versions"`
}

func decodeResult(t *testing.T, a answer) resultJSON {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var r resultJSON
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// summary renders a result compactly for comparisons.
func (r resultJSON) summary() string {
	v := func(p *float64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "total %s matched %d scanned %d errors %d;", v(r.Total), r.MatchedEvents, r.ScannedEvents, r.ValueErrors)
	for _, x := range r.Buckets {
		fmt.Fprintf(&b, " %s=%s/%d", x.Start.Format("15:04"), v(x.Value), x.Events)
	}
	b.WriteString(";")
	for _, g := range r.Groups {
		fmt.Fprintf(&b, " %s=%s/%d", g.Key, v(g.Value), g.Events)
	}
	return b.String()
}

func TestBacktest(t *testing.T) {
	h := backtestFixture(t)
	win := window(testNow.Add(-3*time.Hour), testNow, "hour")
	// c1's "7" is a string: sum fails on it (a value error); c3 has no
	// tokens: nil, another value error. Both still match.
	want := "total 15 matched 4 scanned 6 errors 2; 10:00=5/2 11:00=10/2; c2=10/1 c1=5/2 c3=0/1"
	for _, eng := range []string{"", "sql", "vm"} {
		body := `{` + searchTokens + `,` + win + `,"engine":"` + eng + `"}`
		r := decodeResult(t, h.adminDo("POST", "/v1/backtest", body))
		if got := r.summary(); got != want {
			t.Errorf("engine %q:\n got %s\nwant %s", eng, got, want)
		}
		if wantEng := map[string]string{"": "sql", "sql": "sql", "vm": "vm"}[eng]; r.Engine != wantEng || r.TookMs == nil {
			t.Errorf("engine %q answered by %q, took_ms %v", eng, r.Engine, r.TookMs)
		}
	}
	// The same meter nested under "meter", daily, top 1.
	body := `{"meter":{` + searchTokens + `},` + window(testNow.Add(-3*time.Hour), testNow, "day") + `,"top":1}`
	if got := decodeResult(t, h.adminDo("POST", "/v1/backtest", body)).summary(); got != "total 15 matched 4 scanned 6 errors 2; 00:00=15/4; c2=10/1" {
		t.Errorf("nested, daily, top 1: %s", got)
	}
	// Defaults: the last 30 days before now, daily.
	r := decodeResult(t, h.adminDo("POST", "/v1/backtest", `{"filter":"true","aggregation":"count"}`))
	if r.MatchedEvents != 6 || len(r.Buckets) != 1 || !r.Buckets[0].Start.Equal(testNow.Truncate(24*time.Hour)) {
		t.Errorf("defaults: %s", r.summary())
	}
	// A window that excludes the first hour.
	r = decodeResult(t, h.adminDo("POST", "/v1/backtest", `{`+searchTokens+`,`+window(testNow.Add(-time.Hour), testNow, "hour")+`}`))
	if got := r.summary(); got != "total 10 matched 2 scanned 4 errors 1; 11:00=10/2; c2=10/1 c3=0/1" {
		t.Errorf("last hour: %s", got)
	}
}

func TestBacktestFallsBackToVM(t *testing.T) {
	h := backtestFixture(t)
	// ** with a computed exponent has no exact SQL translation.
	body := `{"filter":"response.status == 200","value":"2 ** len(company_id)","aggregation":"sum",` + window(testNow.Add(-3*time.Hour), testNow, "hour")
	a := h.adminDo("POST", "/v1/backtest", body+`}`)
	r := decodeResult(t, a)
	if r.Engine != "vm" || r.Total == nil || *r.Total != 20 || !strings.Contains(string(a.body), `"fallback"`) {
		t.Errorf("fallback: %s", a.body)
	}
	wantError(t, h.adminDo("POST", "/v1/backtest", body+`,"engine":"sql"}`), 422, "not_translatable", "engine", -1)
}

func TestBacktestErrors(t *testing.T) {
	h := backtestFixture(t)
	win := window(testNow.Add(-3*time.Hour), testNow, "hour")
	a := h.adminDo("POST", "/v1/backtest", `{"filter":"response.stauts == 200","aggregation":"count",`+win+`}`)
	wantError(t, a, 400, "unknown_field", "filter", -1)
	if m := a.json(t); m["line"] != float64(1) || m["column"] == nil || !strings.Contains(m["message"].(string), "response.status") {
		t.Errorf("unknown field: %s", a.body)
	}
	for _, c := range []struct{ body, code, field string }{
		{`{"filter":"true","aggregation":"count",` + window(testNow, testNow.Add(-time.Hour), "hour") + `}`, "invalid_window", "to"},
		{`{"filter":"true","aggregation":"count",` + window(testNow.Add(-time.Hour), testNow, "week") + `}`, "invalid_window", "bucket"},
		{`{"filter":"true","aggregation":"count","from":"yesterday"}`, "invalid_value", "from"},
		{`{"filter":"true","aggregation":"count","from":"2020-01-01T00:00:00Z"}`, "invalid_window", "from"}, // to is now: from reaches too far
		{`{"filter":"true","aggregation":"count","top":5000}`, "invalid_window", "top"},
		{`{"filter":"true","aggregation":"count","engine":"gpu"}`, "invalid_value", "engine"},
		{`{"filter":"true","aggregation":"count","meter":{"filter":"true","aggregation":"count"}}`, "ambiguous_meter", "meter"},
		{`{"filter":"true","aggregation":"count","window":{}}`, "unknown_field", "window"},
		{`{"filter":"true","aggregation":"count","limit":3}`, "unknown_field", "limit"},
	} {
		wantError(t, h.adminDo("POST", "/v1/backtest", c.body), 400, c.code, c.field, -1)
	}
	if a := h.do("POST", "/v1/backtest", strings.NewReader(`{"filter":"true"}`)); a.status != 401 {
		t.Errorf("without the admin token: %d", a.status)
	}
}

func TestMeterUsageFollowsVersions(t *testing.T) {
	h := backtestFixture(t)
	a := h.adminDo("POST", "/v1/meters", `{"name":"search",`+searchTokens+`}`)
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	id := a.json(t)["id"].(string)
	// Version 2 from testNow+10m counts every 2xx call at 1 token... as a sum of 1.
	eff := testNow.Add(10 * time.Minute)
	a = h.adminDo("POST", "/v1/meters/"+id+"/versions", fmt.Sprintf(`{"filter":"response.status < 300","value":"1","effective_from":%q}`, eff.Format(time.RFC3339)))
	if a.status != 201 {
		t.Fatalf("version: %d %s", a.status, a.body)
	}
	later := batch(call(testNow.Add(20*time.Minute), 200, "/v2/other", "c3", nil), call(testNow.Add(21*time.Minute), 500, "/v1/search", "c3", 9))
	if a := h.ingest("/v1/events/batch", later); a.status >= 300 {
		t.Fatalf("ingest: %d %s", a.status, a.body)
	}
	q := fmt.Sprintf("?from=%s&to=%s&bucket=hour", testNow.Add(-3*time.Hour).Format(time.RFC3339), testNow.Add(time.Hour).Format(time.RFC3339))
	r := decodeResult(t, h.admin("/v1/meters/"+id+"/usage"+q))
	// Version 1 over the fixture (15 from 4 matched), version 2 over the
	// later calls: only the 200 matches, adding 1.
	if got := r.summary(); got != "total 16 matched 5 scanned 8 errors 2; 10:00=5/2 11:00=10/2 12:00=1/1; c2=10/1 c1=5/2 c3=1/2" {
		t.Errorf("usage: %s", got)
	}
	if len(r.Versions) != 2 || r.Versions[0].Version != 1 || r.Versions[1].Version != 2 || !r.Versions[1].From.Equal(eff) {
		t.Errorf("versions: %+v", r.Versions)
	}
	// Minute buckets are not made of the hours kept (engine/hours): the
	// same figures, each at its call's minute.
	r = decodeResult(t, h.admin("/v1/meters/"+id+"/usage"+strings.Replace(q, "bucket=hour", "bucket=minute", 1)))
	if got := r.summary(); got != "total 16 matched 5 scanned 8 errors 2; 10:01=5/2 11:01=10/2 12:20=1/1; c2=10/1 c1=5/2 c3=1/2" {
		t.Errorf("usage by minute: %s", got)
	}
	wantError(t, h.admin("/v1/meters/nope/usage"), 404, "not_found", "", -1)
	wantError(t, h.admin("/v1/meters/"+id+"/usage?bucket=week"), 400, "invalid_window", "bucket", -1)
	wantError(t, h.admin("/v1/meters/"+id+"/usage?bucket=minute&from="+testNow.Add(-32*24*time.Hour).Format(time.RFC3339)), 400, "invalid_window", "bucket", -1)
	wantError(t, h.admin("/v1/meters/"+id+"/usage?from=2020-01-01T00:00:00Z"), 400, "invalid_window", "from", -1)
}

func TestBacktestSamples(t *testing.T) {
	h := backtestFixture(t)
	body := `{` + searchTokens + `,` + window(testNow.Add(-3*time.Hour), testNow, "hour") + `,"limit":2}`
	a := h.adminDo("POST", "/v1/backtest/samples", body)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var s struct {
		Matched []struct {
			Event      map[string]any `json:"event"`
			Value      any            `json:"value"`
			ValueError bool           `json:"value_error"`
		} `json:"matched"`
		Unmatched []struct {
			Event map[string]any `json:"event"`
		} `json:"unmatched"`
		Scanned int `json:"scanned"`
	}
	if err := json.Unmarshal(a.body, &s); err != nil {
		t.Fatal(err)
	}
	// Newest first: c3 (no tokens: a value error), then c2's 10.
	if len(s.Matched) != 2 || !s.Matched[0].ValueError || s.Matched[0].Value != nil || s.Matched[1].Value != float64(10) ||
		s.Matched[1].Event["company_id"] != "c2" || len(s.Unmatched) != 2 || s.Scanned != 6 {
		t.Errorf("samples: %s", a.body)
	}
	wantError(t, h.adminDo("POST", "/v1/backtest/samples", `{"filter":"true","aggregation":"count","limit":500}`), 400, "invalid_value", "limit", -1)
}
