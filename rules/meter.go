package rules

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/meterd/meterd/engine/fault"
)

// Aggregations.
const (
	AggSum    = "sum"    // sum of the values
	AggCount  = "count"  // number of matched events (no value)
	AggMax    = "max"    // largest value
	AggMin    = "min"    // smallest value
	AggUnique = "unique" // number of distinct values
)

// Group-by keys: who is billed.
const (
	GroupByCompany = "company_id"
	GroupByUser    = "user_id"
)

// Statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusArchived = "archived"
)

const maxNameRunes = 200

// Definition is a meter as users write it (the API's JSON body).
type Definition struct {
	Name string `json:"name"`
	// Filter selects the billable calls: a bool expression. Required
	// (write "true" to bill every call).
	Filter string `json:"filter"`
	// Value is what one matched call adds: a number expression, "1" when
	// empty. A unique meter counts distinct values, which may be strings
	// (e.g. "user_id"). A count meter takes no value.
	Value       string `json:"value,omitempty"`
	Aggregation string `json:"aggregation"`
	GroupBy     string `json:"group_by,omitempty"` // company_id (default) or user_id
	Status      string `json:"status,omitempty"`   // active (default), inactive, archived
	// StripePriceID binds the meter to a Stripe price (optional here; the
	// billing worker uses it).
	StripePriceID string `json:"stripe_price_id,omitempty"`
	// Rounding turns the meter's fractional period total into the whole
	// quantity Stripe bills: ceil (the default when empty: every started
	// unit is billed), floor or round (half away from zero). The billing
	// worker rounds the running period total, never single buckets.
	Rounding string `json:"rounding,omitempty"`
}

// Rounding modes.
const (
	RoundCeil  = "ceil"
	RoundFloor = "floor"
	RoundHalf  = "round"
)

// RoundingMode is Rounding with its default filled in.
func (d Definition) RoundingMode() string {
	if d.Rounding == "" {
		return RoundCeil
	}
	return d.Rounding
}

// Meter is a compiled, valid meter. It is immutable and safe for
// concurrent use.
type Meter struct {
	// Def is the definition with defaults filled in.
	Def Definition
	// FilterTree and ValueTree are the checked syntax trees (every node
	// has its type: node.Type(), node.Nature()) that the VM programs were
	// compiled from. They are shared: read them, never modify them. A
	// chained comparison (1 < a < 10) shares the middle node between two
	// comparisons. For count meters ValueTree is the tree of "1".
	FilterTree *parser.Tree
	ValueTree  *parser.Tree

	filter, value *vm.Program
	// countsBlocked: the filter reads blocked_by (see CountsBlocked).
	countsBlocked bool
}

// Compile validates a definition and compiles its expressions. On failure
// the error is a fault.List listing every problem found.
func Compile(d Definition) (*Meter, error) { return compile(d, false) }

// CompileSaved compiles a version that is already saved. It skips the
// checks that only protect the stores (the size of matches patterns),
// which versions saved before they existed may fail: such a version keeps
// running, on the VM, where the SQL translation refuses it.
func CompileSaved(d Definition) (*Meter, error) { return compile(d, true) }

func compile(d Definition, saved bool) (*Meter, error) {
	var errs fault.List
	add := func(e *fault.Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	if d.Value == "" {
		d.Value = "1"
	}
	if d.GroupBy == "" {
		d.GroupBy = GroupByCompany
	}
	if d.Status == "" {
		d.Status = StatusActive
	}

	add(checkName(d.Name))
	add(oneOf("aggregation", d.Aggregation, AggSum, AggCount, AggMax, AggMin, AggUnique))
	add(oneOf("group_by", d.GroupBy, GroupByCompany, GroupByUser))
	add(oneOf("status", d.Status, StatusActive, StatusInactive, StatusArchived))
	add(checkPriceID(d.StripePriceID))
	if d.Rounding != "" {
		add(oneOf("rounding", d.Rounding, RoundCeil, RoundFloor, RoundHalf))
	}

	m := &Meter{Def: d}
	var e *fault.Error
	m.FilterTree, m.filter, e = compileExpr("filter", d.Filter, wantBool, saved)
	add(e)

	want := wantNumber
	switch d.Aggregation {
	case AggCount:
		if strings.TrimSpace(d.Value) != "1" {
			add(fieldError("value", CodeInvalidValue, "a count meter counts matched calls and takes no value: remove value, or use aggregation sum to add it up"))
		}
	case AggUnique:
		want = wantDistinct
		if strings.TrimSpace(d.Value) == "1" {
			add(fieldError("value", CodeInvalidValue, "a unique meter counts distinct values of value: set value, e.g. user_id"))
		}
	}
	m.ValueTree, m.value, e = compileExpr("value", d.Value, want, saved)
	add(e)

	if len(errs) > 0 {
		return nil, errs
	}
	m.countsBlocked = readsField(m.FilterTree, "blocked_by")
	return m, nil
}

// CountsBlocked tells whether the meter may count blocked calls (those
// with a blocked_by): only when its filter reads blocked_by, however
// (blocked_by != "" counts only them, true or blocked_by == "" every
// call). Otherwise a blocked call never matches: a billing meter does not
// bill the calls a governance rule refused. The value does not decide.
func (m *Meter) CountsBlocked() bool { return m.countsBlocked }

// readsField tells whether the checked tree reads the top-level field
// name (an identifier; keys below metadata are string nodes).
func readsField(tree *parser.Tree, name string) bool {
	return ast.Find(tree.Node, func(n ast.Node) bool {
		id, ok := n.(*ast.IdentifierNode)
		return ok && id.Value == name
	}) != nil
}

func checkName(name string) *fault.Error {
	switch {
	case strings.TrimSpace(name) == "":
		return fieldError("name", CodeInvalidValue, "name is required")
	case !utf8.ValidString(name):
		return fieldError("name", CodeInvalidValue, "name is not valid UTF-8")
	case utf8.RuneCountInString(name) > maxNameRunes:
		return fieldError("name", CodeTooLarge, "name is longer than %d characters", maxNameRunes)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fieldError("name", CodeInvalidValue, "name contains a control character")
	}
	return nil
}

func oneOf(field, v string, allowed ...string) *fault.Error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	if v == "" {
		return fieldError(field, CodeInvalidValue, "%s is required: one of %s", field, strings.Join(allowed, ", "))
	}
	return fieldError(field, CodeInvalidValue, "%s must be one of %s, got %q", field, strings.Join(allowed, ", "), v)
}

// checkPriceID accepts Stripe's id shape (price_…, or a legacy plan's
// custom id): printable ASCII without spaces, at most 255 bytes.
func checkPriceID(id string) *fault.Error {
	if len(id) > 255 {
		return fieldError("stripe_price_id", CodeTooLarge, "stripe_price_id is longer than 255 characters")
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fieldError("stripe_price_id", CodeInvalidValue, "stripe_price_id must be printable ASCII without spaces (e.g. price_1PqR...)")
		}
	}
	return nil
}

// GroupKey is the billed customer of a call: its company_id or user_id.
// It may be "" (an anonymous call); callers decide what to do with those.
func (m *Meter) GroupKey(env *Env) string {
	if m.Def.GroupBy == GroupByUser {
		return env.UserID
	}
	return env.CompanyID
}
