package wire

import (
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Flattening reads and stores each value once. 32 nested objects around a
// 15 MB string used to re-marshal and store the string at every level:
// 1.5 GB allocated and 480 MB stored, in 5 s.
func TestFlattenIsLinear(t *testing.T) {
	const depth, size = 32, 15 << 20
	text := strings.Repeat(`{"a":`, depth) + `"` + strings.Repeat("x", size) + `"` + strings.Repeat("}", depth)
	s := &scanner{b: []byte(text), src: text}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	a, err := flattenObject(s)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for i := range a.Keys {
		stored += len(a.Keys[i]) + len(a.Strs[i])
	}
	if stored > len(text)+4096 {
		t.Errorf("stored %d bytes for %d bytes of JSON", stored, len(text))
	}
	// The string is a slice of the body's copy (src): flattening itself
	// allocates only the nested paths and digests.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("allocated %d bytes flattening %d bytes of JSON", alloc, len(text))
	}
}

func TestFlattenCaps(t *testing.T) {
	keys := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"o":{`)
		for i := range n - 1 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"k` + strconv.Itoa(i) + `":1`)
		}
		b.WriteString(`}}`)
		return b.String()
	}
	wide := func(key string, children int) string {
		return `{"` + key + `":{` + strings.Repeat(`"a":1,`, children-1) + `"a":1}}`
	}
	cases := []struct {
		name, in string
		status   int // 0: accepted
		code     string
	}{
		{"1000 keys", keys(MaxObjectKeys), 0, ""},
		{"1001 keys", keys(MaxObjectKeys + 1), 413, CodeMetadataTooLarge},
		{"repeated keys count", `{"a":1` + strings.Repeat(`,"a":1`, MaxObjectKeys) + `}`, 413, CodeMetadataTooLarge},
		{"32 levels", strings.Repeat(`{"a":`, MaxObjectDepth) + "1" + strings.Repeat("}", MaxObjectDepth), 0, ""},
		{"33 levels", strings.Repeat(`{"a":`, MaxObjectDepth+1) + "1" + strings.Repeat("}", MaxObjectDepth+1), 400, CodeInvalidValue},
		{"a 40-byte key above 500 children", wide(strings.Repeat("k", 40), 500), 0, ""},
		{"a 4 KB key above 500 children", wide(strings.Repeat("k", 4096), 500), 413, CodeMetadataTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := flattenObject(&scanner{b: []byte(c.in), src: c.in})
			var le *limitError
			switch {
			case c.status == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case c.status == 0:
			case !errors.As(err, &le):
				t.Fatalf("got %v, want a %d %s", err, c.status, c.code)
			case le.status != c.status || le.code != c.code:
				t.Fatalf("got %d %s (%s), want %d %s", le.status, le.code, le.msg, c.status, c.code)
			}
		})
	}
}
