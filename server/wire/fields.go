package wire

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/meterd/meterd/engine/fault"
)

// Typed field readers. null is accepted for every field and means absent
// (as encoding/json leaves the zero value); any other type mismatch is an
// invalid_type error naming the field's JSON path.

func (s *scanner) typeErr(field, want string) *fault.Error {
	return badRequest(CodeInvalidType, field, s.index, "%s must be %s, got %s", field, want, s.kind())
}

func (s *scanner) strField(dst *string, field string) *fault.Error {
	switch s.peek() {
	case '"':
		v, err := s.str()
		*dst = v
		return err
	case 'n':
		return s.literal("null")
	}
	return s.typeErr(field, "a string")
}

// intField reads an integer of the given bit size; ok is false for null.
func (s *scanner) intField(field string, bits int) (v int64, ok bool, err *fault.Error) {
	switch c := s.peek(); {
	case c == 'n':
		return 0, false, s.literal("null")
	case c == '-' || isDigit(c):
		raw, err := s.number()
		if err != nil {
			return 0, false, err
		}
		v, perr := strconv.ParseInt(string(raw), 10, bits)
		if perr != nil {
			return 0, false, badRequest(CodeInvalidType, field, s.index, "%s must be an integer (%d-bit), got %s", field, bits, raw)
		}
		return v, true, nil
	}
	return 0, false, s.typeErr(field, "an integer")
}

// objectStart checks that an object (or null: ok false) comes next.
func (s *scanner) objectStart(field string) (ok bool, err *fault.Error) {
	switch s.peek() {
	case '{':
		return true, nil
	case 'n':
		return false, s.literal("null")
	}
	return false, s.typeErr(field, "an object")
}

// fold lower-cases a key that has upper-case ASCII: field names match
// case-insensitively, as with encoding/json.
func fold(key []byte) []byte {
	for i := 0; i < len(key); i++ {
		if 'A' <= key[i] && key[i] <= 'Z' {
			return bytes.ToLower(key)
		}
	}
	return key
}

// headers reads a header map: values may be strings, numbers or booleans
// (kept as their JSON text), null (empty) or arrays of those (joined with
// ", ", as HTTP folds repeated headers). Keys are lower-cased.
func (s *scanner) headers(field string) (Headers, *fault.Error) {
	if ok, err := s.objectStart(field); !ok {
		return nil, err
	}
	h := make(Headers, 8)
	err := s.object(func(key []byte) *fault.Error {
		k := s.text(fold(key))
		v, err := s.headerValue(field+"."+k, true)
		h[k] = v
		return err
	})
	return h, err
}

func (s *scanner) headerValue(field string, arrayOK bool) (string, *fault.Error) {
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == 'n':
		return "", s.literal("null")
	case c == 't':
		return "true", s.literal("true")
	case c == 'f':
		return "false", s.literal("false")
	case c == '-' || isDigit(c):
		raw, err := s.number()
		return string(raw), err
	case c == '[' && arrayOK:
		var parts []string
		err := s.array(func(int) *fault.Error {
			v, err := s.headerValue(field, false)
			parts = append(parts, v)
			return err
		})
		return strings.Join(parts, ", "), err
	}
	return "", s.typeErr(field, "a string")
}
