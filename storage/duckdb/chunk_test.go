package duckdb

import (
	"context"
	"database/sql"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/marcboeker/go-duckdb/mapping"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// edgeEvents have strings on both sides of DuckDB's 12-byte inline limit
// (multi-byte characters across it), empty and long lists, and times
// around 1970 and day boundaries.
func edgeEvents() []storage.Event {
	var out []storage.Event
	lens := []int{0, 1, 4, 11, 12, 13, 16, 300}
	times := []time.Time{
		time.Date(1969, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1960, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 30, 23, 59, 59, 999e6, time.UTC),
	}
	for i, n := range lens {
		s := strings.Repeat("x", n)
		u := strings.Repeat("é", n/2) // 2 bytes each: 11 and 13 cross the limit mid-rune
		meta := `{}`
		if i%2 == 1 {
			var b strings.Builder
			b.WriteString(`{"k0":"` + s + `"`)
			for k := 1; k < 40*i; k++ {
				b.WriteString(`,"k` + strings.Repeat("y", k%20) + string(rune('a'+k%26)) + `":` + "1.5")
			}
			b.WriteString(`}`)
			meta = b.String()
		}
		at := times[i%len(times)]
		out = append(out, storage.Event{
			ID: "edge-" + s + u, ExternalID: u, Format: storage.FormatMoesif, Time: at, ReceivedAt: at,
			Verb: s, URI: u, Route: s, Host: u, IP: s, APIVersion: u,
			RequestHeaders: map[string]string{s + "k": u, "h" + u: s},
			RequestBody:    u + s, ResponseBody: s + u, UserID: u, CompanyID: s, SessionToken: u,
			SubscriptionID: s, Direction: u, Weight: int64(-i), Status: int32(i * 100),
			Metadata: meta, UserTraits: `{"name":"` + u + `"}`, CompanyTraits: `{"plan":"` + s + `"}`,
		})
	}
	return out
}

// TestChunkAppenderWritesEveryValue inserts more than two chunks of
// events and reads every column back, after garbage collections that
// would expose a string pointing to freed memory.
func TestChunkAppenderWritesEveryValue(t *testing.T) {
	ctx := context.Background()
	s := open(t, "")
	from := time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC)
	evs := append(eventgen.Generate(5, 2*chunkCapacity+300, from, from.Add(48*time.Hour)), edgeEvents()...)
	if r, err := s.Insert(ctx, evs); err != nil || r.Inserted != len(evs) {
		t.Fatalf("Insert: %+v, %v", r, err)
	}
	// Refill the memory the appender's buffers held with 0xff, in
	// allocations of their sizes, and keep it until everything is read.
	runtime.GC()
	runtime.GC()
	var filler [][]byte
	for size := 1 << 10; size <= 1<<20; size *= 2 {
		for i := 0; i < 64; i++ {
			b := make([]byte, size)
			for j := range b {
				b[j] = 0xff
			}
			filler = append(filler, b)
		}
	}
	defer runtime.KeepAlive(filler)

	want := map[string]storage.Event{}
	for _, e := range evs {
		want[e.ID] = e
	}
	got := 0
	err := s.ScanEvents(ctx, storage.EventFilter{}, func(e *storage.Event) error {
		got++
		w := want[e.ID]
		w.Flat = nil
		if w.RequestHeaders == nil {
			w.RequestHeaders = map[string]string{}
		}
		if w.ResponseHeaders == nil {
			w.ResponseHeaders = map[string]string{}
		}
		if !reflect.DeepEqual(*e, w) {
			t.Errorf("event %q:\n got %+v\nwant %+v", e.ID, *e, w)
		}
		return nil
	})
	if err != nil || got != len(evs) {
		t.Fatalf("scanned %d of %d events: %v", got, len(evs), err)
	}

	// The derived columns ScanEvents does not read.
	rows, err := s.DB().QueryContext(ctx, `SELECT id, day, meta_keys, meta_types, meta_strs, meta_nums,
		trait_keys, trait_types, trait_strs, trait_nums FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var day time.Time
		var mk, mt, ms, mn, tk, tt, ts, tn []any
		if err := rows.Scan(&id, &day, &mk, &mt, &ms, &mn, &tk, &tt, &ts, &tn); err != nil {
			t.Fatal(err)
		}
		e := want[id]
		flat, err := e.Flatten()
		if err != nil {
			t.Fatal(err)
		}
		if wantDay := e.Time.UTC().Truncate(24 * time.Hour); !day.Equal(wantDay) {
			t.Errorf("event %q at %v: day %v, want %v", id, e.Time, day, wantDay)
		}
		for _, c := range []struct {
			name string
			got  []any
			want any
		}{
			{"meta_keys", mk, flat.Meta.Keys}, {"meta_types", mt, flat.Meta.Types},
			{"meta_strs", ms, flat.Meta.Strs}, {"meta_nums", mn, flat.Meta.Nums},
			{"trait_keys", tk, flat.Traits.Keys}, {"trait_types", tt, flat.Traits.Types},
			{"trait_strs", ts, flat.Traits.Strs}, {"trait_nums", tn, flat.Traits.Nums},
		} {
			if g := typedList(c.got, c.want); !reflect.DeepEqual(g, c.want) {
				t.Errorf("event %q %s: got %v, want %v", id, c.name, g, c.want)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// typedList converts a scanned LIST to the Go slice type of like.
func typedList(l []any, like any) any {
	out := reflect.MakeSlice(reflect.TypeOf(like), len(l), len(l))
	for i, v := range l {
		out.Index(i).Set(reflect.ValueOf(v))
	}
	if len(l) == 0 && reflect.ValueOf(like).IsNil() {
		return like
	}
	return out.Interface()
}

func TestChunkAppenderChecksTheTable(t *testing.T) {
	ctx := context.Background()
	s := open(t, "")
	if _, err := s.DB().ExecContext(ctx, `CREATE TABLE t (a VARCHAR, b INTEGER, c VARCHAR[])`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cols []column
		want string
	}{
		{"too few columns", []column{&strCol{}}, "table has 3 columns, meterd writes 1"},
		{"wrong type", []column{&strCol{}, &fixedCol[int64]{typ: mapping.TypeBigInt}, strList()}, "column 1: type"},
		{"wrong list element", []column{&strCol{}, &fixedCol[int32]{typ: mapping.TypeInteger},
			fixedList[float64](mapping.TypeDouble)}, "column 2: type"},
		{"missing table", nil, "nope"},
	}
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range cases {
		table := "t"
		if c.cols == nil {
			table = "nope"
		}
		err := conn.Raw(func(dc any) error {
			raw, err := rawConn(dc)
			if err != nil {
				return err
			}
			a, err := newChunkAppender(raw, table, c.cols)
			if err == nil {
				a.close()
			}
			return err
		})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := rawConn(&sql.DB{}); err == nil {
		t.Error("rawConn accepted a value that is not a go-duckdb connection")
	}
}
