package rules

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/expr-lang/expr/file"

	"github.com/meterd/meterd/engine/fault"
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

// fieldError is a problem at one field of a definition. A definition's
// problems are fault.Errors (engine/fault): Field is its JSON field ("name", "filter", "value",
// "aggregation", ...); for expressions Line and Column are 1-based and
// count characters (Unicode code points), and Snippet shows the
// expression's line with a caret under Column:
// "response.stauts == 200\n         ^". Compile fails with a fault.List:
// every problem found, at most one per expression (the first), in field
// order.
func fieldError(field, code, format string, args ...any) *fault.Error {
	return fault.Invalid(code, field, fmt.Sprintf(format, args...))
}

// exprSource is one expression being compiled, for positioning errors.
type exprSource struct {
	field string
	src   file.Source
}

// at positions an error at a rune offset of the expression.
func (s exprSource) at(from int, code, format string, args ...any) *fault.Error {
	fe := (&file.Error{Location: file.Location{From: from, To: from}, Message: fmt.Sprintf(format, args...)}).Bind(s.src)
	return s.fromFile(fe, code)
}

// fromFile converts an expr error (0-based column) into ours.
func (s exprSource) fromFile(fe *file.Error, code string) *fault.Error {
	line := fe.Line
	if line == 0 {
		line = 1
	}
	return &fault.Error{
		Status:  http.StatusBadRequest,
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
