package rules

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestCompileCondition(t *testing.T) {
	c, err := CompileCondition("condition", `invoices.unpaid > 0 and company.plan != "enterprise" or usage("mtr_1") > 10000 and customer startsWith "c-"`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"invoices.unpaid", "company.plan", `usage("mtr_1")`, "customer"}; !reflect.DeepEqual(c.Reads, want) {
		t.Errorf("reads %v, want %v", c.Reads, want)
	}
	if len(c.Usage) != 1 || c.Usage[0].Arg != "mtr_1" || c.Usage[0].Offset != 62 {
		t.Errorf("usage calls %+v", c.Usage)
	}
	usage := map[string]float64{"mtr_1": 12000}
	for _, tc := range []struct {
		env  CustomerEnv
		want bool
	}{
		{CustomerEnv{Customer: "x", Invoices: InvoicesEnv{Unpaid: 1}}, true},
		{CustomerEnv{Customer: "x", Invoices: InvoicesEnv{Unpaid: 1}, Company: map[string]any{"plan": "enterprise"}}, false},
		{CustomerEnv{Customer: "c-1"}, true},
		{CustomerEnv{Customer: "d-1"}, false},
	} {
		tc.env.Usage = func(id string) float64 { return usage[id] }
		if got, err := c.Eval(&tc.env); err != nil || got != tc.want {
			t.Errorf("%+v: %v, %v; want %v", tc.env, got, err, tc.want)
		}
	}
	env := CustomerEnv{Customer: "acme", Company: map[string]any{"plan": map[string]any{"tier": "pro"}},
		Invoices: InvoicesEnv{HostedInvoiceURL: "https://pay"}, Usage: func(string) float64 { return 7 }}
	for path, want := range map[string]any{"customer": "acme", "company.plan.tier": "pro", "company.nope": nil,
		"invoices.hosted_invoice_url": "https://pay", `usage("m")`: 7.0, "user.x": nil} {
		if got, ok := env.Value(path); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Value(%q) = %v, %v; want %v", path, got, ok, want)
		}
	}
	if _, ok := env.Value("invoices"); ok {
		t.Error("Value(invoices) is not a value")
	}
}

func TestConditionErrors(t *testing.T) {
	for src, want := range map[string]string{
		`invoices.unpayd > 0`:          "unknown_field",
		`usage(customer) > 1`:          "forbidden",
		`usage("a", "b") > 1`:          "invalid_value",
		`request.route == "/"`:         "unknown_field",
		`invoices.unpaid`:              "not_bool",
		`subscription.status == "x" +`: "syntax_error",
	} {
		_, err := CompileCondition("condition", src)
		if err == nil || err.Code != want || err.Line != 1 || err.Column < 1 {
			t.Errorf("%s: %+v, want %s with a position", src, err, want)
		}
	}
	for path, want := range map[string]bool{"invoices.hosted_invoice_url": true, "customer": true, "company.plan": true,
		"company": false, "invoices": false, "invoice.x": false, "user.": false, "subscription.current_period_end": true} {
		if IsConditionPath(path) != want {
			t.Errorf("IsConditionPath(%q) = %v", path, !want)
		}
	}
}

// TestGovernanceDocsExamples compiles the condition examples of
// docs/governance.md.
func TestGovernanceDocsExamples(t *testing.T) {
	b, err := os.ReadFile("../docs/governance.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	doc = doc[strings.Index(doc, "## The condition"):strings.Index(doc, "## Responses and placeholders")]
	blocks := strings.Split(doc, "```")
	n := 0
	for i := 1; i < len(blocks); i += 2 {
		for _, line := range strings.Split(strings.TrimSpace(blocks[i]), "\n") {
			if _, err := CompileCondition("condition", line); err != nil {
				t.Errorf("%s: %v", line, err)
			}
			n++
		}
	}
	if n < 4 {
		t.Fatalf("found %d examples", n)
	}
}
