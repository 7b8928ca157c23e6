// Package governance keeps governance rules: conditions over customers
// (rules.CompileCondition) that, while they hold, make Moesif's middleware
// answer a customer's calls with the rule's response instead of the API's.
// Rules are append-only versions, like meters: every change is a record of
// the store's journal and a rule's state is the fold of its records.
package governance

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
)

// Whom a rule applies to: a company (company_id) or a user (user_id).
const (
	AppliesToCompany = "company"
	AppliesToUser    = "user"
)

// Statuses, as meters have.
const (
	StatusActive   = rules.StatusActive
	StatusInactive = rules.StatusInactive
	StatusArchived = rules.StatusArchived
)

// Spec is what a version fixes: when the rule holds and what the agents
// then answer.
type Spec struct {
	Condition string   `json:"condition"`
	Response  Response `json:"response"`
	// Block makes the agents answer Response instead of calling the API;
	// without it they only add Response.Headers to the API's answer.
	Block  bool    `json:"block"`
	Routes []Route `json:"routes"`
}

// Response is what the agents answer a governed call. String values of
// Headers and Body may hold {{NAME}} placeholders, NAME a value of the
// condition's environment (rules.IsConditionPath), filled per customer.
type Response struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// Route limits a rule to some calls: regular expressions (RE2 syntax, which
// JavaScript and Python read alike for the constructs allowed) over the
// request's path with query and its method. Both empty: every call.
type Route struct {
	Route string `json:"route,omitempty"`
	Verb  string `json:"verb,omitempty"`
}

// Routes accepts one route object or a list of them; the rule applies to
// calls matching any of them.
type Routes []Route

// UnmarshalJSON accepts {"route": ...} as well as [{...}, ...].
func (r *Routes) UnmarshalJSON(b []byte) error {
	trimmed := strings.TrimSpace(string(b))
	if strings.HasPrefix(trimmed, "{") {
		var one Route
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*r = Routes{one}
		return nil
	}
	var list []Route
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*r = list
	return nil
}

// Definition is a rule as users write it: POST /v1/governance/rules. A new
// version takes the Spec fields (applies_to is fixed at creation: it is
// the rule's kind of customer).
type Definition struct {
	Name      string   `json:"name"`
	AppliesTo string   `json:"applies_to"`
	Condition string   `json:"condition"`
	Response  Response `json:"response"`
	Block     *bool    `json:"block"` // default true
	Routes    Routes   `json:"routes"`
	Active    bool     `json:"active"` // default false: preview first
}

// Spec is the definition's versioned part, defaults filled in.
func (d Definition) Spec() Spec {
	block := d.Block == nil || *d.Block
	routes := []Route(d.Routes)
	if routes == nil {
		routes = []Route{}
	}
	return Spec{Condition: d.Condition, Response: d.Response, Block: block, Routes: routes}
}

const maxNameRunes = 200

// MeterGroups says how a meter groups its usage (rules.GroupByCompany or
// rules.GroupByUser), ok false when there is no such meter: usage() may
// name a meter that groups by the rule's kind of customer.
type MeterGroups func(id string) (groupBy string, ok bool)

// Check validates a definition. It returns every problem found, one per
// field.
func Check(d Definition, meters MeterGroups) (*rules.Condition, error) {
	var errs fault.List
	if n := utf8.RuneCountInString(strings.TrimSpace(d.Name)); n == 0 || n > maxNameRunes {
		errs = append(errs, fieldError("name", rules.CodeInvalidValue, "name is required, at most %d characters", maxNameRunes))
	}
	if d.AppliesTo != AppliesToCompany && d.AppliesTo != AppliesToUser {
		errs = append(errs, fieldError("applies_to", rules.CodeInvalidValue, `applies_to must be "company" or "user", got %q`, d.AppliesTo))
	}
	c, err := CheckSpec(d.Spec(), d.AppliesTo, meters)
	if es, ok := fault.AsList(err); ok {
		errs = append(errs, es...)
	} else if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// CheckSpec validates a version of a rule applying to appliesTo: the
// condition (with what usage() names), the response and its placeholders,
// and the routes.
func CheckSpec(s Spec, appliesTo string, meters MeterGroups) (*rules.Condition, error) {
	var errs fault.List
	c, cerr := rules.CompileCondition("condition", s.Condition)
	if cerr != nil {
		errs = append(errs, cerr)
	} else if e := checkUsage(c, appliesTo, meters); e != nil {
		errs = append(errs, e)
	}
	errs = append(errs, checkResponse(s.Response)...)
	if s.Block && len(s.Response.Body) == 0 {
		errs = append(errs, fieldError("response.body", rules.CodeInvalidValue,
			"response.body is required for a blocking rule: it is what the agents answer instead of your API (e.g. {\"error\": \"payment required\"})"))
	}
	errs = append(errs, checkRoutes(s.Routes)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// checkUsage checks what each usage() names: a meter that groups by the
// rule's kind of customer, so that its usage is looked up by the same id.
func checkUsage(c *rules.Condition, appliesTo string, meters MeterGroups) *fault.Error {
	want := map[string]string{AppliesToCompany: rules.GroupByCompany, AppliesToUser: rules.GroupByUser}[appliesTo]
	for _, call := range c.Usage {
		group, ok := meters(call.Arg)
		switch {
		case !ok:
			return c.Position("condition", call.Offset, CodeUnknownMeter,
				fmt.Sprintf("usage(%q): there is no meter with that id (GET /v1/meters lists them)", call.Arg))
		case want != "" && group != want:
			return c.Position("condition", call.Offset, CodeUnknownMeter,
				fmt.Sprintf("usage(%q): the meter groups by %s, and this rule applies to each %s: its usage is by %s", call.Arg, group, appliesTo, want))
		}
	}
	return nil
}

// Error codes beside the language's.
const (
	CodeUnknownMeter = "unknown_meter"
	CodePlaceholder  = "invalid_placeholder"
)

func fieldError(field, code, format string, args ...any) *fault.Error {
	return fault.Invalid(code, field, fmt.Sprintf(format, args...))
}

// unportable finds regular-expression syntax that Go accepts but that
// JavaScript's RegExp (Node agents) or Python's re read otherwise: flags
// and named groups, Unicode classes, \A \z \Q \C.
var unportable = regexp.MustCompile(`\(\?[^:]|\\[pPAzQC]`)

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func checkResponse(r Response) fault.List {
	var errs fault.List
	if r.Status < 100 || r.Status > 599 {
		errs = append(errs, fieldError("response.status", rules.CodeInvalidValue,
			"response.status must be an HTTP status from 100 to 599 (402 for unpaid invoices, 429 for a quota), got %d", r.Status))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
		v := r.Headers[name]
		if !headerName.MatchString(name) {
			errs = append(errs, fieldError("response.headers", rules.CodeInvalidValue, "header name %q is not a valid HTTP header name", name))
		} else if strings.ContainsAny(v, "\r\n") {
			errs = append(errs, fieldError("response.headers."+name, rules.CodeInvalidValue, "header values cannot hold line breaks"))
		} else if e := checkPlaceholders("response.headers."+http.CanonicalHeaderKey(name), v); e != nil {
			errs = append(errs, e)
		}
	}
	if len(r.Body) > 0 {
		var body any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			errs = append(errs, fieldError("response.body", rules.CodeInvalidValue, "response.body must be JSON: %v", err))
		} else if e := checkBody("response.body", body, false); e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

// checkBody checks the placeholders of every string in a body. Python's
// agents cannot serialise a body that holds an array together with
// placeholders (the app answers 500): such a body is refused.
func checkBody(field string, v any, inArray bool) *fault.Error {
	switch x := v.(type) {
	case string:
		if e := checkPlaceholders(field, x); e != nil {
			return e
		}
		if inArray && len(Placeholders(x)) > 0 {
			return fieldError(field, CodePlaceholder, "a placeholder inside an array: Moesif's Python agents fail on arrays in bodies with placeholders; use an object")
		}
	case []any:
		for i, e := range x {
			if err := checkBody(fmt.Sprintf("%s[%d]", field, i), e, true); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if err := checkBody(field+"."+k, x[k], inArray); err != nil {
				return err
			}
		}
	}
	return nil
}

// placeholder finds {{...}} in a string.
var placeholder = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// Placeholders lists the NAMEs of the {{NAME}} in s, in order.
func Placeholders(s string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// checkPlaceholders accepts only {{NAME}} with NAME a value of the
// condition's environment: the Python agents replace nothing else (no
// spaces, no {{NAME|default}}), and an unknown name would show UNKNOWN.
func checkPlaceholders(field, s string) *fault.Error {
	for _, name := range Placeholders(s) {
		switch {
		case strings.Contains(name, "|"):
			return fieldError(field, CodePlaceholder, "{{%s}}: defaults ({{NAME|default}}) are not supported by every Moesif agent; write {{NAME}}", name)
		case strings.TrimSpace(name) != name || name == "":
			return fieldError(field, CodePlaceholder, "{{%s}}: write the name without spaces, e.g. {{customer}}", name)
		case !rules.IsConditionPath(name):
			return fieldError(field, CodePlaceholder, "{{%s}} is not a value of the condition's environment (e.g. {{customer}}, {{invoices.hosted_invoice_url}}, {{company.plan}})", name)
		}
	}
	return nil
}

func checkRoutes(rs []Route) fault.List {
	var errs fault.List
	for i, r := range rs {
		for _, f := range []struct{ name, pattern string }{{"route", r.Route}, {"verb", r.Verb}} {
			if f.pattern == "" {
				continue
			}
			if _, err := regexp.Compile(f.pattern); err != nil {
				errs = append(errs, fieldError(fmt.Sprintf("routes[%d].%s", i, f.name), rules.CodeInvalidRegex,
					"invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: ")))
			} else if bad := unportable.FindString(f.pattern); bad != "" {
				errs = append(errs, fieldError(fmt.Sprintf("routes[%d].%s", i, f.name), rules.CodeInvalidRegex,
					"%s is read differently by the JavaScript and Python agents (or not at all): use plain groups (?:...), classes [a-z] and ^ $ anchors", bad))
			}
		}
		if r.Route == "" && r.Verb == "" {
			errs = append(errs, fieldError(fmt.Sprintf("routes[%d]", i), rules.CodeInvalidValue, "a route needs route, verb or both"))
		}
	}
	return errs
}

// Placeholders lists the names the response's placeholders use, sorted,
// once each: the rule's variables for the agents.
func (s Spec) Placeholders() []string {
	seen := map[string]bool{}
	add := func(text string) {
		for _, n := range Placeholders(text) {
			seen[n] = true
		}
	}
	for _, v := range s.Response.Headers {
		add(v)
	}
	var body any
	if json.Unmarshal(s.Response.Body, &body) == nil {
		walkStrings(body, add)
	}
	return slices.Sorted(maps.Keys(seen))
}

// walkStrings calls fn with every string inside a decoded JSON value.
func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	}
}
