package shadow

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/sim"
)

// shopCfg is a quick shop: short tokens so sessions refresh within a few
// seconds, small service times.
func shopCfg() shop.Config {
	return shop.Config{AccessTTL: time.Second, NoServiceTime: true}
}

// simCfg drives a few users quickly through url, every one refreshing
// ahead of expiry so the primary has no violations either.
func simCfg(url string, users int, d time.Duration) sim.Config {
	return sim.Config{
		BaseURL: url, Users: users, Seed: 7, Duration: d, MaxRequests: 5000,
		ArrivalWindow: 500 * time.Millisecond, Think: sim.LogNormal{Median: 100 * time.Millisecond, Sigma: 0.3},
		NoReactive: true, RequestTimeout: 5 * time.Second,
	}
}

// startProxy runs RunProxy in the background and returns its address and
// a function that stops it and returns what it did.
func startProxy(t testing.TB, upstream string, cfg Config) (string, func() (Summary, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := RunProxy(ctx, SourceConfig{Listen: "127.0.0.1:0", Upstream: upstream, OnListen: func(a string) { addrc <- a }}, cfg)
		done <- result{sum, err}
	}()
	select {
	case a := <-addrc:
		return a, func() (Summary, error) { cancel(); r := <-done; return r.sum, r.err }
	case r := <-done:
		cancel()
		t.Fatalf("proxy did not start: %v", r.err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("proxy did not start within 5s")
	}
	return "", nil
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
