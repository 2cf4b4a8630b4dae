package session

import "testing"

// BenchmarkCodecHTTP1 encodes and decodes the benchmark corpus's HTTP/1
// exchanges record by record, without compression, to show the record
// codec's own cost: the HTTP/2 extension must cost HTTP/1 nothing.
//
//	go test ./session -run '^$' -bench CodecHTTP1 -cpu 1 -count 5
func BenchmarkCodecHTTP1(b *testing.B) {
	exs, raw := genCorpus(false)
	exs = exs[:1000]
	raw = 0
	recs := make([][]byte, len(exs))
	for i, ex := range exs {
		recs[i] = encodeExchange(nil, ex, DefaultBodyCap)
		raw += int64(len(recs[i]))
	}
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(raw)
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			for _, ex := range exs {
				buf = encodeExchange(buf[:0], ex, DefaultBodyCap)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(raw)
		b.ReportAllocs()
		var ex Exchange
		for b.Loop() {
			for _, rec := range recs {
				if err := decodeExchange(rec, &ex); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
