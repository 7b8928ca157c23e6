package wire

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/storage"
)

// Caps on a JSON object that meterd flattens (event metadata, CloudEvents
// data, profile metadata). Flattening stores each value once, but every
// key under its full path (a.b.c) and every key with a fixed cost in each
// column: these caps keep the flattened form within a small multiple of
// the object's size (docs/api.md, "Metadata limits").
const (
	// MaxObjectDepth bounds how deep objects nest.
	MaxObjectDepth = 32
	// MaxObjectKeys bounds the flattened keys of one object, nested keys
	// included (and repeated keys, each time).
	MaxObjectKeys = 1000
	// The key paths of one object may total at most PathBytesPerByte
	// bytes per byte of its JSON text, plus PathBytesSlack: a long key
	// above a wide object repeats in every child's path.
	PathBytesPerByte = 8
	PathBytesSlack   = 1024
)

// flattenObject is storage.FlattenJSON for an object the scanner already
// validated, without building the map of maps: about half the cost of
// decoding an event went there. It gives exactly what FlattenJSON gives (a
// fuzz test compares them): keys sorted per level, a repeated key keeps its
// last value, arrays as encoding/json re-marshals them, nested objects as
// their digest and key count. It reads every value once, at its own level.
// Past the caps above it fails with a *limitError.
func flattenObject(s *scanner) (storage.Attrs, error) {
	f := flattener{maxPathBytes: PathBytesPerByte*len(s.b) + PathBytesSlack}
	_, _, err := f.object(s, "", 1)
	return f.a, err
}

// limitError is an object refused by one of the caps.
type limitError struct {
	status int
	code   string
	msg    string
}

func (e *limitError) Error() string { return e.msg }

type flattener struct {
	a            storage.Attrs
	keys         int // keys read, repeated ones included
	pathBytes    int
	maxPathBytes int
	digest       storage.ObjectDigest
	err          error // the failure that stopped the scan
}

// flatGroup is one member of an object: its entry and its nested entries,
// a[start:end].
type flatGroup struct {
	key        string
	start, end int
}

var errStop = &fault.Error{Code: "stop"} // ends a scan whose failure is in flattener.err

// object flattens the object at s under prefix and returns its digest and
// its number of keys.
func (f *flattener) object(s *scanner, prefix string, depth int) (string, int, error) {
	if depth > MaxObjectDepth {
		return "", 0, &limitError{http.StatusBadRequest, CodeInvalidValue,
			fmt.Sprintf("objects nest more than %d levels deep (at %s)", MaxObjectDepth, prefix)}
	}
	base := len(f.a.Keys)
	var arr [16]flatGroup
	gs := arr[:0]
	if err := s.object(func(key []byte) *fault.Error {
		k := s.text(key)
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		if f.err = f.count(path); f.err != nil {
			return errStop
		}
		start := len(f.a.Keys)
		if f.err = f.value(s, path, depth); f.err != nil {
			return errStop
		}
		gs = append(gs, flatGroup{k, start, len(f.a.Keys)})
		return nil
	}); err != nil {
		if f.err != nil {
			return "", 0, f.err
		}
		return "", 0, err
	}
	gs = f.sortLevel(base, gs)
	if depth == 1 {
		return "", len(gs), nil // the top level is not stored: no digest
	}
	// After the nested objects' digests: one hash state serves them all.
	f.digest.Reset()
	for _, g := range gs {
		f.digest.Add(g.key, f.a.Types[g.start], f.a.Strs[g.start])
	}
	return f.digest.Sum(), len(gs), nil
}

func (f *flattener) count(path string) error {
	f.keys++
	f.pathBytes += len(path)
	switch {
	case f.keys > MaxObjectKeys:
		return &limitError{http.StatusRequestEntityTooLarge, CodeMetadataTooLarge,
			fmt.Sprintf("more than %d keys, nested keys included (at %s)", MaxObjectKeys, path)}
	case f.pathBytes > f.maxPathBytes:
		return &limitError{http.StatusRequestEntityTooLarge, CodeMetadataTooLarge,
			fmt.Sprintf("its key paths (a.b.c) add up to more than %d bytes, %d per byte of its JSON plus %d (at %s): long keys above wide objects",
				f.maxPathBytes, PathBytesPerByte, PathBytesSlack, clipKey(path))}
	}
	return nil
}

// clipKey shortens a path for a message.
func clipKey(path string) string {
	if len(path) <= 80 {
		return path
	}
	return path[:40] + "..." + path[len(path)-37:]
}

// value appends the entry of the value at s (and, for an object, its
// nested entries).
func (f *flattener) value(s *scanner, path string, depth int) error {
	var t uint8
	var str string
	var num float64
	switch s.peek() {
	case 'n':
		s.i += 4
		t = storage.TypeNull
	case 't':
		s.i += 4
		t, str, num = storage.TypeBool, "true", 1
	case 'f':
		s.i += 5
		t, str = storage.TypeBool, "false"
	case '"':
		v, err := s.str()
		if err != nil {
			return err
		}
		t, str = storage.TypeString, v
	case '{':
		i := len(f.a.Keys)
		f.append(path, storage.TypeObject, "", 0)
		digest, n, err := f.object(s, path, depth+1)
		if err != nil {
			return err
		}
		f.a.Strs[i], f.a.Nums[i] = digest, float64(n)
		return nil
	case '[':
		raw, serr := s.skip()
		if serr != nil {
			return serr
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		t, str = storage.TypeArray, string(b)
	default:
		raw, err := s.number()
		if err != nil {
			return err
		}
		v, perr := strconv.ParseFloat(string(raw), 64)
		if perr != nil {
			return fmt.Errorf("number %s is out of range", raw)
		}
		// FlattenJSON's spelling of the number; most often it is the text
		// as sent, which then costs no copy.
		var tmp [32]byte
		if canon := strconv.AppendFloat(tmp[:0], v, 'g', -1, 64); string(canon) == string(raw) {
			str = s.text(raw)
		} else {
			str = string(canon)
		}
		t, num = storage.TypeNumber, v
	}
	f.append(path, t, str, num)
	return nil
}

func (f *flattener) append(path string, t uint8, str string, num float64) {
	a := &f.a
	if a.Keys == nil {
		const n = 8
		a.Keys, a.Types, a.Strs, a.Nums = make([]string, 0, n), make([]uint8, 0, n), make([]string, 0, n), make([]float64, 0, n)
	}
	a.Keys, a.Types, a.Strs, a.Nums = append(a.Keys, path), append(a.Types, t), append(a.Strs, str), append(a.Nums, num)
}

// sortLevel puts one object's members, read into a[base:] in the order
// sent, in key order, keeping only the last of a repeated key (as
// encoding/json does), each member followed by its nested entries. It
// returns the kept members at their new positions.
func (f *flattener) sortLevel(base int, gs []flatGroup) []flatGroup {
	sorted := slices.IsSortedFunc(gs, func(x, y flatGroup) int { return strings.Compare(x.key, y.key) })
	unique := true
	for i := 1; sorted && i < len(gs); i++ {
		unique = unique && gs[i].key != gs[i-1].key
	}
	if sorted && unique {
		return gs // the usual case: nothing moves
	}
	// Stable: of a repeated key, the last one stays last and wins.
	slices.SortStableFunc(gs, func(x, y flatGroup) int { return strings.Compare(x.key, y.key) })
	kept := gs[:0]
	for i, g := range gs {
		if i+1 < len(gs) && gs[i+1].key == g.key {
			continue
		}
		kept = append(kept, g)
	}
	a := &f.a
	type entry struct {
		key, str string
		t        uint8
		num      float64
	}
	var arr [16]entry // most objects: no allocation
	old := arr[:0]
	for i := base; i < len(a.Keys); i++ {
		old = append(old, entry{a.Keys[i], a.Strs[i], a.Types[i], a.Nums[i]})
	}
	a.Keys, a.Types, a.Strs, a.Nums = a.Keys[:base], a.Types[:base], a.Strs[:base], a.Nums[:base]
	for i, g := range kept {
		start := len(a.Keys)
		for _, e := range old[g.start-base : g.end-base] {
			a.Keys, a.Types, a.Strs, a.Nums = append(a.Keys, e.key), append(a.Types, e.t), append(a.Strs, e.str), append(a.Nums, e.num)
		}
		kept[i].start, kept[i].end = start, len(a.Keys)
	}
	return kept
}
