package wire

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/meterd/meterd/engine/fault"
)

// scanner is a strict, single-pass JSON reader over a whole request body.
// The decoders walk it field by field straight into storage types, so a
// batch is parsed once (encoding/json would validate, then decode, then
// decode nested raw values again). It accepts exactly what json.Valid
// accepts (a fuzz test holds it to that); UTF-8 is checked before, on the
// whole body. Errors carry absolute byte offsets.
//
// When src holds a string copy of b, the strings it returns are slices of
// it: a batch's strings then cost one allocation instead of one each (they
// keep the body's copy alive while any of them lives, and events live
// only until they are committed).
type scanner struct {
	b     []byte
	src   string // "" or string(b)
	i     int
	index *int   // batch element being read, for errors
	buf   []byte // scratch for strings with escapes
}

// text returns raw as a string: a slice of src when raw is a slice of s.b
// (and there is a src), else a copy.
func (s *scanner) text(raw []byte) string {
	if off, ok := s.offset(raw); ok {
		return s.src[off : off+len(raw)]
	}
	return string(raw)
}

// offset is where raw starts in s.b, when it is a slice of it.
func (s *scanner) offset(raw []byte) (int, bool) {
	off := cap(s.b) - cap(raw) // raw = s.b[off:...] if it is a slice of s.b
	ok := s.src != "" && len(raw) > 0 && off >= 0 && off+len(raw) <= len(s.b) && &s.b[off] == &raw[0]
	return off, ok
}

// at returns a scanner over raw (a value inside s.b), sharing src.
func (s *scanner) at(raw []byte) scanner {
	sub := scanner{b: raw, index: s.index}
	if off, ok := s.offset(raw); ok {
		sub.src = s.src[off : off+len(raw)]
	}
	return sub
}

// syntaxErr is a malformed-JSON error at byte off of the body.
func (s *scanner) syntaxErr(off int, format string, args ...any) *fault.Error {
	return malformed(s.b, s.index, int64(off), fmt.Sprintf(format, args...))
}

func (s *scanner) unexpected() *fault.Error {
	if s.i >= len(s.b) {
		return s.syntaxErr(s.i, "the body ends before the JSON value does")
	}
	return s.syntaxErr(s.i, "unexpected %s", describe(s.b[s.i]))
}

func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) literal(lit string) *fault.Error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.unexpected()
	}
	s.i += len(lit)
	return nil
}

// object reads an object, calling fn with each key; fn must consume the
// value (s.skip when it does not care). The key's bytes are only valid
// during the call (string(key) to keep it): reading a key costs nothing.
func (s *scanner) object(fn func(key []byte) *fault.Error) *fault.Error {
	if s.peek() != '{' {
		return s.unexpected()
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.unexpected()
		}
		key, err := s.strView()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.unexpected()
		}
		s.i++
		s.ws()
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.unexpected()
		}
	}
}

// array reads an array, calling fn for each element; fn must consume it.
func (s *scanner) array(fn func(i int) *fault.Error) *fault.Error {
	if s.peek() != '[' {
		return s.unexpected()
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		s.ws()
		if err := fn(n); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.unexpected()
		}
	}
}

// str reads a string.
func (s *scanner) str() (string, *fault.Error) {
	raw, esc, err := s.strBytes()
	if err != nil {
		return "", err
	}
	if !esc {
		return s.text(raw), nil
	}
	s.buf = unescape(s.buf[:0], raw)
	return string(s.buf), nil
}

// strView reads a string and returns its decoded bytes, which are only
// valid until the next read.
func (s *scanner) strView() ([]byte, *fault.Error) {
	raw, esc, err := s.strBytes()
	if err != nil || !esc {
		return raw, err
	}
	s.buf = unescape(s.buf[:0], raw)
	return s.buf, nil
}

// strBytes reads a string and returns its raw content (between the
// quotes) and whether it holds escapes.
func (s *scanner) strBytes() (raw []byte, escaped bool, err *fault.Error) {
	if s.peek() != '"' {
		return nil, false, s.unexpected()
	}
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		c := s.b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return s.b[start:i], escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(s.b) {
				break
			}
			switch s.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for k := 1; k <= 4; k++ {
					if i+k >= len(s.b) || !isHex(s.b[i+k]) {
						return nil, false, s.syntaxErr(i-1, "invalid \\u escape in a string")
					}
				}
				i += 4
			default:
				return nil, false, s.syntaxErr(i-1, "invalid escape \\%c in a string", s.b[i])
			}
		case c < 0x20:
			return nil, false, s.syntaxErr(i, "control character %s in a string (escape it)", describe(c))
		}
	}
	s.i = len(s.b)
	return nil, false, s.syntaxErr(len(s.b), "the body ends inside a string")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unescape decodes a validated string's escapes as encoding/json does: a
// lone UTF-16 surrogate becomes U+FFFD (JSON's grammar allows it; it is
// not invalid UTF-8 in the body).
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(raw[i+3:])); r2 != utf8.RuneError {
						dst = utf8.AppendRune(dst, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, raw[i])
		}
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// number reads a number and returns its text.
func (s *scanner) number() ([]byte, *fault.Error) {
	start := s.i
	i := s.i
	if i < len(s.b) && s.b[i] == '-' {
		i++
	}
	switch {
	case i < len(s.b) && s.b[i] == '0':
		i++
	case i < len(s.b) && s.b[i] >= '1' && s.b[i] <= '9':
		for i < len(s.b) && isDigit(s.b[i]) {
			i++
		}
	default:
		s.i = i
		return nil, s.unexpected()
	}
	if i < len(s.b) && s.b[i] == '.' {
		i++
		if i >= len(s.b) || !isDigit(s.b[i]) {
			s.i = i
			return nil, s.unexpected()
		}
		for i < len(s.b) && isDigit(s.b[i]) {
			i++
		}
	}
	if i < len(s.b) && (s.b[i] == 'e' || s.b[i] == 'E') {
		i++
		if i < len(s.b) && (s.b[i] == '+' || s.b[i] == '-') {
			i++
		}
		if i >= len(s.b) || !isDigit(s.b[i]) {
			s.i = i
			return nil, s.unexpected()
		}
		for i < len(s.b) && isDigit(s.b[i]) {
			i++
		}
	}
	s.i = i
	return s.b[start:i], nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// maxDepth bounds nesting (encoding/json allows 10000) so a hostile body
// cannot exhaust the stack.
const maxDepth = 10000

// skip validates and consumes any value, returning its raw text.
func (s *scanner) skip() ([]byte, *fault.Error) {
	s.ws()
	start := s.i
	err := s.skipValue(0)
	return s.b[start:s.i], err
}

func (s *scanner) skipValue(depth int) *fault.Error {
	if depth > maxDepth {
		return s.syntaxErr(s.i, "nested more than %d levels deep", maxDepth)
	}
	switch s.peek() {
	case '{':
		return s.object(func([]byte) *fault.Error { return s.skipValue(depth + 1) })
	case '[':
		return s.array(func(int) *fault.Error { return s.skipValue(depth + 1) })
	case '"':
		_, _, err := s.strBytes()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	_, err := s.number()
	return err
}

// kind names the JSON type of the next value, for type errors.
func (s *scanner) kind() string {
	c := s.peek()
	if c == 0 {
		return "nothing"
	}
	return kindOf([]byte{c})
}
