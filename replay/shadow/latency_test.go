package shadow

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// okHandler answers like a small JSON API.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"ok","items":[1,2,3]}`)
})

// timeGets sends n GETs over one keep-alive connection to base and returns
// their latencies, sorted.
func timeGets(t testing.TB, base string, n int) []time.Duration {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer cl.CloseIdleConnections()
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		res, err := cl.Get(base + "/api/items?i=1")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

// latencyServers serves an upstream, a live shadow and a slow one (200ms
// an answer) on loopback until the test ends.
func latencyServers(t testing.TB) (up, live, slow *httptest.Server) {
	up = httptest.NewServer(okHandler)
	t.Cleanup(up.Close)
	live = httptest.NewServer(okHandler)
	t.Cleanup(live.Close)
	slow = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		okHandler(w, r)
	}))
	t.Cleanup(slow.Close)
	return up, live, slow
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// A dead shadow (nothing listens) or a slow one costs the primary path
// nothing beyond noise: the medians through the proxy with a live, a dead
// and a slow shadow are within a generous bound of each other, and what
// the mirror lost is counted. Timing on a shared machine is noisy, so the
// bound is 2x + 1ms on the median; the benchmark below gives the figures.
func TestDeadShadowCostsNothing(t *testing.T) {
	up, live, slow := latencyServers(t)
	const n = 300
	run := func(shadowURL string) ([]time.Duration, Summary) {
		addr, stop := startProxy(t, up.URL, Config{Shadow: shadowURL, Queue: 16, Drain: 100 * time.Millisecond, Timeout: time.Second})
		timeGets(t, "http://"+addr, 20) // warm up
		lat := timeGets(t, "http://"+addr, n)
		sum, err := stop()
		if err != nil {
			t.Fatal(err)
		}
		return lat, sum
	}
	liveLat, liveSum := run(live.URL)
	deadLat, deadSum := run(deadURL(t))
	slowLat, slowSum := run(slow.URL)
	t.Logf("median/p99 through the proxy: live shadow %v/%v, dead %v/%v, slow %v/%v",
		quantile(liveLat, .5), quantile(liveLat, .99), quantile(deadLat, .5), quantile(deadLat, .99), quantile(slowLat, .5), quantile(slowLat, .99))
	t.Logf("live %+v\ndead %+v\nslow %+v", liveSum.Stats, deadSum.Stats, slowSum.Stats)
	bound := 2*quantile(liveLat, .5) + time.Millisecond
	if m := quantile(deadLat, .5); m > bound {
		t.Errorf("median with a dead shadow %v, above 2x the live one + 1ms (%v)", m, bound)
	}
	if m := quantile(slowLat, .5); m > bound {
		t.Errorf("median with a slow shadow %v, above 2x the live one + 1ms (%v)", m, bound)
	}
	// One keep-alive connection without identity is one session, mirrored
	// in order; back-to-back requests outrun it, so even the live shadow
	// sheds here. That is the design: shed, never slow the primary.
	if liveSum.Stats.Errors != 0 {
		t.Errorf("live shadow failed requests: %+v", liveSum.Stats)
	}
	if deadSum.Stats.Errors == 0 {
		t.Errorf("a dead shadow's failures were not counted: %+v", deadSum.Stats)
	}
	if slowSum.Stats.Shed["queue"] == 0 {
		t.Errorf("a slow shadow's shedding was not counted: %+v", slowSum.Stats)
	}
}

// BenchmarkProxyAddedLatency measures a GET through the mirroring proxy
// with a live, a dead and a slow shadow, and straight to the upstream, as
// the median and p99 per request (custom metrics median-us and p99-us).
func BenchmarkProxyAddedLatency(b *testing.B) {
	up, live, slow := latencyServers(b)
	report := func(b *testing.B, lat []time.Duration) {
		b.ReportMetric(float64(quantile(lat, .5).Microseconds()), "median-us")
		b.ReportMetric(float64(quantile(lat, .99).Microseconds()), "p99-us")
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		report(b, timeGets(b, up.URL, b.N))
	})
	for _, c := range []struct{ name, url string }{{"live-shadow", live.URL}, {"dead-shadow", deadURL(b)}, {"slow-shadow", slow.URL}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			addr, stop := startProxy(b, up.URL, Config{Shadow: c.url, Drain: 100 * time.Millisecond, Timeout: time.Second})
			b.ResetTimer()
			lat := timeGets(b, "http://"+addr, b.N)
			b.StopTimer()
			report(b, lat)
			stop()
		})
	}
}
