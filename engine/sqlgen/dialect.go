package sqlgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Dialect renders the SQL primitives the translation is built from, in
// one store's dialect. Every primitive is total: it never raises an error
// at run time (ClickHouse evaluates both branches of a conditional), so
// errors of the meter language are computed explicitly instead.
type Dialect interface {
	// Name is the store's backend name: "duckdb" or "clickhouse".
	Name() string
	// GroupStarts starts each group's window at its own time: the events
	// source to select from (events, or a join) and a row predicate
	// (" AND ...") keeping a row of group col from starts[group], or from
	// def for groups not listed.
	GroupStarts(col string, starts map[string]int64, def int64) (from, cond string)

	True() string
	False() string
	Int(v int64) string     // an Int64 constant
	Float(v float64) string // a Float64 constant, bit-exact
	Str(s string) string    // a string constant, escaped

	// If is a conditional over values of one type.
	If(cond, then, els string) string

	// KeyIndex is the 1-based position of key in an array column, 0 when
	// absent; Elem reads arr at such a position, zero when it is 0.
	KeyIndex(arr, key string) string
	Elem(arr, idx, zero string) string
	Has(arr, key string) string

	Int64(col string) string    // an integer column as Int64
	ToFloat(i string) string    // Int64 → Float64
	IntAdd(a, b string) string  // Int64 arithmetic wrapping at 64 bits
	IntSub(a, b string) string  //
	IntMul(a, b string) string  //
	IntNeg(a string) string     //
	IntMod(a, b string) string  // a % b with Go's signs; b is never 0 or -1 when it matters
	FloatToInt(f string) string // an integral Float64 within Int64's range → Int64
	Trunc(f string) string
	Floor(f string) string
	Ceil(f string) string
	IsFinite(f string) string
	IsNaN(f string) string
	// FloatCmp is a op b (=, <>, <, >, <=, >=) on Float64 values that may
	// be NaN, with IEEE semantics.
	FloatCmp(op, a, b string) string

	// StrCmp is a op b (=, <>, <, >, <=, >=) on strings, bytewise.
	StrCmp(op, a, b string) string

	IntToString(i string) string
	Concat(a, b string) string
	CharLen(s string) string // Unicode code points, Int64
	Lower(s string) string
	Upper(s string) string
	Contains(s, sub string) string
	HasPrefix(s, p string) string
	HasSuffix(s, p string) string
	// DropPrefix and DropSuffix remove n, the length of a known prefix or
	// suffix, from s (bytes or characters, as the dialect's length counts).
	DropPrefix(s, p string) string
	DropSuffix(s, p string) string
	Match(s, pattern string) string // RE2 search; pattern is a constant
	ReplaceAll(s, pattern, repl string) string
	// JSONArrayLen and JSONObjectLen count the elements or keys of a
	// compact JSON array or object text (as storage.Attrs stores arrays,
	// and stored objects before it kept their digest and key count).
	JSONArrayLen(s string) string
	JSONObjectLen(s string) string
	// ParseDigits is the Int64 value of a string known to be an optional
	// sign and ASCII digits within Int64's range.
	ParseDigits(s string) string
	// ParseDecimal converts a string known to be decimal syntax to
	// Float64. ok is false when the dialect cannot convert this string
	// exactly as Go's strconv.ParseFloat does (the row is then uncertain);
	// the value is then unspecified. An overflow gives ±Inf.
	ParseDecimal(s string) (value, exact string)

	// Query builds the backtest's aggregation over per-row expressions.
	query(p queryParts) string
	// maxQueryBytes is the longest query the store parses, 0 for no limit.
	maxQueryBytes() int
}

// Dialects by backend name.
var dialects = map[string]Dialect{"duckdb": DuckDB{}, "clickhouse": ClickHouse{}}

// DialectFor returns the dialect of a store backend ("duckdb",
// "clickhouse"), or false.
func DialectFor(backend string) (Dialect, bool) {
	d, ok := dialects[backend]
	return d, ok
}

// goFloat formats a float exactly (shortest round-trip form).
func goFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func isSubnormal(v float64) bool {
	return v != 0 && math.Abs(v) < 0x1p-1022
}

// quoteSQL quotes s as a standard SQL string literal (” for ').
func quoteSQL(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func call(name string, args ...string) string {
	return name + "(" + strings.Join(args, ", ") + ")"
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
