package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"
)

// decodeElements decodes each element of a JSON array body (or the one
// object when single is true) with decode, straight from the stream (one
// pass per element), and hands it to fn. It reports syntax errors with
// their line and column, invalid UTF-8 with the element it is in, and more
// than max elements as batch_too_large.
func decodeElements[T any](body []byte, single bool, max int, fn func(v *T, index *int) *Error) *Error {
	if !utf8.Valid(body) {
		return invalidUTF8(body, single)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return badRequest(CodeInvalidJSON, "", nil, "request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if single {
		if trimmed[0] != '{' {
			return badRequest(CodeInvalidType, "", nil, "expected a JSON object, got %s", kindOf(trimmed))
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return elementError(body, err, nil)
		}
		if _, err := dec.Token(); err != io.EOF {
			return badRequest(CodeInvalidJSON, "", nil, "unexpected data after the JSON object (at byte %d)", dec.InputOffset())
		}
		return fn(&v, nil)
	}
	if trimmed[0] != '[' {
		return badRequest(CodeInvalidType, "", nil, "expected a JSON array of events, got %s", kindOf(trimmed))
	}
	if _, err := dec.Token(); err != nil {
		return syntaxError(body, err)
	}
	for i := 0; dec.More(); i++ {
		if i >= max {
			return newError(http.StatusRequestEntityTooLarge, CodeBatchTooLarge, "", intp(i),
				"a batch holds at most %d events; split it", max)
		}
		if b := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n,"); len(b) > 0 && b[0] != '{' {
			return badRequest(CodeInvalidType, "", intp(i), "expected an object, got %s", kindOf(b))
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return elementError(body, err, intp(i))
		}
		if e := fn(&v, intp(i)); e != nil {
			return e
		}
	}
	if _, err := dec.Token(); err != nil {
		return syntaxError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest(CodeInvalidJSON, "", nil, "unexpected data after the JSON array (at byte %d)", dec.InputOffset())
	}
	return nil
}

// elementError explains why an element did not decode: malformed JSON, or
// a field of the wrong type.
func elementError(body []byte, err error, index *int) *Error {
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return syntaxError(body, err)
	}
	return typeError(err, index)
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
	}
	return "a number or invalid JSON"
}

// syntaxError turns a decoder error into invalid_json with a position.
func syntaxError(body []byte, err error) *Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(body, se.Offset)
		return badRequest(CodeInvalidJSON, "", nil, "malformed JSON at line %d, column %d (byte %d): %v", line, col, se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return badRequest(CodeInvalidJSON, "", nil, "malformed JSON: the body ends before the JSON value does")
	}
	return badRequest(CodeInvalidJSON, "", nil, "malformed JSON: %v", err)
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
