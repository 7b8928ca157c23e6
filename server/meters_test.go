package server

import (
	"strings"
	"testing"
	"time"
)

func (h *harness) adminDo(method, path, body string, headers ...string) answer {
	h.t.Helper()
	return h.do(method, path, strings.NewReader(body), append([]string{"Authorization", "Bearer " + testAdmin, "Content-Type", "application/json"}, headers...)...)
}

const searchMeter = `{"name":"Search calls","filter":"response.status == 200 and request.route startsWith \"/v1/search\"","aggregation":"count","stripe_price_id":"price_1"}`

func TestMeterLifecycle(t *testing.T) {
	// A clock with nanoseconds: answers must show what the store keeps.
	h := newHarness(t, func(c *Config) { c.Now = func() time.Time { return testNow.Add(123456789) } })
	a := h.adminDo("POST", "/v1/meters", searchMeter, "X-Meterd-Actor", "Ann")
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	m := a.json(t)
	id := m["id"].(string)
	if got := h.admin("/v1/meters/" + id).json(t); got["created_at"] != m["created_at"] {
		t.Fatalf("created_at %v on creation, %v when read back", m["created_at"], got["created_at"])
	}
	if m["status"] != "inactive" || m["current_version"] != float64(1) || m["created_by"] != "Ann" ||
		m["current"].(map[string]any)["filter"] == "" {
		t.Fatalf("created meter %s", a.body)
	}
	eff := testNow.Add(time.Hour).Format(time.RFC3339)
	a = h.adminDo("POST", "/v1/meters/"+id+"/versions", `{"filter":"response.status < 300","stripe_price_id":"price_2","effective_from":"`+eff+`"}`)
	if a.status != 201 || a.json(t)["current_version"] != float64(2) {
		t.Fatalf("new version: %d %s", a.status, a.body)
	}
	if a := h.adminDo("PATCH", "/v1/meters/"+id, `{"name":"Search","active":true}`); a.status != 200 || a.json(t)["status"] != "active" || a.json(t)["name"] != "Search" {
		t.Fatalf("patch: %d %s", a.status, a.body)
	}
	hist := h.admin("/v1/meters/" + id + "/versions").json(t)
	kinds := []string{}
	for _, c := range hist["changes"].([]any) {
		kinds = append(kinds, c.(map[string]any)["kind"].(string))
	}
	if strings.Join(kinds, ",") != "created,version,renamed,status" || len(hist["versions"].([]any)) != 2 {
		t.Fatalf("history %v", hist)
	}
	a = h.adminDo("DELETE", "/v1/meters/"+id, "")
	wantError(t, a, 405, "meters_are_not_deleted", "", -1)
	if a.header.Get("Allow") == "" {
		t.Fatal("405 without Allow")
	}
	if a := h.adminDo("POST", "/v1/meters/"+id+"/archive", ""); a.status != 200 || a.json(t)["status"] != "archived" {
		t.Fatalf("archive: %d %s", a.status, a.body)
	}
	wantError(t, h.adminDo("PATCH", "/v1/meters/"+id, `{"active":true}`), 409, "archived", "", -1)
	list := h.admin("/v1/meters").json(t)["meters"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["status"] != "archived" {
		t.Fatalf("list %v", list)
	}
}

func TestMeterErrors(t *testing.T) {
	h := newHarness(t, nil)
	a := h.adminDo("POST", "/v1/meters", `{"name":"x","filter":"response.status == 200 and\n request.rout == \"/\"","aggregation":"count"}`)
	wantError(t, a, 400, "unknown_field", "filter", -1)
	m := a.json(t)
	if m["line"] != float64(2) || m["column"] == nil || !strings.Contains(m["message"].(string), "request.route") {
		t.Fatalf("positioned error with a suggestion: %s", a.body)
	}
	wantError(t, h.adminDo("POST", "/v1/meters", `{"name":"x","filter":"1 + 1","aggregation":"count"}`), 400, "not_bool", "filter", -1)
	wantError(t, h.adminDo("POST", "/v1/meters", `{"name":"x","filtre":"true","aggregation":"count"}`), 400, "unknown_field", "filtre", -1)
	wantError(t, h.adminDo("POST", "/v1/meters", `{"name":"x","filter":true}`), 400, "invalid_type", "filter", -1)
	wantError(t, h.adminDo("POST", "/v1/backtest", `{"filter":true}`), 400, "invalid_type", "filter", -1)
	id := h.adminDo("POST", "/v1/meters", searchMeter).json(t)["id"].(string)
	wantError(t, h.adminDo("PATCH", "/v1/meters/"+id, `{"filter":"true"}`), 400, "immutable_field", "filter", -1)
	wantError(t, h.adminDo("POST", "/v1/meters/"+id+"/versions", `{"filter":"true","effective_from":"2020-01-01T00:00:00Z"}`), 400, "effective_from_in_past", "effective_from", -1)
	wantError(t, h.adminDo("POST", "/v1/meters/"+id+"/versions", `{"filter":"true","aggregation":"sum","value":"metadata.tokens"}`), 400, "immutable_field", "aggregation", -1)
	wantError(t, h.admin("/v1/meters/mtr_missing"), 404, "not_found", "", -1)
	if hist := h.admin("/v1/meters/" + id + "/versions").json(t); len(hist["changes"].([]any)) != 1 {
		t.Fatalf("refused changes were recorded: %v", hist)
	}
	v := h.adminDo("POST", "/v1/meters/validate", `{"name":"x","filter":"metadata.tokens >","aggregation":"count"}`).json(t)
	if v["valid"] != false || len(v["errors"].([]any)) == 0 {
		t.Fatalf("validate: %v", v)
	}
	wantError(t, h.do("GET", "/v1/meters", nil, "X-Moesif-Application-Id", testIngest), 401, "unauthorized", "", -1)
}

// A meter's slug: set at creation or by PATCH, recorded in its history,
// unique (409), checked (400), and the error names the field.
func TestMeterSlug(t *testing.T) {
	h := newHarness(t, nil)
	a := h.adminDo("POST", "/v1/meters", strings.Replace(searchMeter, `{`, `{"slug":"search_calls",`, 1))
	if a.status != 201 || a.json(t)["slug"] != "search_calls" {
		t.Fatalf("create with a slug: %d %s", a.status, a.body)
	}
	wantError(t, h.adminDo("POST", "/v1/meters", strings.Replace(searchMeter, `{`, `{"slug":"search_calls",`, 1)), 409, "slug_taken", "slug", -1)
	wantError(t, h.adminDo("POST", "/v1/meters", strings.Replace(searchMeter, `{`, `{"slug":"Search Calls",`, 1)), 400, "invalid_value", "slug", -1)
	a = h.adminDo("POST", "/v1/meters", searchMeter)
	id := a.json(t)["id"].(string)
	if _, ok := a.json(t)["slug"]; ok {
		t.Fatalf("a meter without a slug shows one: %s", a.body)
	}
	wantError(t, h.adminDo("PATCH", "/v1/meters/"+id, `{"slug":"search_calls","name":"renamed"}`), 409, "slug_taken", "slug", -1)
	wantError(t, h.adminDo("PATCH", "/v1/meters/"+id, `{"slug":7}`), 400, "invalid_type", "slug", -1)
	if a := h.adminDo("PATCH", "/v1/meters/"+id, `{"slug":"searches","name":"Searches"}`); a.status != 200 || a.json(t)["slug"] != "searches" || a.json(t)["name"] != "Searches" {
		t.Fatalf("patch the slug: %d %s", a.status, a.body)
	}
	var kinds []string
	for _, c := range h.admin("/v1/meters/" + id + "/versions").json(t)["changes"].([]any) {
		kinds = append(kinds, c.(map[string]any)["kind"].(string))
	}
	if strings.Join(kinds, ",") != "created,slug,renamed" {
		t.Fatalf("history %v (the refused patch must have changed nothing)", kinds)
	}
}
