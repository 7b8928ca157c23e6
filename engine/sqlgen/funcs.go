package sqlgen

import (
	"fmt"
	"math"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// pow: Go's math.Pow is not correctly rounded (it squares repeatedly), so
// only the exponents it computes with at most one rounding are
// translated: 0, 1, 2 and -1. Their results agree with x*x and 1/x except
// in the subnormal range, where the row is uncertain.
func (t *tr) pow(n *ast.BinaryNode, a, b val, both string) (val, error) {
	c, ok := constant(n.Right)
	var y float64
	switch x := c.(type) {
	case int:
		y = float64(x)
	case float64:
		y = x
	default:
		ok = false
	}
	if !ok || (y != 0 && y != 1 && y != 2 && y != -1) {
		return val{}, untranslatable("**", "only the constant exponents 0, 1, 2 and -1 are computed in SQL exactly as Go's math.Pow does")
	}
	v := val{ks: one(kFloat), err: t.errOr(both, t.not(t.isAny(a, numKinds))), nan: a.nan}
	if t.isFalse(t.isAny(a, numKinds)) {
		return v, nil
	}
	x := t.bind(t.numF(a))
	switch y {
	case 0:
		v.f = t.d.Float(1)
	case 1:
		v.f = x
	case 2:
		v.f = "(" + x + " * " + x + ")"
		t.uncertain(t.and(t.isAny(a, numKinds), "("+x+" <> 0)", "(abs("+x+") < "+t.d.Float(math.Sqrt(0x1p-1022))+")"), "** 2 with a subnormal result")
	case -1:
		v.f = "(" + t.d.Float(1) + " / " + x + ")"
		t.uncertain(t.and(t.isAny(a, numKinds), "(abs("+x+") > "+t.d.Float(0x1p1022)+")", t.d.IsFinite(x)), "** -1 with a subnormal result")
	}
	return v, nil
}

// unicodeSpace is unicode.IsSpace as an RE2 class (strings.TrimSpace).
const unicodeSpace = `[\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]`

func (t *tr) builtin(n *ast.BuiltinNode) (val, error) {
	args := make([]val, len(n.Arguments))
	for i, a := range n.Arguments {
		v, err := t.node(a)
		if err != nil {
			return val{}, err
		}
		args[i] = v
	}
	var errs []string
	for _, a := range args {
		errs = append(errs, a.err)
	}
	argErr := t.errOr(errs...)
	if len(args) == 0 {
		return val{}, untranslatable(n.Name, "needs an argument")
	}
	x := args[0]
	switch n.Name {
	case "len":
		// A typed nil map (val.nilMap) has length 0; nil fails.
		typedNil := t.and(t.is(x, kNil), t.orFalse(x.nilMap))
		v := val{ks: one(kInt), err: t.errOr(argErr, t.not(t.or(t.isAny(x, one(kString)|one(kArray)|one(kObject)), typedNil)))}
		var arr, obj, str string
		if x.ks.has(kString) {
			str = t.d.CharLen(x.s)
		}
		if x.ks.has(kArray) {
			arr = t.d.JSONArrayLen(t.d.If(t.is(x, kArray), x.s, "'[]'"))
		}
		if x.ks.has(kObject) {
			// An object's key count is stored with it; rows stored before
			// that hold the object's JSON text instead (never a digest's
			// first character).
			isObj := t.is(x, kObject)
			text := t.bind(t.and(isObj, t.d.HasPrefix(x.s, "'{'")))
			count := t.d.FloatToInt(t.d.If(isObj, x.f, t.d.Float(0))) // a cast must not see other kinds' numbers
			obj = t.d.If(text, t.d.JSONObjectLen(t.d.If(text, x.s, "'{}'")), count)
		}
		v.i = t.ifv(t.is(x, kString), str, t.ifv(t.is(x, kArray), arr, obj))
		if !t.isFalse(typedNil) && v.i != "" {
			v.i = t.d.If(typedNil, t.d.Int(0), v.i)
		}
		return v, nil
	case "lower", "upper":
		v := val{ks: one(kString), err: t.errOr(argErr, t.not(t.is(x, kString)))}
		if x.ks.has(kString) {
			if n.Name == "lower" {
				v.s = t.d.Lower(x.s)
			} else {
				v.s = t.d.Upper(x.s)
			}
			// Engines' Unicode case tables differ from Go's.
			t.uncertain(t.and(t.is(x, kString), t.d.Match(x.s, t.d.Str(`[^\x{0}-\x{7F}]`))), n.Name+"() of non-ASCII text")
		}
		return v, nil
	case "trim", "trimPrefix", "trimSuffix":
		return t.trim(n, args, argErr)
	case "abs":
		v := val{ks: x.ks & numKinds, kind: x.kind, err: t.errOr(argErr, t.not(t.isAny(x, numKinds))), nan: x.nan}
		if x.ks.has(kInt) {
			v.i = t.d.If("("+x.i+" < 0)", t.d.IntNeg(x.i), x.i)
		}
		if x.ks.has(kFloat) {
			v.f = t.d.If("("+x.f+" < 0)", "(-"+x.f+")", x.f) // keeps -0, as Go's Abs in expr does
		}
		return v, nil
	case "ceil", "floor", "round":
		v := val{ks: one(kFloat), err: t.errOr(argErr, t.not(t.isAny(x, numKinds))), nan: x.nan}
		if t.isFalse(t.isAny(x, numKinds)) {
			return v, nil
		}
		var f string
		if x.ks.has(kFloat) {
			switch n.Name {
			case "ceil":
				f = t.d.Ceil(x.f)
			case "floor":
				f = t.d.Floor(x.f)
			default:
				f = t.round(x.f)
			}
		}
		var fromInt string
		if x.ks.has(kInt) {
			fromInt = t.d.ToFloat(x.i)
		}
		v.f = t.ifv(t.is(x, kInt), fromInt, f)
		return v, nil
	}
	return val{}, untranslatable(n.Name+"()", "not part of the meter language")
}

// round is math.Round (half away from zero, keeping the sign of zero):
// trunc(x), plus the sign when the fraction (exact: x - trunc(x)) is at
// least one half. Infinities and NaN pass through trunc.
func (t *tr) round(x string) string {
	tr := t.bind(t.d.Trunc(x))
	step := t.d.If("("+x+" < 0)", t.d.Float(-1), t.d.Float(1))
	return t.d.If("(abs("+x+" - "+tr+") >= "+t.d.Float(0.5)+")", "("+tr+" + "+step+")", tr)
}

func (t *tr) trim(n *ast.BuiltinNode, args []val, argErr string) (val, error) {
	s := args[0]
	strs := t.is(s, kString)
	for _, a := range args[1:] {
		strs = t.and(strs, t.is(a, kString))
	}
	v := val{ks: one(kString), err: t.errOr(argErr, t.not(strs))}
	if t.isFalse(strs) {
		return v, nil
	}
	switch n.Name {
	case "trim":
		class := unicodeSpace
		if len(args) == 2 {
			lit, ok := n.Arguments[1].(*ast.StringNode)
			if !ok {
				return val{}, untranslatable("trim", "the characters to trim must be a constant string")
			}
			if lit.Value == "" {
				v.s = s.s
				return v, nil
			}
			class = runeClass(lit.Value)
		}
		v.s = t.d.ReplaceAll(s.s, t.d.Str("^"+class+"+|"+class+"+$"), "''")
	case "trimPrefix", "trimSuffix":
		p := t.d.Str(" ")
		if len(args) == 2 {
			p = args[1].s
		}
		if n.Name == "trimPrefix" {
			v.s = t.d.If(t.d.HasPrefix(s.s, p), t.d.DropPrefix(s.s, p), s.s)
		} else {
			v.s = t.d.If(t.d.HasSuffix(s.s, p), t.d.DropSuffix(s.s, p), s.s)
		}
	}
	return v, nil
}

// runeClass is an RE2 class of the runes of s.
func runeClass(s string) string {
	var b strings.Builder
	b.WriteByte('[')
	for _, r := range s {
		fmt.Fprintf(&b, `\x{%X}`, r)
	}
	b.WriteByte(']')
	return b.String()
}

// call translates int(), float() and string() (rules' strict
// conversions, not expr's).
func (t *tr) call(n *ast.CallNode) (val, error) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok || len(n.Arguments) != 1 {
		return val{}, untranslatable("call", "only int(x), float(x) and string(x) are functions")
	}
	x, err := t.node(n.Arguments[0])
	if err != nil {
		return val{}, err
	}
	switch id.Value {
	case "int":
		return t.toInt(x), nil
	case "float":
		return t.toFloat(x), nil
	case "string":
		return t.toString(x)
	}
	return val{}, untranslatable(id.Value+"()", "unknown function")
}

// digitsRe is rules' isDigits; decimalRe its isDecimal.
const (
	digitsRe  = `^[+-]?[0-9]+$`
	decimalRe = `^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`
)

func (t *tr) toInt(x val) val {
	ok := []string{}
	v := val{ks: one(kInt)}
	var fromFloat, fromStr string
	if x.ks.has(kFloat) {
		// [-2^63, 2^63), not NaN.
		in := t.bind(t.and(t.floatCmp(">=", x.f, t.d.Float(-0x1p63), x.nan), t.floatCmp("<", x.f, t.d.Float(0x1p63), x.nan)))
		ok = append(ok, t.and(t.is(x, kFloat), in))
		fromFloat = t.d.FloatToInt(t.d.If(in, t.d.Trunc(x.f), t.d.Float(0)))
	}
	if x.ks.has(kString) {
		syntax := t.bind(t.d.Match(x.s, t.d.Str(digitsRe)))
		// The digits without sign and leading zeros, compared as text
		// with 2^63-1 (or 2^63 after a minus).
		nz := t.bind(t.d.ReplaceAll(x.s, t.d.Str(`^[+-]?0*`), "''"))
		neg := t.d.HasPrefix(x.s, "'-'")
		inRange := t.or(
			"(length("+nz+") < 19)",
			t.and("(length("+nz+") = 19)", t.d.StrCmp("<=", nz, "'9223372036854775807'")),
			t.and(neg, "("+nz+" = '9223372036854775808')"))
		good := t.bind(t.and(syntax, inRange))
		ok = append(ok, t.and(t.is(x, kString), good))
		fromStr = t.d.ParseDigits(t.d.If(good, x.s, "'0'"))
	}
	if x.ks.has(kInt) {
		ok = append(ok, t.is(x, kInt))
	}
	v.err = t.errOr(x.err, t.not(t.or(ok...)))
	var fromInt string
	if x.ks.has(kInt) {
		fromInt = x.i
	}
	v.i = t.ifv(t.is(x, kInt), fromInt, t.ifv(t.is(x, kFloat), fromFloat, fromStr))
	return v
}

func (t *tr) toFloat(x val) val {
	v := val{ks: one(kFloat)}
	ok := []string{}
	var fromInt, fromFloat, fromStr string
	if x.ks.has(kInt) {
		ok = append(ok, t.is(x, kInt))
		fromInt = t.d.ToFloat(x.i)
	}
	if x.ks.has(kFloat) {
		ok = append(ok, t.is(x, kFloat))
		fromFloat = x.f
		v.nan = x.nan
	}
	if x.ks.has(kString) {
		syntax := t.bind(t.d.Match(x.s, t.d.Str(decimalRe)))
		value, exact := t.d.ParseDecimal(t.d.If(syntax, x.s, "'0'"))
		value = t.bind(value)
		// An overflow fails (strconv.ParseFloat's range error).
		ok = append(ok, t.and(t.is(x, kString), syntax, t.d.IsFinite(value)))
		fromStr = value
		t.uncertain(t.and(t.is(x, kString), syntax, t.not(exact)), "float() of a decimal string that "+t.d.Name()+" does not convert exactly like Go")
	}
	v.err = t.errOr(x.err, t.not(t.or(ok...)))
	v.f = t.ifv(t.is(x, kInt), fromInt, t.ifv(t.is(x, kFloat), fromFloat, fromStr))
	return v
}

func (t *tr) toString(x val) (val, error) {
	if x.ks.has(kFloat) && x.text == "" {
		return val{}, untranslatable("string()", "of a computed float: engines format floats differently")
	}
	v := val{ks: one(kString)}
	ok := []string{}
	var fromInt, fromBool, fromText, fromStr string
	if x.ks.has(kInt) {
		ok = append(ok, t.is(x, kInt))
		fromInt = t.d.IntToString(x.i)
	}
	if x.ks.has(kBool) {
		ok = append(ok, t.is(x, kBool))
		fromBool = t.d.If(x.b, "'true'", "'false'")
		if x.text != "" {
			fromBool = x.text
		}
	}
	if x.ks.has(kFloat) {
		ok = append(ok, t.is(x, kFloat))
		fromText = x.text // storage.Attrs formats numbers as rules' string() does
	}
	if x.ks.has(kString) {
		ok = append(ok, t.is(x, kString))
		fromStr = x.s
	}
	v.err = t.errOr(x.err, t.not(t.or(ok...)))
	v.s = t.ifv(t.is(x, kInt), fromInt, t.ifv(t.is(x, kBool), fromBool, t.ifv(t.is(x, kFloat), fromText, fromStr)))
	return v, nil
}
