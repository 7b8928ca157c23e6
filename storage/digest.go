package storage

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"regexp"
	"strings"
	"unsafe"
)

// ObjectDigest builds what Attrs stores for a nested object in place of
// its JSON text: a hash of its members, each nested object counted by its
// own digest. Storing the text instead stored every level's subtree again
// (depth x size); the digest keeps the flattened form linear in the input
// while equal objects still have equal stored values (the meter engine's
// SQL compares objects by it). Two objects get the same digest exactly
// when expr's == finds them equal: same keys, same types, equal values
// (-0 equals 0, arrays by their elements).
//
// The zero value is ready to use; Reset starts another object.
type ObjectDigest struct {
	h   hash.Hash
	buf []byte
}

// Reset starts a new object.
func (d *ObjectDigest) Reset() {
	if d.h != nil {
		d.h.Reset()
	}
}

// Add adds one member, in key order, as Attrs holds it: its type code and
// stored text (for a nested object, that object's digest).
func (d *ObjectDigest) Add(key string, t uint8, str string) {
	if d.h == nil {
		d.h = sha256.New()
	}
	switch t {
	case TypeNumber:
		if str == "-0" {
			str = "0"
		}
	case TypeArray:
		str = zeroSign(str)
	}
	d.buf = binary.AppendUvarint(d.buf[:0], uint64(len(key)))
	d.buf = append(d.buf, t)
	d.buf = binary.AppendUvarint(d.buf, uint64(len(str)))
	d.h.Write(d.buf)
	d.h.Write(bytesOf(key))
	d.h.Write(bytesOf(str))
}

// bytesOf views s as bytes without copying (a string value can be a whole
// request body); hash writes only read their input.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Sum is the digest's text: 22 characters of base64url (128 bits), never
// starting with "{" as the JSON text that older versions stored does.
func (d *ObjectDigest) Sum() string {
	if d.h == nil {
		d.h = sha256.New()
	}
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(d.h.Sum(sum[:0])[:16])
}

// NegZeroPattern matches, in a compact JSON text, a string or a -0
// followed by its delimiter: replacing every match with its groups
// ("$1$2", SQL's \1\2) drops the sign of -0, the only spelling
// encoding/json gives two equal values. The meter engine's SQL does the
// same before comparing arrays.
const NegZeroPattern = `("(?:\\.|[^"\\])*")|-(0[,\]}])`

var negZero = regexp.MustCompile(NegZeroPattern)

func zeroSign(text string) string {
	if !strings.Contains(text, "-0") {
		return text
	}
	return negZero.ReplaceAllString(text, "$1$2")
}
