package eventgen

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestGenerateIsDeterministicOrderedAndValid(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := Generate(7, 2000, from, from.Add(24*time.Hour))
	b := Generate(7, 2000, from, from.Add(24*time.Hour))
	for i := range a {
		a[i].ReceivedAt, b[i].ReceivedAt = time.Time{}, time.Time{}
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different events")
	}
	ids := map[string]bool{}
	blocked := 0
	for i, e := range a {
		if e.BlockedBy != "" {
			blocked++
			if !e.HasResponse || (e.Status != 402 && e.Status != 429) {
				t.Fatalf("event %d blocked by %s answered %d (response %v), want the rule's 402 or 429", i, e.BlockedBy, e.Status, e.HasResponse)
			}
		}
		if i > 0 && e.Time.Before(a[i-1].Time) {
			t.Fatalf("event %d out of time order", i)
		}
		if ids[e.ID] {
			t.Fatalf("id %s repeated", e.ID)
		}
		ids[e.ID] = true
		var m, c map[string]any
		if err := json.Unmarshal([]byte(e.Metadata), &m); err != nil {
			t.Fatalf("event %d metadata %q: %v", i, e.Metadata, err)
		}
		if err := json.Unmarshal([]byte(e.CompanyTraits), &c); err != nil {
			t.Fatalf("event %d traits: %v", i, err)
		}
	}
	if blocked == 0 || blocked > len(a)/10 {
		t.Fatalf("%d of %d events blocked, want a few", blocked, len(a))
	}
	if c := Generate(8, 10, from, from.Add(time.Hour)); c[0].ID == a[0].ID {
		t.Fatal("different seeds share ids")
	}
}
