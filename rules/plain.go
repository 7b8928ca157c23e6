package rules

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/parser/lexer"
)

// expr's own messages name its tokens and Go types ("unexpected token
// EOF", "mismatched types int and string"): plainMessage says the common
// ones in the language people write, with what to do. Anything it does
// not recognise keeps expr's message. The position stays expr's.
func (s exprSource) plainMessage(fe *file.Error, tree *parser.Tree) string {
	msg := fe.Message
	switch {
	case msg == "unexpected token EOF" || msg == "unexpected end of expression":
		return s.plainEnd()
	case strings.HasPrefix(msg, "unexpected token "):
		if m := s.plainUnexpected(fe.From); m != "" {
			return m
		}
	case strings.HasPrefix(msg, "bad number syntax: "):
		return strings.TrimPrefix(msg, "bad number syntax: ") + " is not a number"
	case msg == "literal not terminated":
		return "this string has no closing quote"
	case strings.HasPrefix(msg, "unrecognized character: "):
		return plainCharacter(msg)
	case strings.HasPrefix(msg, "invalid operation: ") && tree != nil:
		return plainMismatch(fe, tree)
	}
	return msg
}

// tokens lexes the expression; none when it does not lex.
func (s exprSource) tokens() []lexer.Token {
	ts, err := lexer.Lex(s.src)
	if err != nil {
		return nil
	}
	return ts
}

// wordOperators are the operators written as words, for a misspelt one.
var wordOperators = []string{"and", "or", "not", "in", "contains", "startsWith", "endsWith", "matches"}

// plainEnd explains an expression that ends too early: by what it ends
// with (an operator waiting for its right side, a dot waiting for a
// field, a comma), or by a bracket it never closes.
func (s exprSource) plainEnd() string {
	ts := s.tokens()
	if len(ts) > 0 && ts[len(ts)-1].Kind == lexer.EOF {
		ts = ts[:len(ts)-1]
	}
	if len(ts) == 0 {
		return "the expression is empty"
	}
	last := ts[len(ts)-1]
	if last.Kind == lexer.Operator {
		switch v := last.Value; v {
		case ".", "?.":
			return fmt.Sprintf("a field name must follow %q", memberPrefix(ts))
		case ",":
			return `a value must follow ","`
		case "and", "or", "&&", "||":
			return fmt.Sprintf("%q needs a condition after it; finish the condition or remove %q", v, v)
		case "not", "!":
			return fmt.Sprintf("%q needs a condition after it", v)
		default:
			return fmt.Sprintf("%q needs a value after it", v)
		}
	}
	if open, ok := s.unclosed(ts); ok {
		return fmt.Sprintf("the %q at %s is never closed; add %q", open.Value, s.where(open.Location), closing[open.Value])
	}
	return "the expression ends too early"
}

// memberPrefix is the path a trailing dot follows: "request." in
// "x and request.".
func memberPrefix(ts []lexer.Token) string {
	i := len(ts) - 1
	for i > 0 && (ts[i-1].Kind == lexer.Identifier || ts[i-1].Is(lexer.Operator, ".", "?.")) {
		i--
	}
	var b strings.Builder
	for _, t := range ts[i:] {
		b.WriteString(t.Value)
	}
	return b.String()
}

var closing = map[string]string{"(": ")", "[": "]", "{": "}"}

// unclosed is the innermost bracket opened and not closed.
func (s exprSource) unclosed(ts []lexer.Token) (lexer.Token, bool) {
	var open []lexer.Token
	for _, t := range ts {
		if t.Kind != lexer.Bracket {
			continue
		}
		if closing[t.Value] != "" {
			open = append(open, t)
		} else if len(open) > 0 {
			open = open[:len(open)-1]
		}
	}
	if len(open) == 0 {
		return lexer.Token{}, false
	}
	return open[len(open)-1], true
}

// where names a position as the editor shows it: "column 5" on a
// one-line expression, else "line 2, column 5".
func (s exprSource) where(loc file.Location) string {
	fe := (&file.Error{Location: loc}).Bind(s.src)
	if !strings.Contains(s.src.String(), "\n") {
		return fmt.Sprintf("column %d", fe.Column+1)
	}
	return fmt.Sprintf("line %d, column %d", fe.Line, fe.Column+1)
}

// plainUnexpected explains a token the parser did not expect, found by
// its position: "=" for "==", a bracket that closes nothing, a misspelt
// word operator, or a value with no operator before it ("" when the
// token is not found).
func (s exprSource) plainUnexpected(at int) string {
	ts := s.tokens()
	i := 0
	for i < len(ts) && ts[i].From != at {
		i++
	}
	if i == len(ts) {
		return ""
	}
	t := ts[i]
	var prev lexer.Token
	if i > 0 {
		prev = ts[i-1]
	}
	switch t.Kind {
	case lexer.Operator:
		switch {
		case t.Value == "=" && prev.Is(lexer.Operator, "==", "!=") && prev.To == t.From:
			return fmt.Sprintf("%q is not an operator; write %q", prev.Value+"=", prev.Value)
		case t.Value == "=":
			return `"=" is not a comparison; did you mean "=="?`
		case t.Value == "&":
			return `"&" is not an operator; did you mean "and"?`
		case t.Value == ",":
			return `"," only separates a function's arguments or a list's items`
		case prev.Kind == lexer.Operator:
			return fmt.Sprintf("%q cannot follow %q: a value is missing between them", t.Value, prev.Value)
		}
		return fmt.Sprintf("unexpected %q: a value is missing before it", t.Value)
	case lexer.Bracket:
		if closing[t.Value] == "" {
			return fmt.Sprintf("this %q closes nothing; remove it", t.Value)
		}
		return fmt.Sprintf("unexpected %q: an operator is missing before it", t.Value)
	case lexer.Identifier:
		for _, w := range wordOperators {
			if strings.EqualFold(t.Value, w) {
				return fmt.Sprintf("unknown operator %s; did you mean %s?", t.Value, w)
			}
		}
	}
	text := t.Value
	if t.Kind == lexer.String {
		text = strconv.Quote(t.Value)
	}
	return fmt.Sprintf("an operator (==, and, or, ...) is missing before %s", text)
}

// lookalikes are characters that phones and word processors type in
// place of the language's.
var lookalikes = map[rune]string{'≠': "!=", '≤': "<=", '≥': ">=", '“': `"`, '”': `"`, '‘': "'", '’': "'", '−': "-", '×': "*", '÷': "/"}

var characterRe = regexp.MustCompile(`U\+[0-9A-F]+ '(.+)'$`)

func plainCharacter(msg string) string {
	m := characterRe.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	r := []rune(m[1])[0]
	if w, ok := lookalikes[r]; ok {
		return fmt.Sprintf("%q is not part of the language; did you mean %s?", string(r), w)
	}
	return fmt.Sprintf("%q is not part of the language", string(r))
}

var mismatchRe = regexp.MustCompile(`^invalid operation: (\S+) \(mismatched types? (.+?)(?: and (.+))?\)$`)

// plainMismatch explains an operator given values of the wrong types,
// naming the operands as written and, for a number in quotes or a word
// compared with a number, the fix.
func plainMismatch(fe *file.Error, tree *parser.Tree) string {
	m := mismatchRe.FindStringSubmatch(fe.Message)
	if m == nil {
		return fe.Message
	}
	op, lt, rt := m[1], m[2], m[3]
	found := ast.Find(tree.Node, func(n ast.Node) bool {
		if n.Location().From != fe.From {
			return false
		}
		switch x := n.(type) {
		case *ast.BinaryNode:
			return x.Operator == op
		case *ast.UnaryNode:
			return x.Operator == op
		}
		return false
	})
	switch n := found.(type) {
	case *ast.UnaryNode:
		return fmt.Sprintf("%q needs a bool (true or false), and %s is %s", op, n.Node, typeWords(lt))
	case *ast.BinaryNode:
		if rt == "" {
			break
		}
		switch op {
		case "and", "or", "&&", "||":
			side, t := n.Left, lt
			if lt == "bool" {
				side, t = n.Right, rt
			}
			return fmt.Sprintf("%q needs a bool (true or false) on each side, and %s is %s", op, side, typeWords(t))
		}
		verb := "compare"
		if arithmetic[op] {
			verb = "combine"
		}
		msg := fmt.Sprintf("%s is %s and %s is %s, so %q cannot %s them", n.Left, typeWords(lt), n.Right, typeWords(rt), op, verb)
		return msg + quoteFix(op, n.Left, lt, n.Right, rt)
	}
	return fe.Message
}

var (
	comparison = map[string]bool{"==": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true}
	arithmetic = map[string]bool{"+": true, "-": true, "*": true, "/": true, "%": true, "**": true, "^": true}
)

// quoteFix suggests removing the quotes of a number written as a string
// compared with a number, or quoting a number compared with a string.
func quoteFix(op string, l ast.Node, lt string, r ast.Node, rt string) string {
	if !comparison[op] {
		return ""
	}
	for _, side := range [2][2]any{{l, rt}, {r, lt}} {
		n, other := side[0].(ast.Node), side[1].(string)
		if s, ok := n.(*ast.StringNode); ok && isNumberType(other) {
			if _, err := strconv.ParseFloat(s.Value, 64); err == nil {
				return fmt.Sprintf("; remove the quotes: %s", s.Value)
			}
		}
		if (op == "==" || op == "!=") && other == "string" {
			switch x := n.(type) {
			case *ast.IntegerNode, *ast.FloatNode:
				return fmt.Sprintf("; did you mean %q, in quotes?", fmt.Sprint(x))
			}
		}
	}
	return ""
}

func isNumberType(t string) bool {
	switch t {
	case "int", "int64", "float", "float64":
		return true
	}
	return false
}

// typeWords names an expr type for people.
func typeWords(t string) string {
	switch {
	case isNumberType(t):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a bool"
	case t == "nil":
		return "nil"
	case strings.HasPrefix(t, "map["):
		return "an object"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return "of type " + t
}
