package duckdb

import (
	"context"
	"database/sql/driver"
	"testing"
	"time"

	"github.com/marcboeker/go-duckdb/v2"
	"github.com/meterd/meterd/storage/eventgen"
)

func TestZZPhases(t *testing.T) {
	ctx := context.Background()
	s, _ := Open(ctx, "")
	defer s.Close()
	now := time.Now().UTC()
	evs := eventgen.Generate(1, 100_000, now.Add(-time.Hour), now)
	var tDedup, tRows, tApp, tCommit time.Duration
	start := time.Now()
	for i := 0; i < len(evs); i += 2000 {
		b := evs[i : i+2000]
		conn, _ := s.db.Conn(ctx)
		conn.ExecContext(ctx, "BEGIN TRANSACTION")
		t0 := time.Now()
		fresh, _, err := s.newEvents(ctx, conn, b)
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		rows := make([][]any, len(fresh))
		for j, e := range fresh {
			rows[j], _ = eventRow(e)
		}
		t2 := time.Now()
		conn.Raw(func(dc any) error {
			a, _ := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "events")
			for _, r := range rows {
				if err := a.AppendRow(toDriverValues(r)...); err != nil {
					t.Fatal(err)
				}
			}
			return a.Close()
		})
		t3 := time.Now()
		conn.ExecContext(ctx, "COMMIT")
		conn.Close()
		tDedup += t1.Sub(t0)
		tRows += t2.Sub(t1)
		tApp += t3.Sub(t2)
		tCommit += time.Since(t3)
	}
	t.Logf("%.0f/s dedup %v rows %v append %v commit %v", float64(len(evs))/time.Since(start).Seconds(), tDedup, tRows, tApp, tCommit)
}
