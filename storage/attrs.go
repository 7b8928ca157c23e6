package storage

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// JSON type codes stored alongside each flattened key. The meter engine's
// SQL translation reads them to reproduce expr's dynamic typing.
const (
	TypeNull   uint8 = 0
	TypeBool   uint8 = 1
	TypeNumber uint8 = 2
	TypeString uint8 = 3
	TypeArray  uint8 = 4
	TypeObject uint8 = 5
)

// TypeName is the JSON name of a type code.
func TypeName(t uint8) string {
	switch t {
	case TypeNull:
		return "null"
	case TypeBool:
		return "boolean"
	case TypeNumber:
		return "number"
	case TypeString:
		return "string"
	case TypeArray:
		return "array"
	case TypeObject:
		return "object"
	}
	return "unknown"
}

// Attrs is a JSON object flattened into parallel columns, so that both
// stores can read any key with plain array functions (ClickHouse 18.16 has
// no JSON path functions). Nested objects appear both as an object entry
// and, key by key, under "parent.child". Arrays are not descended into.
//
//	Strs: string value; number as its JSON literal; "true"/"false"; JSON text for arrays;
//	      for objects their ObjectDigest (rows stored before it hold the object's JSON text)
//	Nums: number value; 1/0 for booleans; the number of keys for objects; 0 otherwise
//
// Every value is stored once, at its own key: the whole flattened form is
// linear in the object's size.
type Attrs struct {
	Keys  []string
	Types []uint8
	Strs  []string
	Nums  []float64
}

// FlattenJSON flattens a JSON object's text ("" and "null" give no keys).
func FlattenJSON(text string) (Attrs, error) {
	var a Attrs
	if text == "" || text == "null" {
		return a, nil
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return a, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return a, fmt.Errorf("not a JSON object")
	}
	a.add("", obj, nil)
	return a, nil
}

// add appends obj's members under prefix and, given d, returns obj's
// digest (the top level is not stored and needs none).
func (a *Attrs) add(prefix string, obj map[string]any, d *ObjectDigest) string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		i := len(a.Keys)
		a.put(path, obj[k])
		if child, ok := obj[k].(map[string]any); ok {
			a.Strs[i], a.Nums[i] = a.add(path, child, new(ObjectDigest)), float64(len(child))
		}
		if d != nil {
			d.Add(k, a.Types[i], a.Strs[i])
		}
	}
	if d == nil {
		return ""
	}
	return d.Sum()
}

func (a *Attrs) put(key string, v any) {
	var t uint8
	var s string
	var n float64
	switch x := v.(type) {
	case nil:
		t = TypeNull
	case bool:
		t, s = TypeBool, strconv.FormatBool(x)
		if x {
			n = 1
		}
	case float64:
		t, s, n = TypeNumber, strconv.FormatFloat(x, 'g', -1, 64), x
	case string:
		t, s = TypeString, x
	case []any:
		t, s = TypeArray, mustJSON(x)
	case map[string]any:
		t = TypeObject // its digest and key count: see add
	}
	a.Keys = append(a.Keys, key)
	a.Types = append(a.Types, t)
	a.Strs = append(a.Strs, s)
	a.Nums = append(a.Nums, n)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for values decoded from JSON
		panic(err)
	}
	return string(b)
}

// Prefixed returns a copy of a whose keys carry prefix + "." (used to store
// user and company traits in one set of columns: "user.plan", "company.tier").
func (a Attrs) Prefixed(prefix string) Attrs {
	out := Attrs{Keys: make([]string, len(a.Keys)), Types: a.Types, Strs: a.Strs, Nums: a.Nums}
	for i, k := range a.Keys {
		out.Keys[i] = prefix + "." + k
	}
	return out
}

// Concat appends b's entries to a copy of a.
func (a Attrs) Concat(b Attrs) Attrs {
	return Attrs{
		Keys:  append(append([]string(nil), a.Keys...), b.Keys...),
		Types: append(append([]uint8(nil), a.Types...), b.Types...),
		Strs:  append(append([]string(nil), a.Strs...), b.Strs...),
		Nums:  append(append([]float64(nil), a.Nums...), b.Nums...),
	}
}

// HeaderColumns splits a header map into sorted parallel key/value slices.
func HeaderColumns(h map[string]string) (keys, values []string) {
	keys = make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = h[k]
	}
	return keys, values
}

// HeaderMap rebuilds a header map from its columns.
func HeaderMap(keys, values []string) map[string]string {
	m := make(map[string]string, len(keys))
	for i, k := range keys {
		if i < len(values) {
			m[k] = values[i]
		}
	}
	return m
}
