package rules

import (
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/expr-lang/expr/builtin"
)

// The conversions replace expr's builtins of the same names, whose corner
// cases no SQL engine reproduces: expr's int(1e300) is platform-dependent,
// float("inf") and float("1_0") parse, string(x) is Go's %v of anything.
// Ours accept less and fail (an error, i.e. no match / a value error)
// on the rest. In the checked tree they are *ast.CallNode with an
// *ast.IdentifierNode callee named "int", "float" or "string".
var conversions = map[string]*builtin.Function{
	"int":    {Name: "int", Func: toInt, Types: []reflect.Type{reflect.TypeOf(func(any) int { return 0 })}},
	"float":  {Name: "float", Func: toFloat, Types: []reflect.Type{reflect.TypeOf(func(any) float64 { return 0 })}},
	"string": {Name: "string", Func: toString, Types: []reflect.Type{reflect.TypeOf(func(any) string { return "" })}},
}

// toInt: int → itself; float → truncated toward zero, failing for NaN,
// ±Inf and values outside [-2^63, 2^63); string → optional sign and
// ASCII digits only, failing on overflow; anything else fails.
func toInt(args ...any) (any, error) {
	switch x := args[0].(type) {
	case int:
		return x, nil
	case float64:
		if math.IsNaN(x) || x < -(1<<63) || x >= 1<<63 {
			return nil, fmt.Errorf("int(%v): out of range", x)
		}
		return int(x), nil
	case string:
		if !isDigits(x) {
			return nil, fmt.Errorf("int(%q): not an integer", x)
		}
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("int(%q): out of range", x)
		}
		return int(n), nil
	}
	return nil, fmt.Errorf("int(%s): not a number or a string", typeName(args[0]))
}

// toFloat: int → float; float → itself; string → decimal syntax only
// (sign, digits, optional fraction and exponent), failing on overflow;
// anything else fails.
func toFloat(args ...any) (any, error) {
	switch x := args[0].(type) {
	case int:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		if !isDecimal(x) {
			return nil, fmt.Errorf("float(%q): not a decimal number", x)
		}
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return nil, fmt.Errorf("float(%q): out of range", x)
		}
		return f, nil
	}
	return nil, fmt.Errorf("float(%s): not a number or a string", typeName(args[0]))
}

// toString: string → itself; int → decimal; float → shortest exact 'g'
// form (1e+06, 0.1), as storage.Attrs stores JSON numbers; bool →
// true/false; nil, arrays and objects fail.
func toString(args ...any) (any, error) {
	switch x := args[0].(type) {
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return nil, fmt.Errorf("string(%s): not a number, bool or string", typeName(args[0]))
}

func isDigits(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isDecimal matches [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// typeName names a runtime value's JSON-ish type for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "bool"
	case int:
		return "int"
	case float64:
		return "float"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
