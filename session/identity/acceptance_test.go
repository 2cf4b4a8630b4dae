package identity_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// This acceptance test runs the real shop and its simulated users through
// the real recording proxy on loopback, then tracks sessions over what was
// recorded and compares them with the simulator's own record: the same
// sessions, each holding exactly one user's requests of one login, the
// same logins and refreshes, proactive and reactive alike; and the same
// again after redacting every token and cookie.

func track(t *testing.T, xs []*session.Exchange, redactor *redact.Redactor) ([]*session.Exchange, []session.Timeline) {
	t.Helper()
	cp := make([]*session.Exchange, len(xs))
	for i, x := range xs {
		c := *x
		c.Request.Header = append(session.Headers(nil), x.Request.Header...)
		c.Response.Header = append(session.Headers(nil), x.Response.Header...)
		c.Request.Body = append([]byte(nil), x.Request.Body...)
		c.Response.Body = append([]byte(nil), x.Response.Body...)
		c.Session, c.Tokens = "", nil
		if redactor != nil {
			redactor.Apply(&c)
		}
		cp[i] = &c
	}
	tr, err := identity.NewTracker()
	if err != nil {
		t.Fatal(err)
	}
	out := shoptest.Collect(t, tr.Annotate(session.NewSliceSource(cp...)))
	return out, tr.Close()
}

func TestAcceptanceShop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shop and its users for a few seconds")
	}
	tests := []struct {
		name   string
		mutate func(*sim.Config)
	}{
		// The default mix: a quarter of users refresh only after a 401,
		// one connection each, some users log in twice.
		{"mixed", nil},
		// Browsers with parallel connections: refreshes race requests in
		// flight and tokens are reused across connections.
		{"parallel", func(c *sim.Config) { c.ParallelConns = 3; c.Seed = 3 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sim.Config{
				Seed: 1, Users: 30, ArrivalWindow: time.Second,
				Think:    sim.LogNormal{Median: 150 * time.Millisecond, Sigma: 0.8},
				Duration: 60 * time.Second, MaxRequests: 20_000, MaxSessions: 3,
			}
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			raw, truth := shoptest.RecordShop(t, shop.Config{AccessTTL: 2 * time.Second, Seed: cfg.Seed}, cfg)
			if truth.Stop != "done" {
				t.Fatalf("simulation stopped by %q", truth.Stop)
			}
			users := shoptest.ConnUsers(t, raw)
			t.Run("plain", func(t *testing.T) {
				xs, tls := track(t, raw, nil)
				shoptest.CompareSessions(t, users, xs, tls, truth, 0)
			})
			t.Run("redacted", func(t *testing.T) {
				r, err := redact.New(redact.Config{
					Headers:    []string{"Authorization"},
					Cookies:    []string{shop.SessionCookie},
					JSONFields: []string{"access_token", "refresh_token"},
					FormFields: []string{"refresh_token", "username"},
				})
				if err != nil {
					t.Fatal(err)
				}
				xs, tls := track(t, raw, r)
				for _, x := range xs {
					if a := x.Request.Header.Get("Authorization"); a != "" && !redact.IsHash(a[len("Bearer "):]) {
						t.Fatalf("authorization %q not redacted", a)
					}
				}
				shoptest.CompareSessions(t, users, xs, tls, truth, 0)
			})
		})
	}
}

// ExampleTracker_Annotate shows the front door: wrap any exchange source
// (a recording, the capture pipeline, the proxy) and read it back with
// sessions and token events filled in.
func ExampleTracker_Annotate() {
	login := &session.Exchange{
		Request: session.Request{Method: "POST", Target: "/oauth/token",
			Header: session.Headers{{Name: "Content-Type", Value: "application/x-www-form-urlencoded"}},
			Body:   []byte("grant_type=password&username=ann&password=secret")},
		Response: session.Response{Status: 200,
			Header: session.Headers{{Name: "Content-Type", Value: "application/json"}},
			Body:   []byte(`{"access_token":"A1","refresh_token":"R1","expires_in":60}`)},
		Timing: session.Timing{RequestStart: 1e9, ResponseStart: 1.01e9, ResponseEnd: 1.02e9},
	}
	call := &session.Exchange{
		Request:  session.Request{Method: "GET", Target: "/api/cart", Header: session.Headers{{Name: "Authorization", Value: "Bearer A1"}}},
		Response: session.Response{Status: 200},
		Timing:   session.Timing{RequestStart: 2e9, ResponseEnd: 2.01e9},
	}
	tr, _ := identity.NewTracker(identity.WithRuleText("auto"))
	src := tr.Annotate(session.NewSliceSource(call, login)) // out of order: Annotate sorts
	for {
		x, err := src.Next()
		if err != nil {
			break
		}
		fmt.Println(x.Request.Target, x.Session, len(x.Tokens), "token events")
	}
	for _, tl := range tr.Close() {
		fmt.Printf("%s via %s: %d exchanges, %d login\n", tl.Key, tl.Via, tl.Exchanges, tl.Logins)
	}
	// Output:
	// /oauth/token s-000001 2 token events
	// /api/cart s-000001 0 token events
	// s-000001 via login: 2 exchanges, 1 login
}

// TestAcceptancePcap tracks sessions in the fixture pcap (real loopback
// traffic of the simulator against the shop, written by tcpdump) through
// the capture pipeline, and compares them with that run's ground truth.
func TestAcceptancePcap(t *testing.T) {
	const dir = "../../fixtures/testdata/"
	truth := shoptest.ReadTruthFile(t, dir+"shop.truth.json")
	src, err := pcapfile.Open(dir + "shop.pcap")
	if err != nil {
		t.Fatal(err)
	}
	p, err := capture.FromPackets(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	raw := shoptest.Collect(t, p)
	// The fixture pcap ends a moment early: the run's last request (a
	// logout) is not in it, as tcpdump shows. Allow that one.
	const missing = 1
	users := shoptest.ConnUsers(t, raw)
	t.Logf("capture: %d exchanges from %d packets; truth: %d requests", len(raw), p.Counters().PacketsSeen, truth.Summary().Requests)
	t.Run("plain", func(t *testing.T) {
		xs, tls := track(t, raw, nil)
		shoptest.CompareSessions(t, users, xs, tls, truth, missing)
	})
	t.Run("redacted", func(t *testing.T) {
		r, err := redact.New(redact.Config{
			Headers: []string{"Authorization"}, Cookies: []string{shop.SessionCookie},
			JSONFields: []string{"access_token", "refresh_token"}, FormFields: []string{"refresh_token"},
		})
		if err != nil {
			t.Fatal(err)
		}
		xs, tls := track(t, raw, r)
		shoptest.CompareSessions(t, users, xs, tls, truth, missing)
	})
}
