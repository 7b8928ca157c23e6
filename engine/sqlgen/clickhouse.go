package sqlgen

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ClickHouse is the dialect of storage/clickhouse (18.16 and later: no
// JSON functions, no GROUPING SETS). Booleans are UInt8.
type ClickHouse struct{}

func (ClickHouse) Name() string { return "clickhouse" }

// GroupStarts looks the start up with transform, which hashes its
// constant arrays.
func (d ClickHouse) GroupStarts(col string, starts map[string]int64, def int64) (from, cond string) {
	var gs, ms []string
	for _, g := range slices.Sorted(maps.Keys(starts)) {
		gs, ms = append(gs, d.Str(g)), append(ms, strconv.FormatInt(starts[g], 10))
	}
	return "events", " AND time_ms >= transform(" + col + ", [" + strings.Join(gs, ", ") + "], CAST([" + strings.Join(ms, ", ") + "] AS Array(Int64)), " + d.Int(def) + ")"
}
func (ClickHouse) True() string  { return "1" }
func (ClickHouse) False() string { return "0" }

// maxQueryBytes is ClickHouse's default max_query_size: a longer query is
// a syntax error ("Max query size exceeded").
func (ClickHouse) maxQueryBytes() int { return 256 << 10 }

func (ClickHouse) Int(v int64) string { return "toInt64(" + strconv.FormatInt(v, 10) + ")" }

// Float: ClickHouse parses float literals exactly, except subnormals (a
// syntax error), which are built from their bits. -0 must not be written
// as the literal -0: 18.16 names a literal by its value, so -0 (Int8) and
// every 0 of the query (UInt8: false, kind codes) become one column of
// type Int8, which -If aggregates reject as a condition.
func (ClickHouse) Float(v float64) string {
	switch {
	case v == 0 && math.Signbit(v):
		return "negate(toFloat64(0))"
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case isSubnormal(v):
		return "reinterpretAsFloat64(reinterpretAsString(toUInt64(" + strconv.FormatUint(math.Float64bits(v), 10) + ")))"
	}
	return "toFloat64(" + goFloat(v) + ")"
}

// Str escapes backslashes, quotes and control bytes.
func (ClickHouse) Str(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			b.WriteString(sprintf("\\x%02X", c))
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func (ClickHouse) If(c, a, b string) string { return call("if", c, a, b) }

func (ClickHouse) KeyIndex(arr, key string) string { return call("indexOf", arr, key) }

// Elem: arrayElement at index 0 is the type's default (0, ”).
func (ClickHouse) Elem(arr, idx, _ string) string { return call("arrayElement", arr, idx) }
func (ClickHouse) Has(arr, key string) string     { return call("has", arr, key) }

func (ClickHouse) Int64(col string) string   { return call("toInt64", col) }
func (ClickHouse) ToFloat(i string) string   { return call("toFloat64", i) }
func (ClickHouse) IntAdd(a, b string) string { return "(" + a + " + " + b + ")" }
func (ClickHouse) IntSub(a, b string) string { return "(" + a + " - " + b + ")" }
func (ClickHouse) IntMul(a, b string) string { return "(" + a + " * " + b + ")" }
func (ClickHouse) IntNeg(a string) string    { return call("negate", a) }
func (ClickHouse) IntMod(a, b string) string {
	return call("modulo", a, "if("+b+" = 0 OR "+b+" = -1, toInt64(1), "+b+")")
}
func (ClickHouse) FloatToInt(f string) string { return call("toInt64", f) }
func (ClickHouse) Trunc(f string) string      { return call("trunc", f) }
func (ClickHouse) Floor(f string) string      { return call("floor", f) }
func (ClickHouse) Ceil(f string) string       { return call("ceil", f) }
func (ClickHouse) IsFinite(f string) string   { return call("isFinite", f) }
func (ClickHouse) IsNaN(f string) string      { return call("isNaN", f) }

// FloatCmp: ClickHouse compares floats as IEEE does.
func (ClickHouse) FloatCmp(op, a, b string) string { return "(" + a + " " + op + " " + b + ")" }

// StrCmp: 18.16 folds <= and >= of two constant strings wrongly when one
// is a proper prefix of the other ('x' >= 'xy' is 1); < and > are right.
func (ClickHouse) StrCmp(op, a, b string) string {
	switch op {
	case "<=":
		return "(NOT (" + a + " > " + b + "))"
	case ">=":
		return "(NOT (" + a + " < " + b + "))"
	}
	return "(" + a + " " + op + " " + b + ")"
}

func (ClickHouse) IntToString(i string) string   { return call("toString", i) }
func (ClickHouse) Concat(a, b string) string     { return call("concat", a, b) }
func (ClickHouse) CharLen(s string) string       { return "toInt64(lengthUTF8(" + s + "))" }
func (ClickHouse) Lower(s string) string         { return call("lowerUTF8", s) }
func (ClickHouse) Upper(s string) string         { return call("upperUTF8", s) }
func (ClickHouse) Contains(s, sub string) string { return "(position(" + s + ", " + sub + ") > 0)" }
func (ClickHouse) HasPrefix(s, p string) string  { return call("startsWith", s, p) }
func (ClickHouse) HasSuffix(s, p string) string  { return call("endsWith", s, p) }

// ClickHouse's length and substring both count bytes.
func (ClickHouse) DropPrefix(s, p string) string {
	return "substring(" + s + ", length(" + p + ") + 1)"
}
func (ClickHouse) DropSuffix(s, p string) string {
	return "substring(" + s + ", 1, length(" + s + ") - length(" + p + "))"
}
func (ClickHouse) Match(s, pattern string) string { return call("match", s, pattern) }
func (ClickHouse) ReplaceAll(s, pattern, repl string) string {
	return call("replaceRegexpAll", s, pattern, repl)
}

// jsonLen counts the elements of a compact JSON array or object:
// strings are blanked out, then the commas at depth 1 are counted over the
// running bracket depth (18.16 has no JSON functions).
func (c ClickHouse) jsonLen(s string) string {
	chars := "extractAll(replaceRegexpAll(" + s + ", " + c.Str(`"(?:\\.|[^"\\])*"`) + ", '0'), " + c.Str(`[\[\]{},]`) + ")"
	depth := "arrayCumSum(arrayMap(x -> multiIf(x IN ('[', '{'), 1, x IN (']', '}'), -1, 0), " + chars + "))"
	return "toInt64(arrayCount((x, d) -> x = ',' AND d = 1, " + chars + ", " + depth + ") + if(" + s + " IN ('[]', '{}'), 0, 1))"
}

func (c ClickHouse) JSONArrayLen(s string) string  { return c.jsonLen(s) }
func (c ClickHouse) JSONObjectLen(s string) string { return c.jsonLen(s) }

// ParseDigits: the digits as UInt64 (the range is checked by the caller),
// negated with wrapping for a minus sign.
func (ClickHouse) ParseDigits(s string) string {
	u := "toInt64(toUInt64OrZero(replaceRegexpOne(" + s + ", '^[+-]', '')))"
	return "if(startsWith(" + s + ", '-'), negate(" + u + "), " + u + ")"
}

// ParseDecimal: ClickHouse's own string-to-float conversion is not
// correctly rounded, so only the exact fast path is translated: at most
// 15 significant digits scaled by a power of ten up to 1e22 (one correctly
// rounded multiplication or division of two exact values). Other strings
// are uncertain.
func (c ClickHouse) ParseDecimal(s string) (string, string) {
	intPart := "extract(" + s + ", '^[+-]?([0-9]*)')"
	frac := "extract(" + s + ", " + c.Str(`\.([0-9]*)`) + ")"
	exp := "extract(" + s + ", '[eE]([+-]?[0-9]+)$')"
	digits := "replaceRegexpOne(concat(" + intPart + ", " + frac + "), '^0+', '')"
	k := "(toInt64OrZero(" + exp + ") - toInt64(length(" + frac + ")))"
	pow10 := make([]string, 23)
	for i := range pow10 {
		pow10[i] = "1e" + strconv.Itoa(i)
	}
	scale := "arrayElement([" + strings.Join(pow10, ", ") + "], abs(" + k + ") + 1)"
	mant := "toFloat64(toUInt64OrZero(" + digits + "))"
	abs := "if(" + digits + " = '', toFloat64(0), if(" + k + " >= 0, " + mant + " * " + scale + ", " + mant + " / " + scale + "))"
	value := "if(startsWith(" + s + ", '-'), -" + abs + ", " + abs + ")"
	exact := "(length(" + digits + ") <= 15 AND length(" + exp + ") <= 5 AND (" + digits + " = '' OR (" + k + " >= -22 AND " + k + " <= 22)))"
	return value, exact
}
