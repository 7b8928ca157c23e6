package sqlgen

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// DuckDB is the dialect of storage/duckdb.
type DuckDB struct{}

func (DuckDB) Name() string { return "duckdb" }

// GroupStarts joins a VALUES list of the starts: a hash join, where a
// MAP or list lookup would scan the whole list for every row (15 to 30
// times slower at 1,000 groups).
func (d DuckDB) GroupStarts(col string, starts map[string]int64, def int64) (from, cond string) {
	rows := make([]string, 0, len(starts))
	for _, g := range slices.Sorted(maps.Keys(starts)) {
		rows = append(rows, "("+d.Str(g)+", "+strconv.FormatInt(starts[g], 10)+")")
	}
	return "events LEFT JOIN (VALUES " + strings.Join(rows, ", ") + ") AS _starts(g, start_ms) ON events." + col + " = _starts.g",
		" AND time_ms >= coalesce(_starts.start_ms, " + strconv.FormatInt(def, 10) + ")"
}
func (DuckDB) True() string  { return "true" }
func (DuckDB) False() string { return "false" }

func (DuckDB) maxQueryBytes() int { return 0 }

func (DuckDB) Int(v int64) string { return sprintf("CAST(%d AS BIGINT)", v) }

// Float goes through DuckDB's string-to-double conversion, which is
// correctly rounded (a decimal literal would be a DECIMAL first).
func (DuckDB) Float(v float64) string {
	switch {
	case math.IsNaN(v):
		return "CAST('nan' AS DOUBLE)"
	case math.IsInf(v, 1):
		return "CAST('inf' AS DOUBLE)"
	case math.IsInf(v, -1):
		return "CAST('-inf' AS DOUBLE)"
	}
	return "CAST('" + goFloat(v) + "' AS DOUBLE)"
}

// Str quotes s; a NUL byte cannot appear inside a DuckDB literal, so it is
// spliced in with chr(0).
func (DuckDB) Str(s string) string {
	if !strings.Contains(s, "\x00") {
		return quoteSQL(s)
	}
	parts := strings.Split(s, "\x00")
	for i, p := range parts {
		parts[i] = quoteSQL(p)
	}
	return "(" + strings.Join(parts, " || chr(0) || ") + ")"
}

func (DuckDB) If(c, a, b string) string {
	return "(CASE WHEN " + c + " THEN " + a + " ELSE " + b + " END)"
}

func (DuckDB) KeyIndex(arr, key string) string {
	return "coalesce(list_position(" + arr + ", " + key + "), 0)"
}

func (DuckDB) Elem(arr, idx, zero string) string {
	return "coalesce(" + arr + "[" + idx + "], " + zero + ")"
}

func (DuckDB) Has(arr, key string) string { return call("list_contains", arr, key) }

func (DuckDB) Int64(col string) string     { return "CAST(" + col + " AS BIGINT)" }
func (DuckDB) ToFloat(i string) string     { return "CAST(" + i + " AS DOUBLE)" }
func (d DuckDB) IntAdd(a, b string) string { return d.wrap("CAST(" + a + " AS HUGEINT) + " + b) }
func (d DuckDB) IntSub(a, b string) string { return d.wrap("CAST(" + a + " AS HUGEINT) - " + b) }
func (d DuckDB) IntMul(a, b string) string { return d.wrap("CAST(" + a + " AS HUGEINT) * " + b) }
func (d DuckDB) IntNeg(a string) string    { return d.wrap("-CAST(" + a + " AS HUGEINT)") }

// wrap reduces a HUGEINT to BIGINT modulo 2^64 (DuckDB's BIGINT
// arithmetic raises an error on overflow; Go's wraps).
func (DuckDB) wrap(x string) string {
	const two63, two64 = "CAST(9223372036854775808 AS HUGEINT)", "CAST(18446744073709551616 AS HUGEINT)"
	return "CAST(((" + x + " + " + two63 + ") % " + two64 + " + " + two64 + ") % " + two64 + " - " + two63 + " AS BIGINT)"
}

func (DuckDB) IntMod(a, b string) string {
	return "(" + a + " % (CASE WHEN " + b + " = 0 OR " + b + " = -1 THEN 1 ELSE " + b + " END))"
}

func (DuckDB) FloatToInt(f string) string { return "CAST(" + f + " AS BIGINT)" }
func (DuckDB) Trunc(f string) string      { return call("trunc", f) }
func (DuckDB) Floor(f string) string      { return call("floor", f) }
func (DuckDB) Ceil(f string) string       { return call("ceil", f) }
func (DuckDB) IsFinite(f string) string   { return call("isfinite", f) }
func (DuckDB) IsNaN(f string) string      { return call("isnan", f) }

// FloatCmp: DuckDB sorts NaN above every number and equal to itself.
func (DuckDB) FloatCmp(op, a, b string) string {
	if op == "<>" {
		return "(isnan(" + a + ") OR isnan(" + b + ") OR " + a + " <> " + b + ")"
	}
	return "(NOT isnan(" + a + ") AND NOT isnan(" + b + ") AND " + a + " " + op + " " + b + ")"
}

func (DuckDB) StrCmp(op, a, b string) string { return "(" + a + " " + op + " " + b + ")" }

func (DuckDB) IntToString(i string) string { return "CAST(" + i + " AS VARCHAR)" }
func (DuckDB) Concat(a, b string) string   { return "(" + a + " || " + b + ")" }
func (DuckDB) CharLen(s string) string     { return "CAST(length(" + s + ") AS BIGINT)" }
func (DuckDB) Lower(s string) string       { return call("lower", s) }
func (DuckDB) Upper(s string) string       { return call("upper", s) }
func (DuckDB) Contains(s, sub string) string {
	return call("contains", s, sub)
}
func (DuckDB) HasPrefix(s, p string) string { return call("starts_with", s, p) }
func (DuckDB) HasSuffix(s, p string) string { return call("ends_with", s, p) }

// DuckDB's length and substring both count characters.
func (DuckDB) DropPrefix(s, p string) string {
	return "substring(" + s + ", length(" + p + ") + 1)"
}
func (DuckDB) DropSuffix(s, p string) string {
	return "substring(" + s + ", 1, length(" + s + ") - length(" + p + "))"
}
func (DuckDB) Match(s, pattern string) string { return call("regexp_matches", s, pattern) }
func (DuckDB) ReplaceAll(s, pattern, repl string) string {
	return call("regexp_replace", s, pattern, repl, "'g'")
}

// The JSON functions fail on text that is not JSON: callers guard s, and
// the CASE keeps them away from other rows.
func (DuckDB) JSONArrayLen(s string) string {
	return "CAST(json_array_length(" + s + ") AS BIGINT)"
}
func (DuckDB) JSONObjectLen(s string) string {
	return "CAST(len(json_keys(" + s + ")) AS BIGINT)"
}

func (DuckDB) ParseDigits(s string) string {
	return "coalesce(TRY_CAST(TRY_CAST(" + s + " AS HUGEINT) AS BIGINT), 0)"
}

// ParseDecimal: DuckDB's cast is correctly rounded like Go's. A five-digit
// exponent may overflow its exponent arithmetic, so such strings are left
// to the VM.
func (DuckDB) ParseDecimal(s string) (string, string) {
	return "coalesce(TRY_CAST(" + s + " AS DOUBLE), 0)",
		"(TRY_CAST(" + s + " AS DOUBLE) IS NOT NULL AND NOT regexp_matches(" + s + ", '[eE][+-]?[0-9]{5}'))"
}
