package wire

import (
	"testing"
	"time"

	"github.com/meterd/meterd/storage/eventgen"
)

func BenchmarkDecodeMoesifBatch(b *testing.B) {
	now := time.Now().UTC()
	events := eventgen.Generate(1, 1000, now.Add(-time.Hour), now)
	body := []byte{'['}
	for i, e := range events {
		enc, _ := EncodeMoesif(e)
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, enc...)
	}
	body = append(body, ']')
	l := Limits{Now: now, MaxAge: time.Hour * 2, MaxSkew: time.Hour, MaxBatch: 10000}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeMoesifEvents(body, false, l); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
