package wire

import (
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// batchBody encodes events as one Moesif batch, as agents send them.
func batchBody(tb testing.TB, events []storage.Event) []byte {
	body := []byte{'['}
	for i, e := range events {
		enc, err := EncodeMoesif(e)
		if err != nil {
			tb.Fatal(err)
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, enc...)
	}
	return append(body, ']')
}

func benchDecode(b *testing.B, withIDs bool) {
	now := time.Now().UTC()
	events := eventgen.Generate(1, 1000, now.Add(-time.Hour), now)
	if !withIDs { // as moesif-nodejs sends them: ids derived from content
		for i := range events {
			events[i].ExternalID = ""
		}
	}
	body := batchBody(b, events)
	l := Limits{Now: now, MaxAge: time.Hour * 2, MaxSkew: time.Hour, MaxBatch: 10000}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeMoesifEvents(body, l); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeMoesifBatch(b *testing.B)           { benchDecode(b, true) }
func BenchmarkDecodeMoesifBatchContentIDs(b *testing.B) { benchDecode(b, false) }

func BenchmarkDecodeCloudEventsBatch(b *testing.B) {
	now := time.Now().UTC()
	var sb strings.Builder
	sb.WriteByte('[')
	for i := 0; i < 1000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"specversion":"1.0","id":"evt-` + strings.Repeat("x", i%7) + time.Duration(i).String() +
			`","source":"/llm/gateway","type":"tokens","subject":"customer-42","time":"` + now.Format(time.RFC3339Nano) +
			`","data":{"tokens":1234,"model":"large","cached":false}}`)
	}
	sb.WriteByte(']')
	body := []byte(sb.String())
	l := Limits{Now: now, MaxAge: time.Hour, MaxSkew: time.Hour, MaxBatch: 10000}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeCloudEvents(body, EventBatch, l); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
