package rules

// Construct is one entry of the meter language: an operator, a function
// or a piece of syntax, allowed or not. Language is the single source of
// truth: the compiler enforces it and docs/meters.md renders it.
type Construct struct {
	Name    string // as written: "==", "matches", "len", "..", "now", "let"
	Kind    string // "operator", "function" or "syntax"
	Allowed bool
	Note    string // allowed: what it does; forbidden: why not
}

// Language lists every operator, function and syntax the compiler knows
// about. Anything absent from expr that is not listed is rejected too.
var Language = []Construct{
	// Operators.
	{"==", "operator", true, "equal; never fails: values of different types are unequal, 1 == 1.0, nil == nil"},
	{"!=", "operator", true, "not equal; never fails (nil != 1 is true)"},
	{"<", "operator", true, "numbers with numbers, strings with strings (byte order); anything else fails"},
	{">", "operator", true, "as <"},
	{"<=", "operator", true, "as <"},
	{">=", "operator", true, "as <"},
	{"and", "operator", true, "short-circuit; also written &&"},
	{"or", "operator", true, "short-circuit; also written ||"},
	{"&&", "operator", true, "same as and"},
	{"||", "operator", true, "same as or"},
	{"not", "operator", true, "negation of a bool; also written !"},
	{"!", "operator", true, "same as not"},
	{"+", "operator", true, "add numbers (int + int wraps at 64 bits) or join strings; unary +"},
	{"-", "operator", true, "subtract; unary minus"},
	{"*", "operator", true, "multiply (int * int wraps at 64 bits)"},
	{"/", "operator", true, "divide; always float: 7 / 2 == 3.5, x / 0 is ±Inf (a value error if it is the value)"},
	{"%", "operator", true, "remainder of two ints (sign of the left side); % 0 fails"},
	{"**", "operator", true, "power, float; also written ^"},
	{"^", "operator", true, "same as **"},
	{"in", "operator", true, `membership in a constant list (x in [200, 201]) or key presence in metadata, company, user, request.headers, response.headers ("plan" in metadata); "not in" negates`},
	{"contains", "operator", true, "substring test; false when either side is nil; fails on non-strings"},
	{"startsWith", "operator", true, "prefix test; as contains"},
	{"endsWith", "operator", true, "suffix test; as contains"},
	{"matches", "operator", true, "RE2 regular expression, unanchored; the pattern must be a constant string; false when the text is nil"},
	{"??", "operator", true, "a ?? b is b when a is nil (missing)"},
	{"?.", "operator", true, "a?.b is nil when a is nil, instead of failing"},
	{"?:", "operator", true, "cond ? a : b; cond must be a bool"},
	{"..", "operator", false, "a range builds an array at run time, can be huge, and has no columnar translation: compare instead (x >= 1 and x <= 10)"},
	{"|", "operator", false, "pipes chain array functions, which meters do not have: write f(x)"},

	// Functions.
	{"len", "function", true, "characters (Unicode code points) of a string; elements of a JSON array; keys of a JSON object; fails on anything else"},
	{"lower", "function", true, "lower-case a string (Unicode, per character); fails on non-strings"},
	{"upper", "function", true, "upper-case a string (Unicode, per character); fails on non-strings"},
	{"trim", "function", true, "trim(s) removes Unicode white space at both ends; trim(s, chars) removes any of chars"},
	{"trimPrefix", "function", true, "trimPrefix(s, p) removes p once from the start; trimPrefix(s) removes one space"},
	{"trimSuffix", "function", true, "trimSuffix(s, p) removes p once from the end; trimSuffix(s) removes one space"},
	{"abs", "function", true, "absolute value; keeps int or float"},
	{"ceil", "function", true, "round up; gives a float"},
	{"floor", "function", true, "round down; gives a float"},
	{"round", "function", true, "round half away from zero; gives a float"},
	{"int", "function", true, `int of a number (toward zero; fails outside ±2^63 or for NaN/Inf) or of a string of digits ("-12"); fails otherwise`},
	{"float", "function", true, `float of a number or of a decimal string ("1.5", "-2e3"; no spaces, no "inf"); fails otherwise`},
	{"string", "function", true, "text of an int, bool or string expression, or of a metadata/trait field (numbers as the shortest exact form, 1e+06 style); fails on nil, arrays and objects"},
	{"now", "function", false, "depends on the wall clock: a backtest would change every time it runs; use time (the call's time)"},
	{"date", "function", false, "time values have no columnar form here; time is unix milliseconds: compare numbers"},
	{"duration", "function", false, "as date: use milliseconds"},
	{"timezone", "function", false, "as date: use milliseconds"},
	{"repeat", "function", false, "builds strings of any size from a small expression"},
	{"all", "function", false, "predicates iterate over arrays with a closure: unbounded work and no columnar translation"},
	{"any", "function", false, "predicate (see all)"},
	{"none", "function", false, "predicate (see all)"},
	{"one", "function", false, "predicate (see all)"},
	{"filter", "function", false, "predicate (see all)"},
	{"map", "function", false, "predicate (see all)"},
	{"count", "function", false, "predicate (see all); to count events use aggregation: count"},
	{"sum", "function", false, "predicate (see all); to add values up use aggregation: sum"},
	{"find", "function", false, "predicate (see all)"},
	{"findIndex", "function", false, "predicate (see all)"},
	{"findLast", "function", false, "predicate (see all)"},
	{"findLastIndex", "function", false, "predicate (see all)"},
	{"groupBy", "function", false, "predicate (see all)"},
	{"sortBy", "function", false, "predicate (see all)"},
	{"reduce", "function", false, "predicate (see all)"},
	{"max", "function", false, "works on arrays and argument lists; to take the largest value over events use aggregation: max"},
	{"min", "function", false, "as max; use aggregation: min"},
	{"mean", "function", false, "array function: meters have no arrays"},
	{"median", "function", false, "array function: meters have no arrays"},
	{"first", "function", false, "array function: JSON arrays are stored whole, not element by element"},
	{"last", "function", false, "as first"},
	{"take", "function", false, "as first"},
	{"reverse", "function", false, "as first"},
	{"uniq", "function", false, "as first"},
	{"concat", "function", false, "as first"},
	{"flatten", "function", false, "as first"},
	{"sort", "function", false, "as first"},
	{"join", "function", false, "as first"},
	{"split", "function", false, "builds an array: meters have no arrays"},
	{"splitAfter", "function", false, "as split"},
	{"keys", "function", false, "builds an array: use the in operator to test for a key"},
	{"values", "function", false, "as keys"},
	{"toPairs", "function", false, "as keys"},
	{"fromPairs", "function", false, "builds a map: meters have no map values"},
	{"get", "function", false, "dynamic access: write metadata.key or metadata[\"key\"]"},
	{"replace", "function", false, "not needed for matching (use contains, matches) and engines disagree on its corner cases"},
	{"indexOf", "function", false, "positions differ between engines (bytes or characters): use contains or matches"},
	{"lastIndexOf", "function", false, "as indexOf"},
	{"hasPrefix", "function", false, "use the startsWith operator"},
	{"hasSuffix", "function", false, "use the endsWith operator"},
	{"type", "function", false, "Go type names have no SQL equivalent: compare the value instead"},
	{"toJSON", "function", false, "JSON formatting differs between engines"},
	{"fromJSON", "function", false, "parsing JSON per event is unbounded work: send the fields as metadata"},
	{"toBase64", "function", false, "not needed for metering"},
	{"fromBase64", "function", false, "not needed for metering"},
	{"bitand", "function", false, "bit operations are not needed for metering"},
	{"bitor", "function", false, "as bitand"},
	{"bitxor", "function", false, "as bitand"},
	{"bitnand", "function", false, "as bitand"},
	{"bitnot", "function", false, "as bitand"},
	{"bitshl", "function", false, "as bitand"},
	{"bitshr", "function", false, "as bitand"},
	{"bitushr", "function", false, "as bitand"},

	// Syntax.
	{"literals", "syntax", true, `int (42, 1_000, 0x2A), float (1.5, 1e6), string ("a", 'a', raw ` + "`a`" + `), true, false, nil`},
	{"a.b / a[\"b\"]", "syntax", true, `fields and map keys with constant names: metadata.plan.tier, metadata["key with space"], request.headers["x-api-key"]`},
	{"[...] in", "syntax", true, "a list of constant literals, only on the right of in"},
	{"if {} else {}", "syntax", true, "same as ?:"},
	{"a[i]", "syntax", false, "indexing a JSON array: arrays are stored whole, not element by element"},
	{"a[key expr]", "syntax", false, "computed keys: a key must be a constant string so that fields can be checked and translated"},
	{"a[i:j]", "syntax", false, "slicing: character positions differ between engines"},
	{"dotted key", "syntax", false, `a key containing "." or an empty key (metadata["a.b"]): ambiguous with nesting in the flattened columnar store`},
	{"let", "syntax", false, "variables: write one expression"},
	{";", "syntax", false, "sequences: write one expression"},
	{"$env", "syntax", false, "dynamic access to the environment defeats field checking: name the field"},
	{"# / .field", "syntax", false, "closure variables exist only inside predicates, which are not allowed"},
	{"[...]", "syntax", false, "array literals exist only as the constant list of in"},
	{"{...}", "syntax", false, "map literals: meters have no map values"},
	{"b\"...\"", "syntax", false, "byte strings: use strings"},
	{"x.f()", "syntax", false, "methods: the environment has none"},
	{"(expr).field", "syntax", false, "fields are read from the environment (metadata.a.b), not from a computed value"},
	{"whole map", "syntax", false, "request, response, metadata, company, user and the header maps are not values: use a field or a key (metadata.plan), or test a key with in"},
}

// Limits on one expression (a meter is user input).
const (
	MaxSourceBytes = 4096 // checked before parsing
	MaxNesting     = 32   // brackets ( [ {, checked before parsing: deep nesting overflows the parser's stack
	MaxNodes       = 256  // syntax tree nodes
	MaxDepth       = 48   // syntax tree depth (also bounds chains of unary operators)
)

var (
	allowedBinary    = map[string]bool{}
	allowedUnary     = map[string]bool{"not": true, "!": true, "-": true, "+": true}
	allowedBuiltins  = map[string]bool{}
	allowedFunctions = map[string]bool{"int": true, "float": true, "string": true}
	forbiddenReason  = map[string]string{}
)

func init() {
	for _, c := range Language {
		switch {
		case !c.Allowed:
			forbiddenReason[c.Name] = c.Note
		case c.Kind == "operator":
			allowedBinary[c.Name] = true
		case c.Kind == "function" && !allowedFunctions[c.Name]:
			allowedBuiltins[c.Name] = true
		}
	}
	// These are in the table for the docs but are not binary operators.
	for _, op := range []string{"not", "!", "?.", "?:"} {
		delete(allowedBinary, op)
	}
}

// reason gives the user-facing reason a construct is forbidden.
func reason(name string) string {
	if r, ok := forbiddenReason[name]; ok {
		return r
	}
	return "not part of the meter language"
}
