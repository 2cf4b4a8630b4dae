package shadow

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/fixtures/sim"
	"github.com/reprise-tool/reprise/replay/guard"
)

// The simulator drives a shop through the proxy while every session is
// mirrored to a second shop: the second shop sees the same logins,
// refreshes, logouts and orders, with zero violations, and the comparison
// reports nothing (tokens, order ids and timestamps differ in every
// answer, and are noise).
func TestMirrorShopSessions(t *testing.T) {
	primary := shoptest.StartShop(t, shopCfg())
	second := shoptest.StartShop(t, shopCfg())
	addr, stop := startProxy(t, primary.URL(), Config{Shadow: second.URL(), AllowWrites: true})
	truth, err := sim.Run(context.Background(), simCfg("http://"+addr, 8, 4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	ps, ss := primary.Stats(), second.Stats()
	t.Logf("sim: %d requests; primary: %d logins %d refreshes %d logouts %d orders; shadow: %d/%d/%d/%d; mirror %+v",
		truth.Requests, ps.Logins, ps.Refreshes, ps.Logouts, ps.Orders, ss.Logins, ss.Refreshes, ss.Logouts, ss.Orders, sum.Stats)
	if ps.Violations.Total() != 0 {
		t.Errorf("primary violations %+v", ps.Violations)
	}
	if ss.Violations.Total() != 0 {
		t.Errorf("shadow violations %+v, want none", ss.Violations)
	}
	if ps.Logins == 0 || ps.Refreshes == 0 {
		t.Fatalf("the run had %d logins and %d refreshes; it proves nothing", ps.Logins, ps.Refreshes)
	}
	if ss.Logins != ps.Logins || ss.Refreshes != ps.Refreshes || ss.Logouts != ps.Logouts || ss.Orders != ps.Orders {
		t.Errorf("shadow saw %d logins %d refreshes %d logouts %d orders, primary %d %d %d %d",
			ss.Logins, ss.Refreshes, ss.Logouts, ss.Orders, ps.Logins, ps.Refreshes, ps.Logouts, ps.Orders)
	}
	if sum.Stats.ShedTotal() != 0 || sum.Stats.Uncorrelated != 0 || sum.Stats.Errors != 0 {
		t.Errorf("mirror lost requests: %+v", sum.Stats)
	}
	if got := sum.Compare.Reported(); len(got) != 0 {
		t.Errorf("identical shops reported as differing: %q", got)
	}
}

// A candidate that answers one route with a changed field is reported on
// that route and field only, whether noise is learned by sending requests
// twice or from a known-good baseline.
func TestCompareCandidate(t *testing.T) {
	for _, withBaseline := range []bool{false, true} {
		name := "twice"
		if withBaseline {
			name = "baseline"
		}
		t.Run(name, func(t *testing.T) {
			primary := shoptest.StartShop(t, shopCfg())
			cand, err := shop.New(shopCfg())
			if err != nil {
				t.Fatal(err)
			}
			candSrv := httptest.NewServer(priceRewriter(cand))
			defer candSrv.Close()
			cfg := Config{Shadow: candSrv.URL, AllowWrites: true}
			var base *shop.Server
			if withBaseline {
				base = shoptest.StartShop(t, shopCfg())
				cfg.Baseline = base.URL()
			}
			addr, stop := startProxy(t, primary.URL(), cfg)
			if _, err := sim.Run(context.Background(), simCfg("http://"+addr, 8, 4*time.Second)); err != nil {
				t.Fatal(err)
			}
			sum, err := stop()
			if err != nil {
				t.Fatal(err)
			}
			got := sum.Compare.Reported()
			want := []string{"GET /api/products/{id} $.price_cents"}
			if !slices.Equal(got, want) {
				t.Errorf("reported %q, want %q", got, want)
			}
			if v := cand.Stats().Violations; v.Total() != 0 {
				t.Errorf("candidate violations %+v", v)
			}
			if base != nil {
				if v := base.Stats().Violations; v.Total() != 0 {
					t.Errorf("baseline violations %+v", v)
				}
				if sum.Compare.NoiseSamples != sum.Compare.Compared {
					t.Errorf("%d noise samples for %d comparisons; a baseline gives one each", sum.Compare.NoiseSamples, sum.Compare.Compared)
				}
			}
			for _, r := range sum.Compare.Routes {
				if r.Route == "GET /api/products/{id}" && r.Share < 0.99 {
					t.Errorf("share of differing product answers %.2f, want all", r.Share)
				}
			}
			t.Logf("compared %d answers, %d noise samples", sum.Compare.Compared, sum.Compare.NoiseSamples)
		})
	}
}

// A shadow killed mid-run costs the primary nothing: the users see no
// error and no violation, the mirror counts what it lost, and its guard
// stops feeding the dead shadow.
func TestShadowKilledMidRun(t *testing.T) {
	primary := shoptest.StartShop(t, shopCfg())
	second, err := shop.NewServer(shopCfg())
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	rules, _ := guard.ParseRules("error_rate>50%")
	addr, stop := startProxy(t, primary.URL(), Config{Shadow: second.URL(), AllowWrites: true, Abort: rules, AbortWindow: 2 * time.Second})
	killAt := time.Now().Add(800 * time.Millisecond)
	time.AfterFunc(time.Until(killAt), func() { second.Close() })
	truth, err := sim.Run(context.Background(), simCfg("http://"+addr, 8, 4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := stop()
	var abort *guard.AbortError
	if err != nil && !errors.As(err, &abort) {
		t.Fatal(err)
	}
	var before, after []time.Duration
	for _, u := range truth.Users {
		if u.Err != "" {
			t.Errorf("user %s stopped: %s", u.ID, u.Err)
		}
		for _, r := range u.Requests {
			if r.Status == 0 || r.Status >= 500 {
				t.Errorf("user %s: %s %s answered %d %s", u.ID, r.Method, r.Path, r.Status, r.Err)
			}
			if r.Start.Before(killAt) {
				before = append(before, r.Duration)
			} else {
				after = append(after, r.Duration)
			}
		}
	}
	slices.Sort(before)
	slices.Sort(after)
	if len(before) > 0 && len(after) > 0 {
		mb, ma := before[len(before)/2], after[len(after)/2]
		t.Logf("users' median latency through the proxy: %v with the shadow alive, %v after it was killed", mb, ma)
		if ma > 2*mb+2*time.Millisecond {
			t.Errorf("median latency after the kill %v, above 2x before + 2ms (%v)", ma, 2*mb+2*time.Millisecond)
		}
	}
	if v := primary.Stats().Violations; v.Total() != 0 {
		t.Errorf("primary violations %+v", v)
	}
	lost := sum.Stats.Errors + sum.Stats.ShedTotal() + sum.Stats.Skipped["broken"] + sum.Stats.Uncorrelated
	if lost == 0 {
		t.Errorf("the dead shadow's loss was not counted: %+v", sum.Stats)
	}
	t.Logf("mirror %+v, trip %v", sum.Stats, sum.Trip)
}
