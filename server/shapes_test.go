package server

import (
	"strings"
	"testing"
)

// Each Moesif endpoint and its /batch twin take one object or an array of
// them (docs/api.md); an array's errors name the element, an object's
// none.
func TestMoesifEndpointsTakeAnObjectOrAnArray(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct {
		path, body string
		accepted   float64
	}{
		{"/v1/events", batch(event("a1", 0), event("a2", 1)), 2},
		{"/v1/events/batch", event("b1", 2), 1},
		{"/v1/users", `[{"user_id":"u1"},{"user_id":"u2"}]`, 2},
		{"/v1/users/batch", `{"user_id":"u3"}`, 1},
		{"/v1/companies", `[{"company_id":"c1"}]`, 1},
		{"/v1/companies/batch", `{"company_id":"c2"}`, 1},
	} {
		if a := h.ingest(c.path, c.body); a.status != 200 || a.json(t)["accepted"] != c.accepted {
			t.Errorf("%s %s: %d %s, want %v accepted", c.path, c.body, a.status, a.body, c.accepted)
		}
	}
	if n := h.count(); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
	wantError(t, h.ingest("/v1/events", batch(event("c1", 0), `{"user_id":"u"}`)), 400, "missing_field", "request", 1)
	wantError(t, h.ingest("/v1/events/batch", `{"user_id":"u"}`), 400, "missing_field", "request", -1)
	wantError(t, h.ingest("/v1/users", `[{"user_id":"u"},{}]`), 400, "missing_field", "user_id", 1)
}

// A body that is not JSON is invalid_json with its line, column and byte
// offset on every ingestion endpoint, whatever else is wrong with it; JSON
// of the wrong shape is invalid_type.
func TestNonJSONBodiesAreInvalidJSON(t *testing.T) {
	h := newHarness(t, nil)
	ce := func(ct string) []string { return []string{"Content-Type", ct} }
	for _, path := range []string{"/v1/events", "/v1/events/batch", "/v1/users", "/v1/users/batch", "/v1/companies", "/v1/companies/batch", "/api/v1/events"} {
		var headers []string
		if path == "/api/v1/events" {
			headers = ce("application/cloudevents+json")
		}
		for _, c := range []struct {
			body, where string
			index       int
		}{
			{"xyz", "line 1, column 1 (byte 0)", -1},
			{"not json", "line 1, column 1 (byte 0)", -1},
			{`{"request":`, "line 1, column 12 (byte 11): the body ends", -1},
			{"{\"id\":\"1\",\n \"a\":tru}", "line 2, column 6 (byte 16)", -1},
			{`[{"user_id":"u","company_id":"c","request":{}}, {"x":`, "line 1, column 54 (byte 53)", 1},
		} {
			a := h.ingest(path, c.body, headers...)
			if path == "/api/v1/events" && c.body[0] == '[' {
				a = h.ingest(path, c.body, ce("application/cloudevents-batch+json")...)
			}
			wantError(t, a, 400, "invalid_json", "", c.index)
			if msg := a.json(t)["message"].(string); !strings.Contains(msg, c.where) {
				t.Errorf("%s %q: %q, want the position %q", path, c.body, msg, c.where)
			}
		}
		wantError(t, h.ingest(path, `"an event"`, headers...), 400, "invalid_type", "", -1)
	}
	if n := h.count(); n != 0 {
		t.Errorf("%d events stored", n)
	}
}

// The admin API's bodies too: not JSON (or more than one value) is
// invalid_json with its position.
func TestAdminBodiesThatAreNotJSON(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct{ path, body, where string }{
		{"/v1/meters", "xyz", "line 1, column 1 (byte 0)"},
		{"/v1/backtest", `{"filter":`, "line 1, column 11 (byte 10): the body ends"},
		{"/v1/meters/validate", "{\"name\":\"x\",\n\"filter\":tru}", "line 2, column 10 (byte 22)"},
		{"/v1/meters", `{"name":"x","filter":"true","aggregation":"count"} {}`, "line 1, column 52 (byte 51): unexpected data after the JSON value"},
	} {
		a := h.adminDo("POST", c.path, c.body)
		wantError(t, a, 400, "invalid_json", "", -1)
		if msg := a.json(t)["message"].(string); !strings.Contains(msg, c.where) {
			t.Errorf("%s %q: %q, want the position %q", c.path, c.body, msg, c.where)
		}
	}
	if ms := h.admin("/v1/meters").json(t)["meters"].([]any); len(ms) != 0 {
		t.Errorf("meters saved from bodies that are not JSON: %v", ms)
	}
}
