package wire

import (
	"net/http"
	"unicode/utf8"

	"github.com/meterd/meterd/engine/fault"
)

// shape is what a body may hold: one object, an array of objects, or
// either (then an array's errors carry the element's index, an object's
// none).
type shape int

const (
	oneObject      shape = 1 << iota // CloudEvents' structured mode
	arrayOfObjects                   // CloudEvents' batch mode
	objectOrArray  = oneObject | arrayOfObjects
)

// decodeElements reads a body holding one JSON object or an array of
// objects, as shape allows, calling fn with the scanner positioned on each
// object; fn must consume it. Invalid UTF-8 is reported with the element
// it is in, more than max elements as batch_too_large. A body that is not
// JSON is invalid_json, with line, column and byte offset, whatever else
// is wrong with it.
func decodeElements(body []byte, sh shape, max int, fn func(s *scanner) *fault.Error) *fault.Error {
	if !utf8.Valid(body) {
		return invalidUTF8(body)
	}
	s := &scanner{b: body, src: string(body)}
	err := s.elements(sh, max, fn)
	if err != nil && err.Code != CodeInvalidJSON {
		if serr := SyntaxError(body); serr != nil {
			return serr // found past the first problem, or the cause of it
		}
	}
	return err
}

func (s *scanner) elements(sh shape, max int, fn func(s *scanner) *fault.Error) *fault.Error {
	switch c := s.peek(); {
	case s.i == len(s.b):
		return badRequest(CodeInvalidJSON, "", nil, "request body is empty")
	case c == '{' && sh&oneObject != 0:
		if err := fn(s); err != nil {
			return err
		}
	case c == '[' && sh&arrayOfObjects != 0:
		err := s.array(func(i int) *fault.Error {
			if i >= max {
				return newError(http.StatusRequestEntityTooLarge, CodeBatchTooLarge, "", intp(i),
					"a batch holds at most %d elements; split it", max)
			}
			s.index = intp(i)
			if s.peek() != '{' {
				return badRequest(CodeInvalidType, "", s.index, "expected a JSON object, got %s", s.kind())
			}
			if err := fn(s); err != nil {
				return err
			}
			s.index = nil // a bad separator after it is not its fault
			return nil
		})
		if err != nil {
			return err
		}
	default:
		want := map[shape]string{oneObject: "a JSON object", arrayOfObjects: "a JSON array of objects",
			objectOrArray: "a JSON object or an array of them"}[sh]
		return badRequest(CodeInvalidType, "", nil, "expected %s, got %s", want, s.kind())
	}
	return s.end()
}

// end checks that nothing but white space follows the value read (peek
// cannot tell a NUL byte from the end).
func (s *scanner) end() *fault.Error {
	if s.ws(); s.i < len(s.b) {
		return s.syntaxErr(s.i, "unexpected data after the JSON value")
	}
	return nil
}

// SyntaxError is the first JSON syntax error of body (with the index of
// the top-level array element holding it, if any), or nil when body is
// one JSON value.
func SyntaxError(body []byte) *fault.Error {
	s := &scanner{b: body}
	var err *fault.Error
	if s.peek() == '[' {
		err = s.array(func(i int) *fault.Error {
			s.index = intp(i)
			if err := s.skipValue(1); err != nil {
				return err
			}
			s.index = nil
			return nil
		})
	} else {
		err = s.skipValue(0)
	}
	if err != nil {
		return err
	}
	return s.end()
}

func intp(i int) *int { return &i }

func kindOf(b []byte) string {
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a number"
	}
	return "invalid JSON"
}

func lineCol(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// invalidUTF8 names the batch element holding the first invalid byte.
func invalidUTF8(body []byte) *fault.Error {
	off := 0
	for off < len(body) {
		r, n := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	var index *int
	if (&scanner{b: body}).peek() == '[' {
		// Count the top-level elements that start before the bad byte.
		depth, inStr, esc, i := 0, false, false, -1
		for _, c := range body[:off] {
			switch {
			case inStr && esc:
				esc = false
			case inStr && c == '\\':
				esc = true
			case c == '"':
				inStr = !inStr
			case inStr:
			case c == '[' || c == '{':
				if depth == 1 {
					i++
				}
				depth++
			case c == ']' || c == '}':
				depth--
			}
		}
		if i >= 0 {
			index = intp(i)
		}
	}
	line, col := lineCol(body, int64(off))
	return badRequest(CodeInvalidUTF8, "", index, "the body is not valid UTF-8 (byte %d, line %d, column %d)", off, line, col)
}
