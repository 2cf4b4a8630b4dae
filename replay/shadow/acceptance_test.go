package shadow

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"sync"
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
// answer, and are noise). Tokens last 2 s, so the users refresh within
// the run while a mirror delayed by a loaded machine still finds them
// valid.
func TestMirrorShopSessions(t *testing.T) {
	primary := shoptest.StartShop(t, mirrorShopCfg())
	second := shoptest.StartShop(t, mirrorShopCfg())
	addr, stop := startProxy(t, primary.URL(), Config{Shadow: second.URL(), AllowWrites: true})
	truth, err := sim.Run(context.Background(), simCfg("http://"+addr, 8, simBound))
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
// twice or from a known-good baseline. Tokens outlive the run, so a
// mirror delayed by a loaded machine cannot reach the candidate with an
// expired one.
func TestCompareCandidate(t *testing.T) {
	for _, withBaseline := range []bool{false, true} {
		name := "twice"
		if withBaseline {
			name = "baseline"
		}
		t.Run(name, func(t *testing.T) {
			primary := shoptest.StartShop(t, longShopCfg())
			cand, err := shop.New(longShopCfg())
			if err != nil {
				t.Fatal(err)
			}
			candSrv := httptest.NewServer(priceRewriter(cand))
			defer candSrv.Close()
			cfg := Config{Shadow: candSrv.URL, AllowWrites: true}
			var base *shop.Server
			if withBaseline {
				base = shoptest.StartShop(t, longShopCfg())
				cfg.Baseline = base.URL()
			}
			addr, stop := startProxy(t, primary.URL(), cfg)
			if _, err := sim.Run(context.Background(), simCfg("http://"+addr, 8, simBound)); err != nil {
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

// A shadow killed mid-run costs the primary nothing material: the users
// see no error and no violation, the mirror counts what it lost, and its
// guard stops feeding the dead shadow. The cost is judged against a
// control run at the same time: the same users through a second proxy
// whose shadow stays alive, so that both see the same load on the
// machine. The bound is generous (twice the control's median plus the
// control's own spread, p90-p10): a proxy that waited on its dead shadow
// would be far beyond it; the precise figures are
// BenchmarkProxyAddedLatency's. Tokens outlive the run and the run's
// bound is far off, so neither expires under a slow machine.
func TestShadowKilledMidRun(t *testing.T) {
	rules, err := guard.ParseRules("error_rate>50%")
	if err != nil {
		t.Fatal(err)
	}
	type arm struct {
		name    string
		primary *shop.Server
		addr    string
		stop    func() (Summary, error)
		truth   *sim.Truth
		err     error
	}
	start := func(name, shadowURL string) *arm {
		a := &arm{name: name, primary: shoptest.StartShop(t, longShopCfg())}
		a.addr, a.stop = startProxy(t, a.primary.URL(), Config{Shadow: shadowURL, AllowWrites: true, Abort: rules, AbortWindow: 2 * time.Second})
		return a
	}
	second, err := shop.NewServer(longShopCfg())
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	killed := start("killed", second.URL())
	control := start("control", shoptest.StartShop(t, longShopCfg()).URL())
	arms := []*arm{killed, control}
	killAt := time.Now().Add(800 * time.Millisecond)
	time.AfterFunc(time.Until(killAt), func() { second.Close() })
	var wg sync.WaitGroup
	for _, a := range arms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.truth, a.err = sim.Run(context.Background(), simCfg("http://"+a.addr, 8, simBound))
		}()
	}
	wg.Wait()
	sums := map[string]Summary{}
	for _, a := range arms {
		if a.err != nil {
			t.Fatalf("%s: %v", a.name, a.err)
		}
		sum, err := a.stop()
		var abort *guard.AbortError
		if err != nil && !errors.As(err, &abort) {
			t.Fatalf("%s: %v", a.name, err)
		}
		sums[a.name] = sum
		for _, u := range a.truth.Users {
			if u.Err != "" {
				t.Errorf("%s: user %s stopped: %s", a.name, u.ID, u.Err)
			}
			for _, r := range u.Requests {
				if r.Status == 0 || r.Status >= 500 {
					t.Errorf("%s: user %s: %s %s answered %d %s", a.name, u.ID, r.Method, r.Path, r.Status, r.Err)
				}
			}
		}
		if v := a.primary.Stats().Violations; v.Total() != 0 {
			t.Errorf("%s: primary violations %+v", a.name, v)
		}
	}
	// split returns the users' latencies through the proxy before and
	// after the kill, sorted.
	split := func(tr *sim.Truth) (before, after []time.Duration) {
		for _, u := range tr.Users {
			for _, r := range u.Requests {
				if r.Start.Before(killAt) {
					before = append(before, r.Duration)
				} else {
					after = append(after, r.Duration)
				}
			}
		}
		slices.Sort(before)
		slices.Sort(after)
		return before, after
	}
	kb, ka := split(killed.truth)
	cb, ca := split(control.truth)
	t.Logf("users' median latency through the proxy before/after the kill: %v/%v with the shadow killed, %v/%v with the control's alive",
		quantile(kb, .5), quantile(ka, .5), quantile(cb, .5), quantile(ca, .5))
	if len(ka) > 0 && len(ca) > 0 {
		spread := max(2*time.Millisecond, quantile(ca, .9)-quantile(ca, .1))
		m, bound := quantile(ka, .5), 2*quantile(ca, .5)+spread
		if m > bound {
			t.Errorf("median latency after the kill %v, above 2x the control's %v + its spread %v (%v)", m, quantile(ca, .5), spread, bound)
		}
		t.Logf("after the kill: median %v, bound %v", m, bound)
	} else {
		t.Errorf("no request after the kill (%d killed, %d control): the run proves nothing", len(ka), len(ca))
	}
	sum := sums["killed"]
	lost := sum.Stats.Errors + sum.Stats.ShedTotal() + sum.Stats.Skipped["broken"] + sum.Stats.Uncorrelated
	if lost == 0 {
		t.Errorf("the dead shadow's loss was not counted: %+v", sum.Stats)
	}
	t.Logf("mirror %+v, trip %v; control %+v", sum.Stats, sum.Trip, sums["control"].Stats)
}
