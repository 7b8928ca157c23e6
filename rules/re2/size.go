package re2

import (
	"regexp/syntax"
	"unicode/utf8"
)

// budget is how many instructions RE2 fits in the program of a pattern
// under its default 8 MiB max_mem: the forward program gets 2/3 of it, at
// 8 bytes an instruction (re2/compile.cc, Compiler::Setup). Past it RE2
// answers "pattern too large", and so do the stores.
const budget = (8 << 20) * 2 / 3 / 8 // 699,050

// MaxProgram is the largest ProgramSize a meter may use: half of RE2's
// budget. ProgramSize errs high (about twice RE2's count for large
// Unicode classes, checked against both stores); the factor 2 covers the
// case where RE2's suffix sharing costs more than it saves, and keeps the
// reverse program (RE2 gives it 1/3 of max_mem) within its share too.
const MaxProgram = budget / 2

// ProgramSize bounds the number of instructions RE2 compiles from
// Normalize(pattern). It follows RE2's compiler (re2/compile.cc): a
// counted repetition is expanded into copies (x{2,5} is xx(x(x(x)?)?)?),
// and a character class is compiled to UTF-8 byte ranges, one instruction
// per byte of each sequence; RE2's sharing of common suffixes is not
// counted, so the bound stays an overestimate.
func ProgramSize(pattern string) (int, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, err
	}
	// The fail and match instructions, and the unanchored search's
	// leading .*? (a byte range and an alternation).
	return 4 + size(re), nil
}

func size(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				n += classSize(foldOrbit(r)) // Normalize writes a class
			} else {
				n += utf8.RuneLen(r)
			}
		}
		return n
	case syntax.OpCharClass:
		return classSize(re.Rune)
	case syntax.OpAnyCharNotNL:
		return classSize([]rune{0, '\n' - 1, '\n' + 1, maxRune})
	case syntax.OpAnyChar:
		return classSize([]rune{0, maxRune})
	case syntax.OpCapture:
		return size(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return size(re.Sub[0]) + 2 // a star of a nullable x is (x+)?
	case syntax.OpRepeat:
		copies := re.Max
		if copies < 0 { // x{n,} is n-1 copies and x+
			copies = re.Min + 1
		}
		return copies*(size(re.Sub[0])+1) + 2
	case syntax.OpConcat, syntax.OpAlternate:
		n := 0
		if re.Op == syntax.OpAlternate {
			n = len(re.Sub) - 1 // an alternation per branch after the first
		}
		for _, s := range re.Sub {
			n += size(s)
		}
		return n
	}
	return 1 // empty-width assertions, empty match, no match
}

// classSize counts a class of [lo, hi] pairs as RE2 compiles it in UTF-8
// mode: each range split into byte sequences of one length that agree on
// their leading bytes, an instruction per byte, an alternation per
// sequence after the first.
func classSize(ranges []rune) int {
	n, seqs := 0, 0
	for i := 0; i+1 < len(ranges); i += 2 {
		utf8Sequences(ranges[i], ranges[i+1], func(bytes int) {
			n += bytes
			seqs++
		})
	}
	if seqs == 0 {
		return 1 // matches nothing
	}
	return n + seqs - 1
}

// utf8Sequences splits [lo, hi] as RE2's AddRuneRangeUTF8 does, calling
// f with the length of each sequence.
func utf8Sequences(lo, hi rune, f func(bytes int)) {
	if lo > hi {
		return
	}
	// Split into ranges whose runes encode to the same length.
	for n := 1; n < utf8.UTFMax; n++ {
		if m := maxRuneOfLen(n); lo <= m && m < hi {
			utf8Sequences(lo, m, f)
			utf8Sequences(m+1, hi, f)
			return
		}
	}
	if hi < utf8.RuneSelf {
		f(1)
		return
	}
	// Split into sections that agree on their leading bytes.
	for i := 1; i < utf8.UTFMax; i++ {
		m := rune(1)<<(6*i) - 1 // the bits of the last i bytes of a sequence
		if lo&^m != hi&^m {
			if lo&m != 0 {
				utf8Sequences(lo, lo|m, f)
				utf8Sequences((lo|m)+1, hi, f)
				return
			}
			if hi&m != m {
				utf8Sequences(lo, (hi&^m)-1, f)
				utf8Sequences(hi&^m, hi, f)
				return
			}
		}
	}
	f(utf8.RuneLen(lo))
}

// maxRuneOfLen is the largest rune UTF-8 encodes in n bytes (n < 4).
func maxRuneOfLen(n int) rune {
	if n == 1 {
		return utf8.RuneSelf - 1
	}
	bits := 8 - (n + 1) + 6*(n-1)
	return rune(1)<<bits - 1
}
