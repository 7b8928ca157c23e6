package rules

import (
	"strconv"
	"strings"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/meterd/meterd/engine/fault"
)

// CustomerEnv is what a governance condition sees: one customer (a
// company or a user, as the rule applies), its Stripe state and its usage.
// Every field is always present: a customer without a subscription has
// subscription.status "" and periods 0; without unpaid invoices,
// invoices.unpaid 0 and hosted_invoice_url "".
type CustomerEnv struct {
	Customer     string          `expr:"customer"`
	Company      map[string]any  `expr:"company"`
	User         map[string]any  `expr:"user"`
	Subscription SubscriptionEnv `expr:"subscription"`
	Invoices     InvoicesEnv     `expr:"invoices"`
	// Usage is usage("METER_ID"): the customer's usage of that meter in
	// its current billing period, before rounding (0 without events).
	Usage func(meterID string) float64 `expr:"usage"`
}

// SubscriptionEnv is the customer's subscription (see the governance
// docs for which one when it has several).
type SubscriptionEnv struct {
	Status             string `expr:"status"`
	CurrentPeriodStart int    `expr:"current_period_start"` // unix ms
	CurrentPeriodEnd   int    `expr:"current_period_end"`   // unix ms
}

// InvoicesEnv summarises the customer's unpaid Stripe invoices.
type InvoicesEnv struct {
	Unpaid           int    `expr:"unpaid"`
	AmountDue        int    `expr:"amount_due"` // minor units (cents)
	OldestUnpaidDays int    `expr:"oldest_unpaid_days"`
	HostedInvoiceURL string `expr:"hosted_invoice_url"` // the oldest unpaid invoice's
}

// ConditionFields lists the condition environment, as Fields does for
// meters.
var ConditionFields = []Field{
	{"customer", "string", `"acme"`, "the customer's id: its company_id (company rules) or user_id (user rules)"},
	{"company", "object", `company.plan`, "the company's profile traits (a user rule: the user's company's)"},
	{"user", "object", `user.tier`, "the user's profile traits (empty for company rules)"},
	{"subscription", "struct", "", "the customer's Stripe subscription; use one of its fields"},
	{"subscription.status", "string", `"past_due"`, `its status: active, trialing, past_due, unpaid, paused, canceled, ...; "" without a subscription`},
	{"subscription.current_period_start", "int", "1735689600000", "start of its current billing period, unix milliseconds; 0 without one"},
	{"subscription.current_period_end", "int", "1738368000000", "end of its current billing period, unix milliseconds; 0 without one"},
	{"invoices", "struct", "", "the customer's unpaid Stripe invoices; use one of their fields"},
	{"invoices.unpaid", "int", "1", "unpaid invoices: open with a failed payment attempt or past their due date, or marked uncollectible"},
	{"invoices.amount_due", "int", "4900", "what they still owe, in the currency's minor unit (cents)"},
	{"invoices.oldest_unpaid_days", "int", "3", "age in whole days of the oldest unpaid invoice; 0 without one"},
	{"invoices.hosted_invoice_url", "string", `"https://invoice.stripe.com/i/..."`, `the oldest unpaid invoice's payment page; "" without one`},
}

// ConditionCalls lists the functions of the condition environment, beside
// the language's (rules.Language): for docs and the console's completion.
var ConditionCalls = []Construct{
	{"usage", "function", true, `usage("METER_ID"): the customer's usage of that meter (grouped by the rule's kind of customer) in its current billing period, before rounding; 0 without events`},
}

// conditionLanguage is the governance conditions'.
var conditionLanguage = newLanguage(CustomerEnv{}, ConditionFields, callNames(ConditionCalls), "company", "user")

func callNames(cs []Construct) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// Condition is a compiled governance condition. It is immutable and safe
// for concurrent use.
type Condition struct {
	Source string
	Tree   *parser.Tree
	// Reads are the values the condition reads, as paths ("invoices.unpaid",
	// "company.plan", `usage("mtr_1")`), in order: what made a match.
	Reads []string
	// Usage lists its usage("METER_ID") calls.
	Usage   []Call
	program *vm.Program
}

// CompileCondition compiles a governance condition (field names the JSON
// field it came from, for errors): a bool expression over CustomerEnv,
// with the meter language's operators and functions, and usage("METER_ID")
// whose argument must be a constant string.
func CompileCondition(field, src string) (*Condition, *fault.Error) {
	tree, program, w, err := compileIn(conditionLanguage, field, src, wantBool, false)
	if err != nil {
		return nil, err
	}
	return &Condition{Source: src, Tree: tree, Reads: w.reads, Usage: w.calls, program: program}, nil
}

// Position is the line and column (1-based, in runes) of a rune offset of
// the condition, for errors about what a call names.
func (c *Condition) Position(field string, offset int, code, message string) *fault.Error {
	return exprSource{field: field, src: file.NewSource(c.Source)}.at(offset, code, "%s", message)
}

// Eval runs the condition for one customer: true when it holds. A runtime
// error (nil or mismatched types, a failed conversion) makes it false, as
// in a meter's filter; the error is returned so that a preview can show it.
func (c *Condition) Eval(env *CustomerEnv) (bool, error) {
	v := vms.Get().(*vm.VM)
	out, err := v.Run(c.program, env)
	vms.Put(v)
	if err != nil {
		return false, err
	}
	return out == true, nil
}

// Value reads one path of the environment, as Reads name them and as
// response placeholders ({{invoices.hosted_invoice_url}}) do: ok is false
// for a path the environment does not have.
func (e *CustomerEnv) Value(path string) (any, bool) {
	switch path {
	case "customer":
		return e.Customer, true
	case "subscription.status":
		return e.Subscription.Status, true
	case "subscription.current_period_start":
		return e.Subscription.CurrentPeriodStart, true
	case "subscription.current_period_end":
		return e.Subscription.CurrentPeriodEnd, true
	case "invoices.unpaid":
		return e.Invoices.Unpaid, true
	case "invoices.amount_due":
		return e.Invoices.AmountDue, true
	case "invoices.oldest_unpaid_days":
		return e.Invoices.OldestUnpaidDays, true
	case "invoices.hosted_invoice_url":
		return e.Invoices.HostedInvoiceURL, true
	}
	if id, ok := strings.CutPrefix(path, "usage("); ok && strings.HasSuffix(id, ")") {
		meter, err := strconv.Unquote(strings.TrimSuffix(id, ")"))
		if err != nil || e.Usage == nil {
			return nil, false
		}
		return e.Usage(meter), true
	}
	for prefix, obj := range map[string]map[string]any{"company.": e.Company, "user.": e.User} {
		if rest, ok := strings.CutPrefix(path, prefix); ok && rest != "" {
			return lookup(obj, strings.Split(rest, ".")), true
		}
	}
	return nil, false
}

// lookup follows keys into nested JSON objects; nil when one is missing.
func lookup(obj map[string]any, keys []string) any {
	var v any = obj
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// IsConditionPath reports whether path names a value of the condition
// environment that Value reads (a field, or a trait below company. or
// user.): what response placeholders may name.
func IsConditionPath(path string) bool {
	if t, ok := conditionLanguage.kinds[path]; ok {
		return t != "struct" && t != "object"
	}
	for _, prefix := range []string{"company.", "user."} {
		if rest, ok := strings.CutPrefix(path, prefix); ok && rest != "" && !strings.Contains(rest, "..") && !strings.HasSuffix(rest, ".") {
			return true
		}
	}
	return false
}
