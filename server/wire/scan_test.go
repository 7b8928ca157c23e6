package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/meterd/meterd/storage"
)

// scanValid reports whether the scanner accepts data as exactly one JSON
// value.
func scanValid(data []byte) bool {
	s := &scanner{b: data}
	if _, err := s.skip(); err != nil {
		return false
	}
	return s.peek() == 0 && s.i == len(data)
}

var jsonSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e+10`, `1E-2`, `true`, `false`, `null`,
	`{"a":[1,{"b":null}],"c":"\u00e9\n\"\\\/"}`, ` [ 1 , 2 ] `, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800x"`,
	// invalid
	``, ` `, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `01`, `-`, `1.`, `.5`, `+1`, `1e`, `1e+`, `[1 2]`,
	`"a`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\tb\"", `tru`, `nul`, `nulls`, `{"a":1}}`, `[`, `]`, `{"a":1 "b":2}`,
	`NaN`, `Infinity`, `'a'`, `[1,,2]`, `{,}`, `"\`, "\"\x00\"", `[-01]`, `[1.e5]`, `{"a":}`,
}

func TestScannerAcceptsWhatJSONValidAccepts(t *testing.T) {
	for _, in := range jsonSeeds {
		if got, want := scanValid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("%q: scanner accepts %v, json.Valid %v", in, got, want)
		}
	}
	deep := strings.Repeat("[", maxDepth+5) + strings.Repeat("]", maxDepth+5)
	if scanValid([]byte(deep)) {
		t.Error("nesting beyond maxDepth accepted")
	}
}

func FuzzScanner(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := scanValid(data), json.Valid(data); got != want {
			t.Fatalf("%q: scanner accepts %v, json.Valid %v", data, got, want)
		}
		if len(data) > 0 && data[0] == '"' && json.Valid(data) {
			var want string
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			got, err := (&scanner{b: data}).str()
			if err != nil || (utf8.Valid(data) && got != want) {
				t.Fatalf("%q: scanner reads %q (%v), encoding/json %q", data, got, err, want)
			}
		}
	})
}

var objectSeeds = []string{
	`{}`, `{"b":{"c":"x","d":[1,2]},"a":1.5,"e":null,"f":true,"g":"ü"}`,
	`{"a":1,"a":{"x":2},"a":"last"}`, `{"o":{"k":1},"o":{"j":2}}`,
	`{"n":1e21,"m":1.0,"p":-0,"q":0.000001,"r":1e-7,"big":123456789012345678901234567890}`,
	`{"html":"<a&b>","arr":["<",{"z":1,"a":"\u2028"}],"nested":{"deep":{"deeper":{"k":[]}}}}`,
	`{"esc\"key":"\ud83d\ude00","lone":"\ud800","k.dot":{"x":false}}`,
	`{"inf":1e999}`, `{"a":[1e999]}`,
}

func TestFlattenMatchesStorageFlattenJSON(t *testing.T) {
	for _, in := range objectSeeds {
		checkFlatten(t, []byte(in))
	}
}

func FuzzFlatten(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) || !json.Valid(data) || !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
			return
		}
		checkFlatten(t, data)
	})
}

func TestFlattenRefusesDeepNesting(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
	}
	if _, err := flattenObject(&scanner{b: deep(MaxObjectDepth)}); err != nil {
		t.Fatalf("%d levels: %v", MaxObjectDepth, err)
	}
	if _, err := flattenObject(&scanner{b: deep(MaxObjectDepth + 1)}); err == nil || !strings.Contains(err.Error(), "levels deep") {
		t.Fatalf("%d levels: %v", MaxObjectDepth+1, err)
	}
}

func checkFlatten(t *testing.T, data []byte) {
	t.Helper()
	if strings.Count(string(data), "{") > MaxObjectDepth {
		return // may be refused, by design (TestFlattenRefusesDeepNesting)
	}
	want, werr := storage.FlattenJSON(string(data))
	s := &scanner{b: data, src: string(data)}
	got, gerr := flattenObject(s)
	var le *limitError
	if errors.As(gerr, &le) {
		return // past a cap, by design (TestFlattenCaps)
	}
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s: error %v, FlattenJSON's %v", data, gerr, werr)
	}
	if werr != nil {
		return
	}
	norm := func(a storage.Attrs) storage.Attrs {
		if len(a.Keys) == 0 {
			return storage.Attrs{}
		}
		return a
	}
	if !reflect.DeepEqual(norm(got), norm(want)) {
		t.Fatalf("%s:\n got %+v\nwant %+v", data, got, want)
	}
}
