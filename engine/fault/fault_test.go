package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/meterd/meterd/engine/fault"
)

// Errors are found through wrapping, say where they are, and keep their
// cause for errors.Is without showing it.
func TestFindsAndSays(t *testing.T) {
	disk := errors.New("disk on fire")
	e := &fault.Error{Status: 503, Code: "store_unavailable", Message: "the event store failed to answer; retry", Cause: disk}
	wrapped := fmt.Errorf("reading meters: %w", e)
	if got, ok := fault.As(wrapped); !ok || got != e {
		t.Fatalf("As: %v %v", got, ok)
	}
	if !errors.Is(wrapped, disk) {
		t.Error("the cause is not found by errors.Is")
	}
	if s := e.Error(); s != "store_unavailable: the event store failed to answer; retry" {
		t.Errorf("Error(): %q", s)
	}
	pos := &fault.Error{Status: 400, Code: "unknown_field", Field: "filter", Line: 1, Column: 10, Message: "unknown field requst"}
	if s := pos.Error(); s != "filter:1:10: unknown field requst" {
		t.Errorf("positioned Error(): %q", s)
	}
	if _, ok := fault.As(disk); ok {
		t.Error("As found a fault error in a plain one")
	}
	l := fault.List{pos, fault.Invalid("invalid_value", "value", "value must be a number")}
	if got, ok := fault.AsList(fmt.Errorf("create: %w", l)); !ok || len(got) != 2 {
		t.Errorf("AsList: %v %v", got, ok)
	}
	if _, ok := fault.AsList(fault.List{}); ok {
		t.Error("an empty list counts as a list of problems")
	}
	if nf := fault.NotFound("not_found", "no such meter"); nf.Status != 404 {
		t.Errorf("NotFound status %d", nf.Status)
	}
	if c := fault.Conflict("slug_taken", "slug", "taken"); c.Status != 409 || c.Field != "slug" {
		t.Errorf("Conflict: %+v", c)
	}
}
