package registry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/fault"
)

// Slugs: checked, unique among meters, and a slug a meter ever had is
// never given to another; a meter is found by its id or its current slug.
func TestSlugs(t *testing.T) {
	r, _, c := setup(t)
	a, err := r.Create(ctx, searchCalls, "tokens_total", "ann")
	if err != nil || a.Slug != "tokens_total" {
		t.Fatalf("create with a slug: %+v, %v", a, err)
	}
	code := func(err error) string {
		var ce *fault.Error
		if !errors.As(err, &ce) || ce.Field != "slug" {
			return "no slug error: " + errString(err)
		}
		return ce.Code
	}
	for _, bad := range []string{"Tokens", "_x", "a b", "mtr_0123456789abcdef", strings.Repeat("a", 65)} {
		if _, err := r.Create(ctx, searchCalls, bad, ""); code(err) != "invalid_value" {
			t.Errorf("slug %q: %s", bad, code(err))
		}
	}
	if _, err := r.Create(ctx, searchCalls, "tokens_total", ""); code(err) != CodeSlugTaken {
		t.Fatalf("a duplicate slug at creation: %s", code(err))
	}
	if m, err := r.Create(ctx, searchCalls, strings.Repeat("a", 64), ""); err != nil || m.Slug == "" {
		t.Fatalf("a slug of 64 characters: %v", err)
	}
	b, err := r.Create(ctx, searchCalls, "", "")
	if err != nil || b.Slug != "" {
		t.Fatalf("create without a slug: %+v, %v", b, err)
	}
	if _, err := r.SetSlug(ctx, b.ID, "tokens_total", ""); code(err) != CodeSlugTaken {
		t.Fatalf("taking another meter's slug: %s", code(err))
	}
	c.t = c.t.Add(time.Minute)
	if b, err = r.SetSlug(ctx, b.ID, "api-calls", "bob"); err != nil || b.Slug != "api-calls" {
		t.Fatalf("set a slug: %+v, %v", b, err)
	}
	if last := b.Changes[len(b.Changes)-1]; last.Kind != "slug" || last.Actor != "bob" || string(last.Detail) != `{"previous":"","slug":"api-calls"}` {
		t.Fatalf("the slug change recorded %+v", last)
	}
	for key, want := range map[string]string{"tokens_total": a.ID, "api-calls": b.ID, a.ID: a.ID, b.ID: b.ID} {
		if m, err := r.GetByIDOrSlug(ctx, key); err != nil || m.ID != want {
			t.Errorf("%s: %v, %v; want %s", key, m, err, want)
		}
	}
	// a moves to a new slug: its old one finds nothing and stays its own.
	if _, err := r.SetSlug(ctx, a.ID, "tokens", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetByIDOrSlug(ctx, "tokens_total"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a former slug: %v", err)
	}
	if _, err := r.SetSlug(ctx, b.ID, "tokens_total", ""); code(err) != CodeSlugTaken {
		t.Fatalf("taking a slug another meter had: %s", code(err))
	}
	if m, err := r.SetSlug(ctx, a.ID, "tokens_total", ""); err != nil || m.Slug != "tokens_total" {
		t.Fatalf("a meter takes its own former slug back: %v", err)
	}
	if _, err := r.Archive(ctx, a.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetSlug(ctx, a.ID, "other", ""); !errors.Is(err, ErrArchived) {
		t.Fatalf("slug of an archived meter: %v", err)
	}
	if m, err := r.GetByIDOrSlug(ctx, "tokens_total"); err != nil || m.ID != a.ID {
		t.Fatalf("an archived meter keeps its slug: %v", err)
	}
	for _, key := range []string{"nope", "mtr_nope", "Not A Slug"} {
		if _, err := r.GetByIDOrSlug(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v", key, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
