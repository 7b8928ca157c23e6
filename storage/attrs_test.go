package storage

import (
	"reflect"
	"strings"
	"testing"
)

func TestFlattenJSON(t *testing.T) {
	a, err := FlattenJSON(`{"b":{"c":"x","d":[1,2]},"a":1.5,"e":null,"f":true,"g":"ü"}`)
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"a", "b", "b.c", "b.d", "e", "f", "g"}
	if !reflect.DeepEqual(a.Keys, wantKeys) {
		t.Fatalf("keys %v, want %v", a.Keys, wantKeys)
	}
	wantTypes := []uint8{TypeNumber, TypeObject, TypeString, TypeArray, TypeNull, TypeBool, TypeString}
	if !reflect.DeepEqual(a.Types, wantTypes) {
		t.Fatalf("types %v, want %v", a.Types, wantTypes)
	}
	if a.Nums[0] != 1.5 || a.Strs[0] != "1.5" || a.Strs[3] != "[1,2]" || a.Nums[5] != 1 || a.Strs[6] != "ü" {
		t.Fatalf("values %q %v", a.Strs, a.Nums)
	}
	// The object: its digest and key count, not its text again.
	if len(a.Strs[1]) != 22 || a.Nums[1] != 2 {
		t.Fatalf("object b stored as %q, %v", a.Strs[1], a.Nums[1])
	}
	if _, err := FlattenJSON(`[1]`); err == nil {
		t.Fatal("array accepted as object")
	}
	p := a.Prefixed("user")
	if p.Keys[2] != "user.b.c" || a.Keys[2] != "b.c" {
		t.Fatalf("prefixed %v (orig %v)", p.Keys, a.Keys)
	}
}

// Objects that expr's == finds equal get the same digest, others not.
func TestObjectDigestIsEquality(t *testing.T) {
	digest := func(obj string) string {
		t.Helper()
		a, err := FlattenJSON(`{"o":` + obj + `}`)
		if err != nil {
			t.Fatal(err)
		}
		return a.Strs[0]
	}
	same := [][2]string{
		{`{"a":1,"b":{"c":[1,"x"]}}`, `{"b":{"c":[1.0,"x"]},"a":1e0}`},
		{`{"z":-0,"l":[-0,{"m":-0}]}`, `{"z":0,"l":[0,{"m":0}]}`},
		{`{"s":"-0"}`, `{"s":"-0"}`},
		{`{}`, `{}`},
	}
	for _, p := range same {
		if digest(p[0]) != digest(p[1]) {
			t.Errorf("%s and %s: different digests", p[0], p[1])
		}
	}
	differ := [][2]string{
		{`{"a":1}`, `{"a":"1"}`},
		{`{"a":true}`, `{"a":"true"}`},
		{`{"a":null}`, `{"a":""}`},
		{`{"a":[1]}`, `{"a":"[1]"}`},
		{`{"a":{}}`, `{"a":[]}`},
		{`{"s":"-0"}`, `{"s":"0"}`},
		{`{"l":["-0"]}`, `{"l":["0"]}`},
		{`{"ab":"c"}`, `{"a":"bc"}`},
		{`{"a":1}`, `{"a":1,"b":null}`},
		{`{"a":{"b":1}}`, `{"a":{"b":2}}`},
		{`{}`, `{"":null}`},
	}
	for _, p := range differ {
		if digest(p[0]) == digest(p[1]) {
			t.Errorf("%s and %s: same digest", p[0], p[1])
		}
	}
}

// Flattening stores each value once: 32 nested objects around a 15 MB
// string used to store the string at every level (about 480 MB).
func TestFlattenIsLinear(t *testing.T) {
	const depth, size = 32, 15 << 20
	text := strings.Repeat(`{"a":`, depth) + `"` + strings.Repeat("x", size) + `"` + strings.Repeat("}", depth)
	a, err := FlattenJSON(text)
	if err != nil {
		t.Fatal(err)
	}
	if n := flatBytes(a); n > len(text)+4096 {
		t.Fatalf("flattened %d bytes from %d", n, len(text))
	}
}

// flatBytes is what Attrs stores: keys, values and the fixed-size columns.
func flatBytes(a Attrs) int {
	n := 0
	for i := range a.Keys {
		n += len(a.Keys[i]) + len(a.Strs[i]) + 1 + 8
	}
	return n
}
