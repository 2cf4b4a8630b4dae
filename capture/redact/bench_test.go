package redact

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// reportCPU adds the process's CPU time per op to b's results: on a
// shared machine wall time per op swings with the load, CPU time much
// less. Call it first; it reports when b ends.
func reportCPU(b *testing.B) {
	cpu0 := testkit.CPUTime()
	b.Cleanup(func() {
		if cpu := testkit.CPUTime() - cpu0; cpu > 0 && b.N > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	})
}

// traceExchanges builds n exchanges shaped as capture's
// BenchmarkPcapToRecording trace: three GETs in four with a query, a
// bearer JWT and a session cookie, the rest POSTs of a JSON order, every
// answer a JSON product listing of mixed size (mostly small, some tens of
// KB), none holding a secret field.
func traceExchanges(n int) []session.Exchange {
	rng := rand.New(rand.NewPCG(42, 1))
	const bearer = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl"
	bodySize := func() int { return sourcetest.TraceBodySize(rng) }
	jsonBody := func(n int) []byte { return []byte(sourcetest.TraceJSON(rng, n)) }
	xs := make([]session.Exchange, n)
	for i := range xs {
		x := &xs[i]
		if rng.IntN(4) == 0 {
			body := jsonBody(200 + rng.IntN(1500))
			x.Request = session.Request{Method: "POST", Target: "/api/orders", Body: body, BodySize: int64(len(body)),
				Header: session.Headers{hdr("Host", "shop.example"), hdr("User-Agent", "sim/1.0"), hdr("Authorization", bearer),
					hdr("Content-Type", "application/json"), hdr("Content-Length", fmt.Sprint(len(body)))}}
		} else {
			x.Request = session.Request{Method: "GET", Target: fmt.Sprintf("/api/items?page=%d&sort=price", rng.IntN(50)),
				Header: session.Headers{hdr("Host", "shop.example"), hdr("User-Agent", "sim/1.0"), hdr("Accept", "application/json"),
					hdr("Authorization", bearer), hdr("Cookie", fmt.Sprintf("SESSIONID=abc%d", i%1000))}}
		}
		body := jsonBody(bodySize())
		x.Response = session.Response{Status: 200, Body: body, BodySize: int64(len(body)),
			Header: session.Headers{hdr("Content-Type", "application/json"), hdr("Date", "Thu, 26 Nov 2026 01:00:00 GMT"),
				hdr("Content-Length", fmt.Sprint(len(body)))}}
	}
	return xs
}

// BenchmarkApplyTrace measures Apply, with the defaults (redact) and
// without (keep-secrets), on the exchanges of capture's import benchmark,
// per exchange: the part of the import's cost that default redaction
// adds, without the noise of the rest of the import. Each exchange is
// applied to a fresh copy of its headers, as the capture has.
//
//	go test ./capture/redact -run XXX -bench ApplyTrace -cpu 1 -benchmem
func BenchmarkApplyTrace(b *testing.B) {
	xs := traceExchanges(200)
	for _, mode := range []string{"keep-secrets", "redact"} {
		b.Run("mode="+mode, func(b *testing.B) {
			r := newTest(b, Config{NoDefaults: mode == "keep-secrets"})
			var reqH, respH []session.Header
			b.ReportAllocs()
			reportCPU(b)
			for i := 0; i < b.N; i++ {
				x := xs[i%len(xs)]
				reqH = append(reqH[:0], x.Request.Header...)
				respH = append(respH[:0], x.Response.Header...)
				x.Request.Header, x.Response.Header = reqH, respH
				r.Apply(&x)
			}
		})
	}
}
