package backtest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// legacyFlat is how rows stored before object digests hold an event's
// metadata and traits: each nested object as its JSON text, key count 0.
func legacyFlat(t *testing.T, e storage.Event) *storage.Flat {
	t.Helper()
	f, err := e.Flatten()
	if err != nil {
		t.Fatal(err)
	}
	texts := func(root map[string]any, a storage.Attrs, prefix string) {
		for i, k := range a.Keys {
			if a.Types[i] != storage.TypeObject {
				continue
			}
			v := any(root)
			path := k[len(prefix):]
			for len(path) > 0 { // keys here hold no "."
				key := path
				if j := indexDot(path); j >= 0 {
					key, path = path[:j], path[j+1:]
				} else {
					path = ""
				}
				v = v.(map[string]any)[key]
			}
			b, _ := json.Marshal(v)
			a.Strs[i], a.Nums[i] = string(b), 0
		}
	}
	decode := func(s string) map[string]any {
		var m map[string]any
		_ = json.Unmarshal([]byte(s), &m)
		return m
	}
	texts(decode(e.Metadata), f.Meta, "")
	u, c := decode(e.UserTraits), decode(e.CompanyTraits)
	n := 0
	for n < len(f.Traits.Keys) && f.Traits.Keys[n][:5] == "user." {
		n++
	}
	user := storage.Attrs{Keys: f.Traits.Keys[:n], Types: f.Traits.Types[:n], Strs: f.Traits.Strs[:n], Nums: f.Traits.Nums[:n]}
	company := storage.Attrs{Keys: f.Traits.Keys[n:], Types: f.Traits.Types[n:], Strs: f.Traits.Strs[n:], Nums: f.Traits.Nums[n:]}
	texts(u, user, "user.")
	texts(c, company, "company.")
	return f
}

func indexDot(s string) int {
	for i := range len(s) {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// Objects are stored as a digest and a key count; rows stored before keep
// their JSON text. Meters read both the same way, in SQL as on the VM.
func TestObjectsStoredBeforeDigestsStillRead(t *testing.T) {
	ctx := context.Background()
	s := newDiffStores(t)
	at := time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)
	metas := []string{
		`{"o":{"a":1,"b":{"c":-0}},"p":{"b":{"c":0},"a":1.0}}`,
		`{"o":{"a":1},"p":{"a":2},"q":{}}`,
		`{"o":{"a":[1,-0]},"p":{"a":[1,0]},"q":{"x":null,"y":"s","z":true}}`,
		`{"o":{},"p":{}}`,
		`{"o":[1,2],"p":{"a":1}}`,
	}
	var events []storage.Event
	for i, meta := range metas {
		for _, legacy := range []bool{false, true} {
			e := regEvent{meta: meta, user: `{"o":{"a":1,"b":{"c":0}}}`, company: `{"o":{}}`}.event("legacy-"+string(rune('a'+len(events))), at.Add(time.Duration(i)*time.Minute))
			if legacy {
				e.Flat = legacyFlat(t, e)
			}
			events = append(events, e)
		}
	}
	insert(t, s.duck, events)
	if s.ch != nil {
		insert(t, s.ch, events)
	}
	w := Window{From: at, To: at.Add(time.Hour), Bucket: BucketHour, Top: MaxTop}
	for _, d := range []rules.Definition{
		{Filter: `metadata.o == metadata.p`, Aggregation: rules.AggCount},
		{Filter: `metadata.o == user.o`, Aggregation: rules.AggCount},
		{Filter: `metadata.o.b == user.o.b`, Aggregation: rules.AggCount},
		{Filter: `metadata.q != nil`, Value: `len(metadata.q)`, Aggregation: rules.AggSum},
		{Filter: `metadata.o != nil`, Value: `len(metadata.o) + len(company.o)`, Aggregation: rules.AggSum},
	} {
		d.Name = d.Filter
		s.check(t, ctx, d.Name, []Version{{Meter: compile(t, d)}}, w, true)
	}
}
