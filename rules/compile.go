package rules

import (
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/meterd/meterd/engine/fault"
)

// result is what an expression must produce.
type result int

const (
	wantBool     result = iota // filter
	wantNumber                 // value of sum, max, min (and count's "1")
	wantDistinct               // value of unique: a number or a string
)

// compileExpr runs the whole pipeline on one expression: size limits,
// parse, allow-list walk, type check, result type, VM program. The
// returned tree is the checked one (types on every node); the program is
// compiled from that same tree, without expr's optimiser, so the VM runs
// exactly what the SQL translator reads. saved skips the checks that only
// protect the stores (see CompileSaved).
func compileExpr(field, src string, want result, saved bool) (*parser.Tree, *vm.Program, *fault.Error) {
	tree, program, _, err := compileIn(meterLanguage, field, src, want, saved)
	return tree, program, err
}

// compileIn is compileExpr for an expression of language l; it also
// returns what the walk found (the fields read, usage calls).
func compileIn(l *language, field, src string, want result, saved bool) (*parser.Tree, *vm.Program, *walker, *fault.Error) {
	s := exprSource{field: field, src: file.NewSource(src)}
	if strings.TrimSpace(src) == "" {
		return nil, nil, nil, fieldError(field, CodeInvalidValue, "%s is required", field)
	}
	if len(src) > MaxSourceBytes {
		return nil, nil, nil, s.at(0, CodeTooLarge, "expression is %d bytes long; the limit is %d", len(src), MaxSourceBytes)
	}
	if at := tooDeep(src); at >= 0 {
		return nil, nil, nil, s.at(at, CodeTooLarge, "brackets nested more than %d deep", MaxNesting)
	}

	cfg := l.config()
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		return nil, nil, nil, s.fromExprError(err, CodeSyntax, nil)
	}
	w := &walker{s: s, saved: saved, lang: l}
	w.node(tree.Node, 0)
	if w.err != nil {
		return nil, nil, nil, w.err
	}
	t, err := checker.Check(tree, cfg)
	if err != nil {
		return nil, nil, nil, s.fromExprError(err, CodeType, tree)
	}
	w.typed(tree.Node)
	if w.err != nil {
		return nil, nil, nil, w.err
	}
	if e := checkResult(s, tree.Node, t, want); e != nil {
		return nil, nil, nil, e
	}
	program, err := compiler.Compile(tree, cfg)
	if err != nil {
		return nil, nil, nil, s.fromExprError(err, CodeType, tree)
	}
	return tree, program, w, nil
}

// config is expr's configuration for l: its environment type, our node
// limit and our conversion functions in place of expr's.
func (l *language) config() *conf.Config {
	cfg := conf.CreateNew()
	cfg.WithEnv(l.env)
	cfg.MaxNodes = MaxNodes
	for name, f := range conversions {
		cfg.Functions[name] = f
	}
	return cfg
}

// fromExprError converts an error of expr's parser (tree nil) or checker
// into ours, its message in plain words (plainMessage).
func (s exprSource) fromExprError(err error, code string, tree *parser.Tree) *fault.Error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &fault.Error{Status: http.StatusBadRequest, Field: s.field, Line: 1, Column: 1, Code: code, Message: err.Error()}
	}
	if strings.Contains(fe.Message, "exceeds maximum allowed nodes") {
		code = CodeTooLarge
		fe.Message = "expression has more than " + strconv.Itoa(MaxNodes) + " nodes"
	} else {
		fe.Message = s.plainMessage(fe, tree)
	}
	return s.fromFile(fe, code)
}

// checkResult checks the expression's static type. Unknown types (a
// metadata field) pass: the evaluator handles what they turn out to be.
func checkResult(s exprSource, n ast.Node, t reflect.Type, want result) *fault.Error {
	_, isNil := n.(*ast.NilNode)
	k := reflect.Interface
	if t != nil {
		k = t.Kind()
	}
	unknown := k == reflect.Interface && !isNil
	number := isNumberKind(k)
	switch want {
	case wantBool:
		if !unknown && k != reflect.Bool {
			return s.at(0, CodeNotBool, "a filter must be a bool (true or false), got %s", typeWord(n, t))
		}
	case wantNumber:
		if !unknown && !number {
			return s.at(0, CodeNotNumeric, "a value must be a number, got %s", typeWord(n, t))
		}
	case wantDistinct:
		if !unknown && !number && k != reflect.String {
			return s.at(0, CodeType, "the value of a unique meter must be a number or a string, got %s", typeWord(n, t))
		}
	}
	return nil
}

func isNumberKind(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func typeWord(n ast.Node, t reflect.Type) string {
	if _, ok := n.(*ast.NilNode); ok || t == nil {
		return "nil"
	}
	switch k := t.Kind(); {
	case k == reflect.Bool:
		return "bool"
	case k == reflect.String:
		return "string"
	case k == reflect.Float32 || k == reflect.Float64:
		return "float"
	case isNumberKind(k):
		return "int"
	}
	return t.String()
}

// tooDeep returns the rune offset of the first bracket nested deeper than
// MaxNesting, or -1. Strings and comments are skipped so that their
// brackets do not count.
func tooDeep(src string) int {
	rs := []rune(src)
	depth := 0
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '"', '\'', '`':
			for i++; i < len(rs) && rs[i] != r; i++ {
				if rs[i] == '\\' && r != '`' {
					i++
				}
			}
		case '/':
			if i+1 < len(rs) && rs[i+1] == '/' {
				for i < len(rs) && rs[i] != '\n' {
					i++
				}
			} else if i+1 < len(rs) && rs[i+1] == '*' {
				for i += 2; i+1 < len(rs) && !(rs[i] == '*' && rs[i+1] == '/'); i++ {
				}
				i++
			}
		case '(', '[', '{':
			depth++
			if depth > MaxNesting {
				return i
			}
		case ')', ']', '}':
			depth--
		}
	}
	return -1
}

// compileRegex checks a matches pattern with Go's RE2 (the one the VM
// uses). DuckDB and ClickHouse use RE2 too.
func compileRegex(pattern string) error {
	_, err := regexp.Compile(pattern)
	return err
}
