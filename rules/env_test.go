package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
)

func TestEnvFromEvent(t *testing.T) {
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	e := storage.Event{
		Time: ts, Verb: "GET", URI: "https://x.test/v1/a?q=1", Route: "/v1/a", Host: "x.test", IP: "10.0.0.1",
		APIVersion: "v2", RequestHeaders: map[string]string{"x-api-key": "k"}, RequestSize: 12,
		HasResponse: true, Status: 201, ResponseHeaders: map[string]string{"content-type": "text/plain"}, ResponseSize: 34,
		DurationMs: 56, UserID: "u", CompanyID: "c", SessionToken: "s", Weight: 10, BlockedBy: "r1",
		Metadata:      `{"tokens": 12, "big": 9007199254740993, "nested": {"a": [1, "x"]}, "n": null}`,
		UserTraits:    `{"tier": "gold"}`,
		CompanyTraits: "{}",
	}
	env, err := EnvFromEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		Request: Request{Verb: "GET", Route: "/v1/a", URI: "https://x.test/v1/a?q=1", Host: "x.test", IP: "10.0.0.1",
			Headers: map[string]string{"x-api-key": "k"}, BodySize: 12, APIVersion: "v2"},
		Response:   Response{Status: 201, BodySize: 34, Headers: map[string]string{"content-type": "text/plain"}},
		DurationMs: 56, Time: 1735689600000, UserID: "u", CompanyID: "c", SessionToken: "s", Weight: 10, BlockedBy: "r1",
		// Every JSON number is a float64 (2^53 + 1 rounds to 2^53).
		Metadata: map[string]any{"tokens": 12.0, "big": 9007199254740992.0, "nested": map[string]any{"a": []any{1.0, "x"}}, "n": nil},
		User:     map[string]any{"tier": "gold"},
	}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("got  %+v\nwant %+v", env, want)
	}

	// No response: status 0, size 0, no headers, whatever the event holds.
	e.HasResponse = false
	env, err = EnvFromEvent(e)
	if err != nil || !reflect.DeepEqual(env.Response, Response{}) {
		t.Fatalf("no response: %+v %v", env.Response, err)
	}

	for _, bad := range []string{`[1]`, `"x"`, `{"a":`, `12`} {
		e.Metadata = bad
		if _, err := EnvFromEvent(e); err == nil || !strings.Contains(err.Error(), "metadata") {
			t.Errorf("metadata %s: err = %v", bad, err)
		}
	}
	e.Metadata = "{}"
	e.UserTraits = "[]"
	if _, err := EnvFromEvent(e); err == nil || !strings.Contains(err.Error(), "user traits") {
		t.Errorf("user traits: err = %v", err)
	}
}

// The environment the checker sees is the one documented in Fields.
func TestFieldsMatchEnv(t *testing.T) {
	for _, f := range Fields {
		src := f.Path
		switch f.Type {
		case "struct":
			continue
		case "object", "map[string]string":
			src = `"k" in ` + f.Path
		case "int":
			src = f.Path + " == 0"
		case "string":
			src = f.Path + ` == ""`
		}
		if _, err := Compile(Definition{Name: "m", Filter: src, Aggregation: AggCount}); err != nil {
			t.Errorf("%s: %v", f.Path, err)
		}
	}
	// And nothing more: every expr-visible field is in Fields.
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, rt reflect.Type) {
		for i := 0; i < rt.NumField(); i++ {
			p := prefix + rt.Field(i).Tag.Get("expr")
			if _, ok := meterLanguage.kinds[p]; !ok {
				t.Errorf("env field %s is not in Fields", p)
			}
			if rt.Field(i).Type.Kind() == reflect.Struct {
				walk(p+".", rt.Field(i).Type)
			}
		}
	}
	walk("", reflect.TypeOf(Env{}))
}

// An event's JSON goes through EnvFromEvent and a meter end to end.
func TestEventToResult(t *testing.T) {
	e := storage.Event{HasResponse: true, Status: 200, Route: "/v1/search", CompanyID: "c",
		Metadata: `{"usage": {"tokens": 1500}}`, CompanyTraits: `{"plan": "enterprise"}`, UserTraits: ""}
	env, err := EnvFromEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	m := mustCompile(t, Definition{
		Filter: `response.status == 200 and request.route startsWith "/v1/search" and company.plan in ["pro", "enterprise"]`,
		Value:  "metadata.usage.tokens / 1000",
	})
	if got := m.Eval(&env); got != (Result{Matched: true, Value: 1.5}) {
		t.Fatalf("got %+v", got)
	}
}
