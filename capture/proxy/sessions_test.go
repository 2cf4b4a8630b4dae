package proxy_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/session"
)

// TestRecordSessionsMatchSimulator runs the shop's simulated users through
// Record and checks the sessions stored in the recording against the
// simulator's ground truth, the way session/identity's acceptance test
// does for a tracker run by hand: one stored timeline per user session,
// each holding one user's requests of one login and never split, and the
// same logins, refreshes and reactive refreshes per session.
func TestRecordSessionsMatchSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shop and its users for a few seconds")
	}
	tests := []struct {
		name string
		cfg  func(*sim.Config)
	}{
		// One connection per user, some refreshing only after a 401, some
		// logging in again.
		{"mixed", nil},
		// Parallel connections: refreshes race requests in flight and a
		// token is used on several connections.
		{"parallel", func(c *sim.Config) { c.ParallelConns = 3; c.Seed = 3 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sim.Config{
				Seed: 1, Users: 20, ArrivalWindow: 500 * time.Millisecond,
				Think:    sim.LogNormal{Median: 100 * time.Millisecond, Sigma: 0.8},
				Duration: 60 * time.Second, MaxRequests: 20_000, MaxSessions: 2,
			}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			srv := shoptest.StartShop(t, shop.Config{AccessTTL: 2 * time.Second, Seed: cfg.Seed})

			out := filepath.Join(t.TempDir(), "shop.rpz")
			addr, stop := shoptest.StartRecord(t, proxy.RecordConfig{
				Upstream: srv.URL(), Output: out,
				Duration: 2 * time.Minute, // a bound should the users hang
			})
			cfg.BaseURL = "http://" + addr
			truth, err := sim.Run(context.Background(), cfg)
			sum, rerr := stop()
			if err != nil {
				t.Fatal(err)
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			if truth.Stop != "done" {
				t.Fatalf("simulation stopped by %q", truth.Stop)
			}

			rd, err := session.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			xs := shoptest.Collect(t, rd)
			md := rd.Metadata()
			if len(md) != 1 || strings.Join(md[0].SessionRules, ",") != "auto" {
				t.Fatalf("metadata session rules %+v, want auto", md)
			}
			tls := rd.Timelines()
			if sum.Sessions != uint64(len(tls)) {
				t.Errorf("summary counts %d sessions, recording stores %d timelines", sum.Sessions, len(tls))
			}
			c := shoptest.CompareSessions(t, shoptest.ConnUsers(t, xs), xs, tls, truth, 0)
			if c.TruthRefreshes == 0 {
				t.Error("the run made no refresh: the test shows nothing about lineage")
			}
		})
	}
}
