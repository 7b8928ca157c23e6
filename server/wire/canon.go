package wire

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	"github.com/meterd/meterd/engine/fault"
)

// appendCanonical appends a canonical encoding of a JSON value already
// validated by the scanner: object members sorted by key, strings decoded,
// numbers normalised (1, 1.0 and 1e0 are one number), whitespace dropped.
// Every value is tagged and length-prefixed, so the encoding is
// unambiguous. Content ids hash it: a batch re-serialised with other key
// order, spacing or escaping gets the same ids.
func appendCanonical(dst []byte, s *scanner) []byte {
	return s.canonical(dst)
}

func (s *scanner) canonical(dst []byte) []byte {
	switch c := s.peek(); c {
	case '{':
		dst = append(dst, '{')
		type member struct {
			key        string
			start, end int
		}
		var arr [16]member
		ms := arr[:0]
		_ = s.object(func(key []byte) *fault.Error {
			start := len(dst)
			k := s.text(key) // no copy unless escaped
			dst = appendString(dst, k)
			dst = s.canonical(dst)
			ms = append(ms, member{k, start, len(dst)})
			return nil
		})
		if len(ms) > 1 && !slices.IsSortedFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) }) {
			base := ms[0].start
			tmp := append([]byte(nil), dst[base:]...)
			slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
			dst = dst[:base]
			for _, m := range ms {
				dst = append(dst, tmp[m.start-base:m.end-base]...)
			}
		}
		return append(dst, '}')
	case '[':
		dst = append(dst, '[')
		_ = s.array(func(int) *fault.Error { dst = s.canonical(dst); return nil })
		return append(dst, ']')
	case '"':
		v, _ := s.strView()
		dst = binary.AppendUvarint(append(dst, 's'), uint64(len(v)))
		return append(dst, v...)
	case 't':
		s.i += 4
		return append(dst, 't')
	case 'f':
		s.i += 5
		return append(dst, 'f')
	case 'n':
		s.i += 4
		return append(dst, 'z')
	}
	raw, _ := s.number()
	text := string(raw)
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		text = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return appendString(append(dst, 'n'), text)
}

// appendString appends a length-prefixed string.
func appendString(dst []byte, v string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}
