package wire

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/meterd/meterd/storage"
)

// flattenObject is storage.FlattenJSON for an object the scanner already
// validated, without building the map of maps: about half the cost of
// decoding an event went there. It gives exactly what FlattenJSON gives (a
// fuzz test compares them): keys sorted per level, a repeated key keeps its
// last value, arrays and nested objects as encoding/json re-marshals them.
func flattenObject(s *scanner) (storage.Attrs, error) {
	var a storage.Attrs
	err := s.flatten(&a, "", 1)
	return a, err
}

// MaxObjectDepth bounds how deep metadata (and CloudEvents data, profile
// metadata) may nest objects. Each nested object is also stored whole, as
// text, under its path, so flattening costs depth x size: unbounded, a
// 100 KB event could flatten into gigabytes.
const MaxObjectDepth = 32

type flatMember struct {
	key string
	raw []byte
}

func (s *scanner) flatten(a *storage.Attrs, prefix string, depth int) error {
	if depth > MaxObjectDepth {
		return fmt.Errorf("objects nest more than %d levels deep (at %s)", MaxObjectDepth, prefix)
	}
	var arr [16]flatMember
	ms := arr[:0]
	if err := s.object(func(key []byte) *Error {
		raw, err := s.skip()
		ms = append(ms, flatMember{s.text(key), raw})
		return err
	}); err != nil {
		return err
	}
	// Stable: of a repeated key, the last one stays last and wins.
	slices.SortStableFunc(ms, func(x, y flatMember) int { return strings.Compare(x.key, y.key) })
	if a.Keys == nil && len(ms) > 0 {
		n := len(ms) + 4
		a.Keys, a.Types, a.Strs, a.Nums = make([]string, 0, n), make([]uint8, 0, n), make([]string, 0, n), make([]float64, 0, n)
	}
	for i, m := range ms {
		if i+1 < len(ms) && ms[i+1].key == m.key {
			continue
		}
		path := m.key
		if prefix != "" {
			path = prefix + "." + m.key
		}
		var t uint8
		var str string
		var num float64
		switch m.raw[0] {
		case 'n':
			t = storage.TypeNull
		case 't':
			t, str, num = storage.TypeBool, "true", 1
		case 'f':
			t, str = storage.TypeBool, "false"
		case '"':
			sub := s.at(m.raw)
			t, str = storage.TypeString, sub.strOrEmpty()
		case '[', '{':
			var v any
			if err := json.Unmarshal(m.raw, &v); err != nil {
				return err
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			t, str = storage.TypeArray, string(b)
			if m.raw[0] == '{' {
				t = storage.TypeObject
			}
		default:
			f, err := strconv.ParseFloat(string(m.raw), 64)
			if err != nil {
				return fmt.Errorf("number %s is out of range", m.raw)
			}
			// FlattenJSON's spelling of the number; most often it is the
			// text as sent, which then costs no copy.
			var tmp [32]byte
			if canon := strconv.AppendFloat(tmp[:0], f, 'g', -1, 64); string(canon) == string(m.raw) {
				str = s.text(m.raw)
			} else {
				str = string(canon)
			}
			t, num = storage.TypeNumber, f
		}
		a.Keys, a.Types, a.Strs, a.Nums = append(a.Keys, path), append(a.Types, t), append(a.Strs, str), append(a.Nums, num)
		if t == storage.TypeObject {
			sub := s.at(m.raw)
			if err := sub.flatten(a, path, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
