package rules

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/expr-lang/expr/file"
)

// Error codes of compile errors.
const (
	CodeSyntax          = "syntax_error"
	CodeType            = "type_error"
	CodeUnknownField    = "unknown_field"
	CodeUnknownFunction = "unknown_function"
	CodeNotBool         = "not_bool"
	CodeNotNumeric      = "not_numeric"
	CodeTooLarge        = "too_large"
	CodeForbidden       = "forbidden"
	CodeInvalidRegex    = "invalid_regex"
	CodeInvalidValue    = "invalid_value"
)

// Error is one problem in a meter definition. Field is the definition's
// JSON field ("name", "filter", "value", "aggregation", ...). For
// expressions Line and Column are 1-based and count characters (Unicode
// code points); they are 0 for other fields.
type Error struct {
	Field   string `json:"field"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Snippet shows the expression's line with a caret under Column:
	// "response.stauts == 200\n         ^".
	Snippet string `json:"snippet,omitempty"`
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Field, e.Line, e.Column, e.Message)
}

// Errors is what Compile returns on failure: every problem found, at most
// one per expression (the first), in field order.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// AsErrors extracts the Errors from an error returned by Compile.
func AsErrors(err error) (Errors, bool) {
	var es Errors
	ok := errors.As(err, &es)
	return es, ok
}

func fieldError(field, code, format string, args ...any) *Error {
	return &Error{Field: field, Code: code, Message: fmt.Sprintf(format, args...)}
}

// exprSource is one expression being compiled, for positioning errors.
type exprSource struct {
	field string
	src   file.Source
}

// at positions an error at a rune offset of the expression.
func (s exprSource) at(from int, code, format string, args ...any) *Error {
	fe := (&file.Error{Location: file.Location{From: from, To: from}, Message: fmt.Sprintf(format, args...)}).Bind(s.src)
	return s.fromFile(fe, code)
}

// fromFile converts an expr error (0-based column) into ours.
func (s exprSource) fromFile(fe *file.Error, code string) *Error {
	line := fe.Line
	if line == 0 {
		line = 1
	}
	return &Error{
		Field:   s.field,
		Line:    line,
		Column:  fe.Column + 1,
		Code:    code,
		Message: fe.Message,
		Snippet: snippet(fe.Snippet),
	}
}

// snippet turns expr's "\n | line\n | ...^" into "line\n   ^".
func snippet(s string) string {
	parts := strings.Split(strings.TrimPrefix(s, "\n"), "\n")
	if len(parts) != 2 {
		return ""
	}
	line := strings.TrimPrefix(parts[0], " | ")
	caret := strings.ReplaceAll(strings.TrimPrefix(parts[1], " | "), ".", " ")
	return line + "\n" + caret
}

// suggest returns " did you mean X?" for a mistyped path, or "".
// A path whose last segment names exactly one other field wins
// (status → response.status); otherwise the nearest path by edit
// distance, if it is near enough.
func suggest(path string, candidates []string) string {
	leaf := path[strings.LastIndexByte(path, '.')+1:]
	var sameLeaf []string
	for _, c := range candidates {
		if c != path && strings.EqualFold(c[strings.LastIndexByte(c, '.')+1:], leaf) {
			sameLeaf = append(sameLeaf, c)
		}
	}
	if len(sameLeaf) > 0 {
		sort.Strings(sameLeaf)
		return "; did you mean " + strings.Join(sameLeaf, " or ") + "?"
	}
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(path), strings.ToLower(c))
		if bestD < 0 || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len([]rune(path))/3) {
		return "; did you mean " + best + "?"
	}
	return ""
}

// editDistance is the Levenshtein distance over runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
