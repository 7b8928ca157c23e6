package wire

import (
	"net/http"
	"unicode/utf8"
)

// decodeElements reads a body holding one JSON object (single) or an array
// of objects, calling fn with the scanner positioned on each object; fn
// must consume it. Invalid UTF-8 is reported with the element it is in,
// more than max elements as batch_too_large, syntax errors with their line,
// column and byte offset.
func decodeElements(body []byte, single bool, max int, fn func(s *scanner) *Error) *Error {
	if !utf8.Valid(body) {
		return invalidUTF8(body, single)
	}
	s := &scanner{b: body, src: string(body)}
	switch c := s.peek(); {
	case c == 0:
		return badRequest(CodeInvalidJSON, "", nil, "request body is empty")
	case single && c != '{':
		return badRequest(CodeInvalidType, "", nil, "expected a JSON object, got %s", s.kind())
	case !single && c != '[':
		return badRequest(CodeInvalidType, "", nil, "expected a JSON array of objects, got %s", s.kind())
	}
	var err *Error
	if single {
		err = fn(s)
	} else {
		err = s.array(func(i int) *Error {
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
	}
	if err != nil {
		return err
	}
	if s.peek() != 0 {
		return s.syntaxErr(s.i, "unexpected data after the JSON value")
	}
	return nil
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
func invalidUTF8(body []byte, single bool) *Error {
	off := 0
	for off < len(body) {
		r, n := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	var index *int
	if !single {
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
