package server

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestListPagesAndFilters(t *testing.T) {
	h := newHarness(t, nil)
	var evs []string
	for i := 0; i < 7; i++ {
		evs = append(evs, strings.Replace(event(fmt.Sprintf("p%d", i), -i), `"u1"`, fmt.Sprintf(`"u%d"`, i%2), 1))
	}
	h.ingest("/v1/events/batch", batch(evs...))
	var got []string
	path := "/v1/events?limit=3"
	for pages := 0; ; pages++ {
		m := h.admin(path).json(t)
		for _, e := range m["events"].([]any) {
			got = append(got, e.(map[string]any)["external_id"].(string))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/v1/events?limit=3&cursor=" + url.QueryEscape(next)
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if strings.Join(got, ",") != "p0,p1,p2,p3,p4,p5,p6" {
		t.Fatalf("newest first over pages: %v", got)
	}
	from := url.QueryEscape(testNow.Add(-3 * time.Second).Format(time.RFC3339))
	m := h.admin("/v1/events?user_id=u1&from=" + from).json(t)
	if n := len(m["events"].([]any)); n != 2 { // p1 (-1s) and p3 (-3s, from is inclusive); p5 is before from
		t.Fatalf("user_id+from filter: %d events, want 2", n)
	}
	for _, c := range []struct{ q, field string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=x", "limit"},
		{"from=yesterday", "from"}, {"cursor=bm90LWEtY3Vyc29y", "cursor"},
		{"from=2026-11-25T12:00:00Z&to=2026-11-25T11:00:00Z", "to"},
	} {
		wantError(t, h.admin("/v1/events?"+c.q), 400, "invalid_value", c.field, -1)
	}
}

func TestCallFilters(t *testing.T) {
	h := newHarness(t, nil)
	var evs []string
	for i, st := range []string{"200", "404", "503", "429"} {
		e := strings.Replace(event(fmt.Sprintf("s%d", i), -i), `"status":200`, `"status":`+st, 1)
		if i%2 == 1 {
			e = strings.Replace(strings.Replace(e, "/v1/search?q=1", "/v1/other", 1), `"verb":"GET"`, `"verb":"post"`, 1)
		}
		if i >= 2 { // s2 and s3 were answered by a governance rule
			e = strings.Replace(e, `"user_id"`, `"blocked_by":"r`+strconv.Itoa(i-1)+`","user_id"`, 1)
		}
		evs = append(evs, e)
	}
	h.ingest("/v1/events/batch", batch(evs...))
	byID := map[string]any{}
	for _, e := range h.admin("/v1/events").json(t)["events"].([]any) {
		byID[e.(map[string]any)["external_id"].(string)] = e.(map[string]any)["blocked_by"]
	}
	if fmt.Sprint(byID) != "map[s0:<nil> s1:<nil> s2:r1 s3:r2]" {
		t.Errorf("blocked_by of the listed events: %v, want r1 and r2 on s2 and s3 only", byID)
	}
	for _, c := range []struct{ q, want string }{
		{"route=/v1/other", "s1,s3"}, {"status=4xx", "s1,s3"}, {"status=4XX&route=/v1/search", ""},
		{"status=503", "s2"}, {"verb=post", "s1,s3"}, {"verb=GET&status=2xx", "s0"}, {"status=0", ""},
		{"blocked=true", "s2,s3"}, {"blocked=false", "s0,s1"}, {"blocked_by=r2", "s3"}, {"blocked=true&blocked_by=r1", "s2"},
		{"blocked_by=r1&route=/v1/other", ""},
	} {
		var got []string
		for _, e := range h.admin("/v1/events?" + c.q).json(t)["events"].([]any) {
			got = append(got, e.(map[string]any)["external_id"].(string))
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("GET /v1/events?%s: %v, want %s", c.q, got, c.want)
		}
		want := 0
		if c.want != "" {
			want = len(strings.Split(c.want, ","))
		}
		if n := h.admin("/v1/events/stats?" + c.q).json(t)["count"]; n != float64(want) {
			t.Errorf("GET /v1/events/stats?%s: count %v, want %d", c.q, n, want)
		}
	}
	for _, q := range []string{"status=4x", "status=600", "status=99", "status=abc", "status=6xx", "status=-1",
		"blocked=yes", "blocked=1", "blocked=TRUE", "blocked=false&blocked_by=r1"} {
		field, _, _ := strings.Cut(q, "=")
		wantError(t, h.admin("/v1/events?"+q), 400, "invalid_value", field, -1)
		wantError(t, h.admin("/v1/events/stats?"+q), 400, "invalid_value", field, -1)
	}
}

func TestStats(t *testing.T) {
	h := newHarness(t, nil)
	// Profiles first, so the events are stamped with their traits.
	for _, p := range [][2]string{
		{"/v1/companies", `{"company_id":"c1","metadata":{"plan":"pro","limits":{"rps":10}}}`},
		{"/v1/users", `{"user_id":"u1","company_id":"c1","metadata":{"name":"Ann"}}`},
	} {
		if a := h.ingest(p[0], p[1]); a.status != 200 {
			t.Fatalf("%s: %d %s", p[0], a.status, a.body)
		}
	}
	h.ingest("/v1/events/batch", batch(event("s1", -10), strings.Replace(event("s2", 0), `{"tokens":5}`, `{"tokens":"x","plan":{"tier":"pro"}}`, 1)))
	m := h.admin("/v1/events/stats").json(t)
	if m["count"] != float64(2) || m["distinct_users"] != float64(1) || m["distinct_companies"] != float64(1) {
		t.Fatalf("stats %v", m)
	}
	if m["first_time"] != testNow.Add(-10*time.Second).Format(timeFormat) || m["last_time"] != testNow.Format(timeFormat) {
		t.Fatalf("first/last %v %v", m["first_time"], m["last_time"])
	}
	var keys []string
	for _, k := range m["metadata_keys"].([]any) {
		k := k.(map[string]any)
		keys = append(keys, fmt.Sprintf("%s:%s:%v", k["key"], k["type"], k["count"]))
	}
	if strings.Join(keys, " ") != "plan:object:1 plan.tier:string:1 tokens:number:1 tokens:string:1" {
		t.Fatalf("metadata keys %v", keys)
	}
	keys = nil
	for _, k := range m["trait_keys"].([]any) {
		k := k.(map[string]any)
		keys = append(keys, fmt.Sprintf("%s:%s:%v", k["key"], k["type"], k["count"]))
	}
	if strings.Join(keys, " ") != "company.limits:object:2 company.limits.rps:number:2 company.plan:string:2 user.name:string:2" {
		t.Fatalf("trait keys %v", keys)
	}
	empty := h.admin("/v1/events/stats?company_id=nobody").json(t)
	if empty["count"] != float64(0) || empty["first_time"] != nil || fmt.Sprint(empty["metadata_keys"], empty["trait_keys"]) != "[] []" {
		t.Fatalf("empty stats %v", empty)
	}
}

func TestProfilesStampTraitsNewestWins(t *testing.T) {
	h := newHarness(t, nil)
	post := func(path, body string) {
		t.Helper()
		if a := h.ingest(path, body); a.status != 200 {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
	}
	post("/v1/companies", `{"company_id":"c1","modified_time":"2026-11-25T10:00:00Z","metadata":{"plan":"pro","limits":{"rps":10,"burst":20}}}`)
	// Arrives later but is older: must not overwrite plan.
	post("/v1/companies/batch", `[{"company_id":"c1","modified_time":"2026-11-20T10:00:00Z","metadata":{"plan":"free","region":"eu"}}]`)
	post("/v1/companies", `{"company_id":"c1","modified_time":"2026-11-25T11:00:00Z","metadata":{"limits":{"rps":50}}}`)
	post("/v1/users", `{"user_id":"u1","company_id":"c1","metadata":{"name":"Ann"}}`)
	wantError(t, h.ingest("/v1/users/batch", `[{"user_id":"u2"},{"company_id":"c9"}]`), 400, "missing_field", "user_id", 1)

	c := h.admin("/v1/companies/c1").json(t)
	want := `map[limits:map[burst:20 rps:50] plan:pro region:eu]`
	if got := fmt.Sprint(c["metadata"]); got != want || c["updates"] != float64(3) {
		t.Fatalf("merged company %s (updates %v), want %s", got, c["updates"], want)
	}
	h.ingest("/v1/events", event("with-traits", 0))
	ev := h.admin("/v1/events?limit=1").json(t)["events"].([]any)[0].(map[string]any)
	if fmt.Sprint(ev["company_traits"]) != want || fmt.Sprint(ev["user_traits"]) != "map[name:Ann]" {
		t.Fatalf("event traits %v / %v", ev["company_traits"], ev["user_traits"])
	}
	wantError(t, h.admin("/v1/companies/nobody"), 404, "not_found", "", -1)
}

func TestMoesifConfigAndRules(t *testing.T) {
	h := newHarness(t, nil)
	a := h.do("GET", "/v1/config", nil, "X-Moesif-Application-Id", testIngest)
	if m := a.json(t); a.status != 200 || m["sample_rate"] != float64(100) || a.header.Get("X-Moesif-Config-ETag") == "" {
		t.Fatalf("config %d %s", a.status, a.body)
	}
	a = h.do("GET", "/v1/rules", nil, "X-Moesif-Application-Id", testIngest)
	if a.status != 200 || strings.TrimSpace(string(a.body)) != "[]" {
		t.Fatalf("rules %d %s", a.status, a.body)
	}
	if a := h.do("GET", "/healthz", nil); a.status != 200 {
		t.Fatalf("healthz %d", a.status)
	}
	if m := h.admin("/v1/debug/runtime").json(t); m["go_heap_inuse_bytes"].(float64) <= 0 || m["queued_events"] != float64(0) {
		t.Fatalf("runtime stats %v", m)
	}
}
