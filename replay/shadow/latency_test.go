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
		out = append(out, timeGet(t, cl, base))
	}
	slices.Sort(out)
	return out
}

// timeGet sends one GET to base with cl and returns its latency.
func timeGet(t testing.TB, cl *http.Client, base string) time.Duration {
	t.Helper()
	start := time.Now()
	res, err := cl.Get(base + "/api/items?i=1")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return time.Since(start)
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
// the mirror lost is counted. Timing on a shared machine is noisy, and
// its load changes from one second to the next, so the three proxies run
// at once and their requests are interleaved, each round in a rotated
// order: all three see the same machine. The bound is 2x the live one's
// median plus its own spread (p90-p10, at least 1ms); the benchmark below
// gives the figures.
func TestDeadShadowCostsNothing(t *testing.T) {
	up, live, slow := latencyServers(t)
	const n = 300
	type arm struct {
		name string
		base string
		stop func() (Summary, error)
		cl   *http.Client
		lat  []time.Duration
		sum  Summary
	}
	var arms []*arm
	for _, s := range []struct{ name, url string }{{"live", live.URL}, {"dead", deadURL(t)}, {"slow", slow.URL}} {
		addr, stop := startProxy(t, up.URL, Config{Shadow: s.url, Queue: 16, Drain: 100 * time.Millisecond, Timeout: time.Second})
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		t.Cleanup(cl.CloseIdleConnections)
		arms = append(arms, &arm{name: s.name, base: "http://" + addr, stop: stop, cl: cl})
	}
	for i := 0; i < 20+n; i++ { // 20 rounds to warm up, then n measured
		for k := range arms {
			a := arms[(i+k)%len(arms)]
			if d := timeGet(t, a.cl, a.base); i >= 20 {
				a.lat = append(a.lat, d)
			}
		}
	}
	for _, a := range arms {
		sum, err := a.stop()
		if err != nil {
			t.Fatal(err)
		}
		a.sum = sum
		slices.Sort(a.lat)
	}
	liveLat, deadLat, slowLat := arms[0].lat, arms[1].lat, arms[2].lat
	liveSum, deadSum, slowSum := arms[0].sum, arms[1].sum, arms[2].sum
	t.Logf("median/p99 through the proxy: live shadow %v/%v, dead %v/%v, slow %v/%v",
		quantile(liveLat, .5), quantile(liveLat, .99), quantile(deadLat, .5), quantile(deadLat, .99), quantile(slowLat, .5), quantile(slowLat, .99))
	t.Logf("live %+v\ndead %+v\nslow %+v", liveSum.Stats, deadSum.Stats, slowSum.Stats)
	spread := max(time.Millisecond, quantile(liveLat, .9)-quantile(liveLat, .1))
	bound := 2*quantile(liveLat, .5) + spread
	if m := quantile(deadLat, .5); m > bound {
		t.Errorf("median with a dead shadow %v, above 2x the live one + its spread %v (%v)", m, spread, bound)
	}
	if m := quantile(slowLat, .5); m > bound {
		t.Errorf("median with a slow shadow %v, above 2x the live one + its spread %v (%v)", m, spread, bound)
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
