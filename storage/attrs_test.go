package storage

import (
	"reflect"
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
	if a.Nums[0] != 1.5 || a.Strs[0] != "1.5" || a.Strs[1] != `{"c":"x","d":[1,2]}` || a.Strs[3] != "[1,2]" || a.Nums[5] != 1 || a.Strs[6] != "ü" {
		t.Fatalf("values %q %v", a.Strs, a.Nums)
	}
	if _, err := FlattenJSON(`[1]`); err == nil {
		t.Fatal("array accepted as object")
	}
	p := a.Prefixed("user")
	if p.Keys[2] != "user.b.c" || a.Keys[2] != "b.c" {
		t.Fatalf("prefixed %v (orig %v)", p.Keys, a.Keys)
	}
}
