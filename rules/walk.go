package rules

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules/re2"
)

// walker enforces the allow-list (Language) on a parsed tree. node runs
// before type checking (structure, names, fields, constant patterns);
// typed runs after it (rules that need types). The first error wins.
type walker struct {
	s     exprSource
	saved bool // skip the checks that only protect the stores
	lang  *language
	err   *fault.Error
	// reads are the field paths the expression reads, in order, once
	// each; calls the environment functions it calls (usage("m")).
	reads []string
	calls []Call
}

// Call is a call of an environment function with a constant string
// argument: usage("mtr_1") in a governance condition.
type Call struct {
	Func, Arg string
	Offset    int // of the argument, in runes from the expression's start
}

func (w *walker) fail(n ast.Node, code, format string, args ...any) {
	if w.err == nil {
		w.err = w.s.at(n.Location().From, code, format, args...)
	}
}

func (w *walker) forbid(n ast.Node, what, construct string) {
	w.fail(n, CodeForbidden, "%s is not allowed: %s", what, reason(construct))
}

func (w *walker) node(n ast.Node, depth int) {
	if w.err != nil || n == nil {
		return
	}
	if depth > MaxDepth {
		w.fail(n, CodeTooLarge, "expression is nested more than %d levels deep", MaxDepth)
		return
	}
	switch n := n.(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode:
	case *ast.IdentifierNode, *ast.MemberNode, *ast.ChainNode:
		path, kind := w.member(n)
		if w.err == nil && (kind == "struct" || isMapKind(kind)) {
			w.fail(n, CodeForbidden, "%s is not a value: %s", path, reason("whole map"))
		}
		w.read(path)
	case *ast.UnaryNode:
		if !allowedUnary[n.Operator] {
			w.forbid(n, "operator "+n.Operator, n.Operator)
		}
		w.node(n.Node, depth+1)
	case *ast.BinaryNode:
		w.binary(n, depth)
	case *ast.ConditionalNode:
		w.node(n.Cond, depth+1)
		w.node(n.Exp1, depth+1)
		w.node(n.Exp2, depth+1)
	case *ast.BuiltinNode:
		if !allowedBuiltins[n.Name] {
			w.forbid(n, n.Name+"()", n.Name)
			return
		}
		w.call(n, n.Arguments, depth)
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		switch {
		case !ok:
			w.forbid(n, "calling a method", "x.f()")
		case allowedFunctions[id.Value]:
			w.call(n, n.Arguments, depth)
		case w.lang.calls[id.Value]:
			w.envCall(n, id.Value)
		case forbiddenReason[id.Value] != "":
			w.forbid(n, id.Value+"()", id.Value)
		default:
			w.fail(n, CodeUnknownFunction, "unknown function %s%s", id.Value, suggest(id.Value, functionNames()))
		}
	case *ast.ArrayNode:
		w.forbid(n, "an array literal", "[...]")
	case *ast.MapNode, *ast.PairNode:
		w.forbid(n, "a map literal", "{...}")
	case *ast.SliceNode:
		w.forbid(n, "slicing", "a[i:j]")
	case *ast.PredicateNode, *ast.PointerNode:
		w.forbid(n, "a closure", "# / .field")
	case *ast.VariableDeclaratorNode:
		w.forbid(n, "let", "let")
	case *ast.SequenceNode:
		w.forbid(n, "a sequence (;)", ";")
	case *ast.BytesNode:
		w.forbid(n, "a byte string", `b"..."`)
	default:
		w.fail(n, CodeForbidden, "this construct is not part of the meter language")
	}
}

// read records a field path the expression reads.
func (w *walker) read(path string) {
	if path != "" && !slices.Contains(w.reads, path) {
		w.reads = append(w.reads, path)
	}
}

// envCall checks a call of an environment function: its one argument
// must be a constant string (usage("mtr_1")), so that what it reads is
// known before it runs.
func (w *walker) envCall(n *ast.CallNode, name string) {
	if len(n.Arguments) != 1 {
		w.fail(n, CodeInvalidValue, "%s takes one argument, a meter id in quotes: %s(\"mtr_...\")", name, name)
		return
	}
	arg, ok := n.Arguments[0].(*ast.StringNode)
	if !ok {
		w.fail(n.Arguments[0], CodeForbidden, "the argument of %s must be a constant string: %s(\"mtr_...\")", name, name)
		return
	}
	w.calls = append(w.calls, Call{Func: name, Arg: arg.Value, Offset: arg.Location().From})
	w.read(name + "(" + strconv.Quote(arg.Value) + ")")
}

func (w *walker) call(n ast.Node, args []ast.Node, depth int) {
	// A pipe (x | f()) puts the piped value before the function's name.
	if len(args) > 0 && args[0].Location().From < n.Location().From {
		w.forbid(n, "the pipe operator", "|")
		return
	}
	for _, a := range args {
		w.node(a, depth+1)
	}
}

func (w *walker) binary(n *ast.BinaryNode, depth int) {
	if !allowedBinary[n.Operator] {
		w.forbid(n, "operator "+n.Operator, n.Operator)
		return
	}
	switch n.Operator {
	case "in":
		w.node(n.Left, depth+1)
		w.inRight(n.Right)
		return
	case "matches":
		w.node(n.Left, depth+1)
		p, ok := n.Right.(*ast.StringNode)
		if !ok {
			w.fail(n.Right, CodeForbidden, "the pattern of matches must be a constant string, so that it is checked once and runs the same in every engine")
			return
		}
		if err := compileRegex(p.Value); err != nil {
			w.fail(n.Right, CodeInvalidRegex, "invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		} else if size, _ := re2.ProgramSize(p.Value); size > re2.MaxProgram && !w.saved {
			w.fail(n.Right, CodeTooLarge, "the pattern is too large for the event stores' regular expressions (RE2): it compiles to about %d instructions, the limit is %d "+
				"(x{n} copies x n times, and a Unicode class such as \\pL takes thousands)", size, re2.MaxProgram)
		}
		return
	}
	w.node(n.Left, depth+1)
	w.node(n.Right, depth+1)
}

// inRight checks the right side of in: a list of constants, or one of the
// maps whose keys are stored as columns.
func (w *walker) inRight(n ast.Node) {
	if arr, ok := n.(*ast.ArrayNode); ok {
		for _, e := range arr.Nodes {
			if !isConstant(e) {
				w.fail(e, CodeForbidden, "the list of in may hold only constants (numbers, strings, true, false, nil)")
				return
			}
		}
		return
	}
	switch r := n.(type) {
	case *ast.BinaryNode:
		if r.Operator == ".." {
			w.forbid(r, "operator ..", "..")
			return
		}
	case *ast.IdentifierNode, *ast.MemberNode, *ast.ChainNode:
		path, _ := w.member(n)
		if w.err != nil {
			return
		}
		if slices.Contains(w.lang.inMaps, path) {
			return
		}
	}
	w.fail(n, CodeForbidden, "the right side of in must be a constant list ([200, 201]) or one of %s", strings.Join(w.lang.inMaps, ", "))
}

func isConstant(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode:
		return true
	case *ast.UnaryNode:
		switch n.Node.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
			return n.Operator == "-" || n.Operator == "+"
		}
	}
	return false
}

func isMapKind(kind string) bool {
	return kind == "object" || kind == "map[string]string"
}

// member resolves a field path (request.route, metadata.a.b,
// request.headers["x-api-key"]) against the environment. It returns the
// path and its kind: a Fields type, or "any" for a value inside a JSON
// object. Errors are recorded in w.err.
func (w *walker) member(n ast.Node) (path, kind string) {
	switch n := n.(type) {
	case *ast.ChainNode:
		return w.member(n.Node)
	case *ast.IdentifierNode:
		if n.Value == "$env" {
			w.forbid(n, "$env", "$env")
			return "", ""
		}
		kind, ok := w.lang.kinds[n.Value]
		if !ok || strings.Contains(n.Value, ".") {
			w.fail(n, CodeUnknownField, "unknown field %s%s", n.Value, suggest(n.Value, w.lang.paths()))
			return "", ""
		}
		return n.Value, kind
	case *ast.MemberNode:
		if n.Method {
			w.forbid(n, "calling a method", "x.f()")
			return "", ""
		}
		switch n.Node.(type) {
		case *ast.IdentifierNode, *ast.MemberNode, *ast.ChainNode:
		default:
			w.forbid(n, "reading a field of a computed value", "(expr).field")
			return "", ""
		}
		base, kind := w.member(n.Node)
		if w.err != nil {
			return "", ""
		}
		key, ok := n.Property.(*ast.StringNode)
		if !ok {
			if isInteger(n.Property) {
				w.forbid(n, "indexing an array", "a[i]")
			} else {
				w.forbid(n, "a computed key", "a[key expr]")
			}
			return "", ""
		}
		switch kind {
		case "struct":
			p := base + "." + key.Value
			k, ok := w.lang.kinds[p]
			if !ok {
				w.fail(n, CodeUnknownField, "unknown field %s%s", p, suggest(p, w.lang.paths()))
				return "", ""
			}
			return p, k
		case "map[string]string":
			if key.Value != strings.ToLower(key.Value) {
				w.fail(n, CodeInvalidValue, "header names are stored lower-case: write %s[%q]", base, strings.ToLower(key.Value))
				return "", ""
			}
			return base + "[" + key.Value + "]", "string"
		case "object", "any":
			if key.Value == "" || strings.Contains(key.Value, ".") {
				w.forbid(n, "the key "+quote(key.Value), "dotted key")
				return "", ""
			}
			return base + "." + key.Value, "any"
		}
		w.fail(n, CodeType, "%s is a %s and has no field %s", base, kind, key.Value)
		return "", ""
	}
	w.fail(n, CodeForbidden, "this construct is not part of the meter language")
	return "", ""
}

func isInteger(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return true
	case *ast.UnaryNode:
		return isInteger(n.Node)
	}
	return false
}

func quote(s string) string {
	return `"` + s + `"`
}

// typed applies the rules that need the checker's types.
func (w *walker) typed(n ast.Node) {
	ast.Find(n, func(n ast.Node) bool {
		call, ok := n.(*ast.CallNode)
		if !ok || w.err != nil {
			return false
		}
		if id, ok := call.Callee.(*ast.IdentifierNode); ok && id.Value == "string" && len(call.Arguments) == 1 {
			arg := call.Arguments[0]
			switch arg.Type().Kind() {
			case reflect.Int, reflect.Bool, reflect.String:
				return false
			}
			if _, kind := (&walker{s: w.s, lang: w.lang}).member(arg); kind == "any" {
				return false // a metadata or trait field: stored with its text
			}
			w.fail(call, CodeForbidden, "string() of a float or a computed value is not allowed: engines format floats differently; apply string() to an int, a bool, a string or a metadata/trait field")
		}
		return false
	})
}

func functionNames() []string {
	var out []string
	for name := range allowedBuiltins {
		out = append(out, name)
	}
	for name := range allowedFunctions {
		out = append(out, name)
	}
	return out
}
