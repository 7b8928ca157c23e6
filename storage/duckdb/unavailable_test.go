package duckdb

import (
	"context"
	"errors"
	"testing"

	"github.com/marcboeker/go-duckdb/v2"

	"github.com/meterd/meterd/storage"
)

// TestUnavailableClassification: go-duckdb reports a query its context
// interrupted as errors.Join(ctx.Err(), INTERRUPT Error) (statement.go);
// that is the caller giving up, never "store unavailable", and must stay
// a context.Canceled for the server to answer 499. The machine's errors
// are unavailable, the query's own are not, and both keep the driver's
// error for errors.As.
func TestUnavailableClassification(t *testing.T) {
	interrupted := errors.Join(context.Canceled, &duckdb.Error{Type: duckdb.ErrorTypeInterrupt, Msg: "INTERRUPT Error: Interrupted!"})
	if err := unavailable(interrupted); !errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("interrupted by its context: %v; want context.Canceled, not ErrUnavailable", err)
	}
	for _, c := range []struct {
		typ  duckdb.ErrorType
		want bool
	}{
		{duckdb.ErrorTypeIO, true}, {duckdb.ErrorTypeOutOfMemory, true}, {duckdb.ErrorTypeTransaction, true},
		{duckdb.ErrorTypeParser, false}, {duckdb.ErrorTypeConstraint, false}, {duckdb.ErrorTypeConversion, false},
	} {
		err := unavailable(&duckdb.Error{Type: c.typ, Msg: "x"})
		var de *duckdb.Error
		if errors.Is(err, storage.ErrUnavailable) != c.want || !errors.As(err, &de) {
			t.Errorf("error type %v: %v; want unavailable %v, the duckdb.Error kept", c.typ, err, c.want)
		}
	}
}
