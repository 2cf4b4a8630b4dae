package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkLatency measures what the proxy adds to a request: the same
// keep-alive client sends b.N small requests to a trivial net/http
// upstream on loopback, directly and through the proxy, and reports the
// median and 99th percentile of the per-request latencies. Compare the
// two sub-benchmarks' p50-µs and p99-µs:
//
//	go test -run XXX -bench Latency -benchtime 20000x ./capture/proxy
func BenchmarkLatency(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	run := func(b *testing.B, base string) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		get := func() {
			resp, err := cl.Get(base + "/bench")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		for range 100 { // warm up connections and code paths
			get()
		}
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			t0 := time.Now()
			get()
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
	b.Run("direct", func(b *testing.B) { run(b, srv.URL) })
	b.Run("proxy", func(b *testing.B) {
		r := startProxy(b, srv.URL, WithQueue(1<<20))
		go func() { // a recorder that keeps up
			for {
				if _, err := r.p.Next(); err != nil {
					return
				}
			}
		}()
		run(b, "http://"+r.addr)
		r.cancel()
	})
}

// BenchmarkThroughput forwards 1 MiB uploads and downloads through the
// proxy, recording the first 64 KiB of each body.
func BenchmarkThroughput(b *testing.B) {
	payload := strings.Repeat("x", 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, payload)
	}))
	defer srv.Close()
	r := startProxy(b, srv.URL, WithMaxBody(64<<10), WithQueue(1<<20))
	go func() {
		for {
			if _, err := r.p.Next(); err != nil {
				return
			}
		}
	}()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	b.SetBytes(2 << 20)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := cl.Post("http://"+r.addr+"/up", "application/octet-stream", strings.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.StopTimer()
	r.cancel()
}
