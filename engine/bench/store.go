package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
)

// OpenFresh opens an empty store of the kind dsn names (see
// backends.Fresh), and a cleanup that closes and removes it. The
// description names what was opened.
func OpenFresh(ctx context.Context, dsn string) (st storage.Store, description string, cleanup func(), err error) {
	return openFresh(ctx, dsn, "backtest")
}

// openFresh is OpenFresh for the benchmark label names.
func openFresh(ctx context.Context, dsn, label string) (st storage.Store, description string, cleanup func(), err error) {
	fresh, desc, remove, err := backends.Fresh(dsn, label)
	if err != nil {
		return nil, "", nil, err
	}
	if st, err = backends.Open(ctx, fresh); err != nil {
		remove()
		return nil, "", nil, err
	}
	return st, desc, func() { st.Close(); remove() }, nil
}

// stderrProgress tells progress on stderr with the seconds since it was
// made.
func stderrProgress() func(format string, args ...any) {
	started := time.Now()
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] "+format+"\n", append([]any{time.Since(started).Seconds()}, args...)...)
	}
}
