package governance

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage/duckdb"
)

func valid() Definition {
	return Definition{Name: "Unpaid invoices", AppliesTo: AppliesToCompany, Condition: `invoices.unpaid > 0`,
		Response: Response{Status: 402, Headers: map[string]string{"X-Reason": "unpaid {{customer}}"},
			Body: json.RawMessage(`{"error": "payment required", "invoice": "{{invoices.hosted_invoice_url}}"}`)}}
}

func TestCheck(t *testing.T) {
	meters := func(id string) (string, bool) {
		return map[string]string{"mtr_1": rules.GroupByCompany, "mtr_u": rules.GroupByUser}[id], id == "mtr_1" || id == "mtr_u"
	}
	if _, err := Check(valid(), meters); err != nil {
		t.Fatalf("valid rule: %v", err)
	}
	for name, tc := range map[string]struct {
		mod         func(*Definition)
		field, code string
	}{
		"no name":           {func(d *Definition) { d.Name = " " }, "name", rules.CodeInvalidValue},
		"applies to":        {func(d *Definition) { d.AppliesTo = "team" }, "applies_to", rules.CodeInvalidValue},
		"condition":         {func(d *Definition) { d.Condition = "invoices.unpayd > 0" }, "condition", rules.CodeUnknownField},
		"unknown meter":     {func(d *Definition) { d.Condition = `usage("mtr_2") > 10` }, "condition", CodeUnknownMeter},
		"user meter":        {func(d *Definition) { d.Condition = `usage("mtr_u") > 10` }, "condition", CodeUnknownMeter},
		"status":            {func(d *Definition) { d.Response.Status = 0 }, "response.status", rules.CodeInvalidValue},
		"body not JSON":     {func(d *Definition) { d.Response.Body = json.RawMessage(`{x`) }, "response.body", rules.CodeInvalidValue},
		"placeholder":       {func(d *Definition) { d.Response.Body = json.RawMessage(`{"a": "{{invoice.url}}"}`) }, "response.body.a", CodePlaceholder},
		"default":           {func(d *Definition) { d.Response.Body = json.RawMessage(`{"a": "{{customer|x}}"}`) }, "response.body.a", CodePlaceholder},
		"spaces":            {func(d *Definition) { d.Response.Body = json.RawMessage(`{"a": "{{ customer }}"}`) }, "response.body.a", CodePlaceholder},
		"array placeholder": {func(d *Definition) { d.Response.Body = json.RawMessage(`{"a": ["{{customer}}"]}`) }, "response.body.a[0]", CodePlaceholder},
		"header name":       {func(d *Definition) { d.Response.Headers = map[string]string{"Bad Name": "x"} }, "response.headers", rules.CodeInvalidValue},
		"header var":        {func(d *Definition) { d.Response.Headers = map[string]string{"x-a": "{{nope}}"} }, "response.headers.X-A", CodePlaceholder},
		"route regex":       {func(d *Definition) { d.Routes = Routes{{Route: "/v1/(search"}} }, "routes[0].route", rules.CodeInvalidRegex},
		"route flags":       {func(d *Definition) { d.Routes = Routes{{Route: "(?i)/v1/search"}} }, "routes[0].route", rules.CodeInvalidRegex},
		"empty route":       {func(d *Definition) { d.Routes = Routes{{}} }, "routes[0]", rules.CodeInvalidValue},
		"unicode class":     {func(d *Definition) { d.Routes = Routes{{Route: `/v1/\pL+`}} }, "routes[0].route", rules.CodeInvalidRegex},
	} {
		d := valid()
		tc.mod(&d)
		_, err := Check(d, meters)
		es, ok := fault.AsList(err)
		if !ok || es[0].Field != tc.field || es[0].Code != tc.code || es[0].Message == "" {
			t.Errorf("%s: %v, want %s on %s", name, err, tc.code, tc.field)
		}
	}
	// usage() errors are positioned at the meter id.
	d := valid()
	d.Condition = "invoices.unpaid > 0 or\n  usage(\"mtr_9\") > 5"
	es, _ := fault.AsList(func() error { _, err := Check(d, meters); return err }())
	if len(es) != 1 || es[0].Line != 2 || es[0].Column != 9 {
		t.Fatalf("unknown meter position: %+v", es)
	}
	// Arrays without placeholders, and routes given as one object, are fine.
	d = valid()
	d.Response.Body = json.RawMessage(`{"links": ["https://a", "https://b"], "who": "{{customer}}"}`)
	if err := json.Unmarshal([]byte(`{"route": "^/v1/search", "verb": "GET"}`), &d.Routes); err != nil || len(d.Routes) != 1 {
		t.Fatalf("routes as one object: %v %v", d.Routes, err)
	}
	if _, err := Check(d, meters); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryLifeCycle(t *testing.T) {
	ctx := context.Background()
	st, err := duckdb.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := NewRegistry(st, func(_ context.Context, id string) (string, bool) { return rules.GroupByCompany, id == "mtr_1" }, nil)
	r, err := g.Create(ctx, valid(), "ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ID) != 24 || r.Status != StatusInactive || r.CurrentVersion != 1 || !r.Latest().Block || r.Latest().Routes == nil {
		t.Fatalf("created: %+v", r)
	}
	v2 := Definition{Condition: `usage("mtr_1") > 10000`, Response: Response{Status: 429, Body: json.RawMessage(`"quota"`)},
		Block: new(bool), Routes: Routes{{Route: "^/v1/search"}}}
	if r, err = g.AddVersion(ctx, r.ID, v2, "bob"); err != nil || r.CurrentVersion != 2 || r.Latest().Block {
		t.Fatalf("version 2: %+v, %v", r, err)
	}
	if _, err := g.AddVersion(ctx, r.ID, Definition{AppliesTo: AppliesToUser, Condition: "true", Response: Response{Status: 403}}, ""); err == nil ||
		!strings.Contains(err.Error(), "applies_to") {
		t.Fatalf("changing applies_to: %v", err)
	}
	on, name := true, "Search quota"
	if r, err = g.Patch(ctx, r.ID, &name, &on, "cy"); err != nil || r.Name != name || !r.Active() {
		t.Fatalf("patch: %+v, %v", r, err)
	}
	if r, err = g.Archive(ctx, r.ID, ""); err != nil || r.Status != StatusArchived {
		t.Fatalf("archive: %+v, %v", r, err)
	}
	if _, err := g.Patch(ctx, r.ID, nil, &on, ""); err != ErrArchived {
		t.Fatalf("patch after archive: %v", err)
	}
	got, err := g.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range got.Changes {
		kinds = append(kinds, c.Kind)
	}
	if strings.Join(kinds, ",") != "created,version,renamed,status,archived" || got.Versions[0].Condition != "invoices.unpaid > 0" {
		t.Fatalf("history %v, versions %+v", kinds, got.Versions)
	}
	if _, err := g.Get(ctx, "000000000000000000000000"); err != ErrNotFound {
		t.Fatalf("unknown id: %v", err)
	}
	list, err := g.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("list: %v, %v", list, err)
	}
}
