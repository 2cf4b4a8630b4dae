package shadow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/sim"
)

// shopCfg is a quick shop: short tokens so sessions refresh within a few
// seconds, small service times.
func shopCfg() shop.Config {
	return shop.Config{AccessTTL: time.Second, NoServiceTime: true}
}

// mirrorShopCfg is shopCfg with tokens long enough to outlast a mirror
// delayed by a loaded machine, and short enough that the users still
// refresh within a run: the users refresh a second before expiry, so a
// mirrored request expires at the shadow only if the mirror falls a
// second further behind than it was for the login or refresh.
func mirrorShopCfg() shop.Config {
	c := shopCfg()
	c.AccessTTL = 2 * time.Second
	return c
}

// longShopCfg is shopCfg with tokens that outlive every run here, for
// the tests whose point is not the refresh: the mirror sends after the
// primary answered, and a loaded machine that delays it past a short
// token's refresh margin would have the shadow refuse the token as
// expired in transit.
func longShopCfg() shop.Config {
	c := shopCfg()
	c.AccessTTL = time.Minute
	return c
}

// simBound bounds a simulated run. The users finish their plans in about
// 1.5 s on an idle machine; the bound only stops a run that hangs, so it
// is generous: a user cut off by it mid-request would be the machine's
// doing, not the proxy's.
const simBound = 30 * time.Second

// simCfg drives a few users quickly through url, every one refreshing
// ahead of expiry so the primary has no violations either.
func simCfg(url string, users int, d time.Duration) sim.Config {
	return sim.Config{
		BaseURL: url, Users: users, Seed: 7, Duration: d, MaxRequests: 5000,
		ArrivalWindow: 500 * time.Millisecond, Think: sim.LogNormal{Median: 100 * time.Millisecond, Sigma: 0.3},
		NoReactive: true, RequestTimeout: 5 * time.Second,
	}
}

// startProxy puts the recording proxy (capture/proxy) in front of
// upstream and mirrors what it forwards, as 'reprise shadow --listen'
// wires them, in the background. It returns the proxy's address and a
// function that stops both and returns what the mirror did.
func startProxy(t testing.TB, upstream string, cfg Config) (string, func() (Summary, error)) {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, served, err := p.Start(ctx, "127.0.0.1:0", false)
	if err != nil {
		cancel()
		t.Fatalf("proxy did not start: %v", err)
	}
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := m.Run(ctx, p)
		serr := served()
		ps := p.Stats()
		sum.Source = map[string]uint64{"connections": ps.Connections, "exchanges": ps.Exchanges,
			"dropped": ps.Dropped, "bad_gateway": ps.Errors, "incomplete": ps.Incomplete}
		done <- result{sum, errors.Join(err, serr)}
	}()
	return addr, func() (Summary, error) { cancel(); r := <-done; return r.sum, r.err }
}

// deadURL returns a loopback URL where nothing listens.
func deadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// priceRewriter wraps a shop so that GET /api/products/{id} answers one
// cent more: a candidate that differs on one route and one field.
func priceRewriter(h http.Handler) http.Handler {
	one := regexp.MustCompile(`^/api/products/[0-9]+$`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" || !one.MatchString(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var m map[string]any
		if rec.Code == 200 && json.Unmarshal(body, &m) == nil {
			if p, ok := m["price_cents"].(float64); ok {
				m["price_cents"] = p + 1
				body, _ = json.Marshal(m)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		io.Copy(w, bytes.NewReader(body))
	})
}
