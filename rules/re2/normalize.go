// Package re2 prepares a meter's matches patterns for the event stores,
// whose regular expressions are RE2 (DuckDB's regexp_matches, ClickHouse's
// match): Normalize rewrites a pattern so that any RE2 build reads it as
// Go's regexp (the VM) does, and ProgramSize bounds the program RE2
// compiles from it, which RE2 refuses beyond its memory budget.
package re2

import (
	"fmt"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
)

// Normalize rewrites a Go regular expression (as `matches` compiles
// it) into an RE2 pattern that means the same to any RE2 build: classes
// become explicit code point ranges (Unicode tables and case folding are
// resolved here, by Go's own tables), "." becomes an explicit class (so
// the engine's dot-matches-newline default does not matter), ^ and $
// become \A and \z unless multi-line, and groups become non-capturing.
// Only match/no-match is needed, so greediness is kept but irrelevant.
func Normalize(pattern string) (string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := emitRegexp(&b, re); err != nil {
		return "", err
	}
	return b.String(), nil
}

const maxRune = unicode.MaxRune

func emitRegexp(b *strings.Builder, re *syntax.Regexp) error {
	switch re.Op {
	case syntax.OpNoMatch:
		b.WriteString(`[^\x{0}-\x{10FFFF}]`)
	case syntax.OpEmptyMatch:
		b.WriteString(`(?:)`)
	case syntax.OpLiteral:
		b.WriteString("(?:")
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				emitClass(b, foldOrbit(r))
			} else {
				emitRune(b, r)
			}
		}
		b.WriteString(")")
	case syntax.OpCharClass:
		emitClass(b, re.Rune)
	case syntax.OpAnyCharNotNL:
		emitClass(b, []rune{0, '\n' - 1, '\n' + 1, maxRune})
	case syntax.OpAnyChar:
		emitClass(b, []rune{0, maxRune})
	case syntax.OpBeginLine:
		b.WriteString(`(?m:^)`)
	case syntax.OpEndLine:
		b.WriteString(`(?m:$)`)
	case syntax.OpBeginText:
		b.WriteString(`\A`)
	case syntax.OpEndText:
		b.WriteString(`\z`)
	case syntax.OpWordBoundary:
		b.WriteString(`\b`)
	case syntax.OpNoWordBoundary:
		b.WriteString(`\B`)
	case syntax.OpCapture:
		return emitGroup(b, re.Sub[0], "")
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		suffix := map[syntax.Op]string{syntax.OpStar: "*", syntax.OpPlus: "+", syntax.OpQuest: "?"}[re.Op]
		if re.Flags&syntax.NonGreedy != 0 {
			suffix += "?"
		}
		return emitGroup(b, re.Sub[0], suffix)
	case syntax.OpRepeat:
		suffix := "{" + strconv.Itoa(re.Min) + ","
		if re.Max >= 0 {
			suffix += strconv.Itoa(re.Max)
		}
		suffix += "}"
		if re.Flags&syntax.NonGreedy != 0 {
			suffix += "?"
		}
		return emitGroup(b, re.Sub[0], suffix)
	case syntax.OpConcat:
		b.WriteString("(?:")
		for _, s := range re.Sub {
			if err := emitRegexp(b, s); err != nil {
				return err
			}
		}
		b.WriteString(")")
	case syntax.OpAlternate:
		b.WriteString("(?:")
		for i, s := range re.Sub {
			if i > 0 {
				b.WriteString("|")
			}
			if err := emitRegexp(b, s); err != nil {
				return err
			}
		}
		b.WriteString(")")
	default:
		return fmt.Errorf("unsupported regular expression operator %v", re.Op)
	}
	return nil
}

func emitGroup(b *strings.Builder, sub *syntax.Regexp, suffix string) error {
	b.WriteString("(?:")
	if err := emitRegexp(b, sub); err != nil {
		return err
	}
	b.WriteString(")" + suffix)
	return nil
}

// emitClass writes a class of [lo, hi] pairs; an empty class never
// matches.
func emitClass(b *strings.Builder, ranges []rune) {
	if len(ranges) == 0 {
		b.WriteString(`[^\x{0}-\x{10FFFF}]`)
		return
	}
	b.WriteByte('[')
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		fmt.Fprintf(b, `\x{%X}`, lo)
		if hi != lo {
			fmt.Fprintf(b, `-\x{%X}`, hi)
		}
	}
	b.WriteByte(']')
}

func emitRune(b *strings.Builder, r rune) {
	if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
		b.WriteRune(r)
		return
	}
	fmt.Fprintf(b, `\x{%X}`, r)
}

// foldOrbit is r with every rune Go's regexp treats as its case
// variant (the unicode.SimpleFold orbit), as sorted ranges.
func foldOrbit(r rune) []rune {
	set := []rune{r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		set = append(set, f)
	}
	// sort (orbits are tiny)
	for i := 1; i < len(set); i++ {
		for j := i; j > 0 && set[j] < set[j-1]; j-- {
			set[j], set[j-1] = set[j-1], set[j]
		}
	}
	out := make([]rune, 0, 2*len(set))
	for _, c := range set {
		out = append(out, c, c)
	}
	return out
}
