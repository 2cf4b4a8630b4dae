package check

import (
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/replay/schedule"
)

// hand builds a Recording from requests given as (session, offset,
// duration) with flags, every one kept.
type hreq struct {
	sess     int32
	off, dur time.Duration
	ttl      time.Duration
	flags    reqFlags
}

func hand(reqs ...hreq) *Recording {
	rec := &Recording{Routes: []string{"GET /x"}, SessionsFrom: "recording"}
	n := int32(0)
	for _, r := range reqs {
		n = max(n, r.sess+1)
		rec.Requests = append(rec.Requests, Request{Offset: r.off, Duration: r.dur, TTL: r.ttl, Session: r.sess, flags: r.flags | flagKept})
	}
	for i := int32(0); i < n; i++ {
		rec.Sessions = append(rec.Sessions, "s"+string(rune('a'+i)))
	}
	return rec
}

const ms = time.Millisecond

func TestSimulate(t *testing.T) {
	ten := make([]hreq, 10)
	for i := range ten {
		ten[i] = hreq{sess: int32(i)}
	}
	four := []hreq{{sess: 0, dur: time.Second}, {sess: 1, dur: time.Second}, {sess: 2, dur: time.Second}, {sess: 3, dur: time.Second}}
	tests := []struct {
		name  string
		rec   *Recording
		sp    simParams
		check func(t *testing.T, p Profile)
	}{
		{
			// Ten requests due at once under a 10/s cap (burst 1) go out
			// 100 ms apart: the last is 900 ms late, the median 400 ms.
			name: "rate cap", rec: hand(ten...), sp: simParams{pacer: schedule.Speed(1), rate: 10, slipAt: 500 * ms},
			check: func(t *testing.T, p Profile) {
				if p.Lag.Max != 900 || p.Lag.P50 != 400 {
					t.Errorf("lag max %v p50 %v, want 900 and 400 ms", p.Lag.Max, p.Lag.P50)
				}
				if p.PeakRPS != 10 || p.SlipS != 1 {
					t.Errorf("peak %d/s, slip %vs; want 10 and 1", p.PeakRPS, p.SlipS)
				}
			},
		},
		{
			// Four 1 s requests with two slots: two wait a second, the
			// run takes 2 s and never has more than two in flight.
			name: "in-flight cap", rec: hand(four...), sp: simParams{pacer: schedule.Speed(1), maxInFlight: 2},
			check: func(t *testing.T, p Profile) {
				if p.Lag.Max != 1000 || p.PeakConcurrency != 2 || p.DurationS != 2 {
					t.Errorf("lag max %v, in flight %d, duration %v; want 1000 ms, 2, 2 s", p.Lag.Max, p.PeakConcurrency, p.DurationS)
				}
			},
		},
		{
			// Without the cap all four are in flight at once.
			name: "no cap", rec: hand(four...), sp: simParams{pacer: schedule.Speed(1)},
			check: func(t *testing.T, p Profile) {
				if p.Lag.Max != 0 || p.PeakConcurrency != 4 || p.PeakSessions != 4 {
					t.Errorf("lag %v, in flight %d, sessions %d; want 0, 4, 4", p.Lag.Max, p.PeakConcurrency, p.PeakSessions)
				}
			},
		},
		{
			// B started 500 ms after A completed; at 10x it is due at
			// 150 ms but A (1 s of service, not compressed) completes at
			// 1 s: B waits 850 ms for its session's order.
			name: "order wait", rec: hand(hreq{sess: 0, dur: time.Second}, hreq{sess: 0, off: 1500 * ms}),
			sp: simParams{pacer: schedule.Speed(10)},
			check: func(t *testing.T, p Profile) {
				if p.OrderWaits != 1 || p.OrderWait.Max != 850 || p.Lag.Max != 850 {
					t.Errorf("order waits %d max %v, lag %v; want 1, 850 ms, 850 ms", p.OrderWaits, p.OrderWait.Max, p.Lag.Max)
				}
			},
		},
		{
			// Requests that overlapped in the recording do not wait for
			// each other.
			name: "overlap", rec: hand(hreq{sess: 0, dur: time.Second}, hreq{sess: 0, off: 500 * ms, dur: time.Second}),
			sp: simParams{pacer: schedule.Speed(10)},
			check: func(t *testing.T, p Profile) {
				if p.OrderWaits != 0 || p.PeakConcurrency != 2 {
					t.Errorf("order waits %d, in flight %d; want 0 and 2", p.OrderWaits, p.PeakConcurrency)
				}
			},
		},
		{
			// A 10 s token used at 8 s: at 0.5x it is used at 16 s, past
			// its lifetime on the server.
			name: "expired at half speed", rec: hand(hreq{sess: 0, ttl: 10 * time.Second, flags: flagAuth}, hreq{sess: 0, off: 8 * time.Second}),
			sp: simParams{pacer: schedule.Speed(0.5)},
			check: func(t *testing.T, p Profile) {
				if p.ExpiredTokenRequests != 1 || p.TokenLifetimeS != 10 {
					t.Errorf("expired %d, lifetime %v; want 1 and 10 s", p.ExpiredTokenRequests, p.TokenLifetimeS)
				}
			},
		},
		{
			// The recording's 401 at 11 s (token expired at 10 s) is sent
			// at 5.5 s at 2x with the live token: it is alive, the 401
			// will not recur.
			name: "unrepeated 401", rec: hand(hreq{sess: 0, ttl: 10 * time.Second, flags: flagAuth}, hreq{sess: 0, off: 11 * time.Second, flags: flagRejected}),
			sp: simParams{pacer: schedule.Speed(2), rejected: replay.RejectedLive},
			check: func(t *testing.T, p Profile) {
				if p.Unrepeated401s != 1 || p.ExpiredTokenRequests != 0 || p.Rejected401s != 1 {
					t.Errorf("unrepeated %d, expired %d, rejected %d; want 1, 0, 1", p.Unrepeated401s, p.ExpiredTokenRequests, p.Rejected401s)
				}
			},
		},
		{
			// Sent as recorded (replay's default) the 401 recurs.
			name: "401 as recorded", rec: hand(hreq{sess: 0, ttl: 10 * time.Second, flags: flagAuth}, hreq{sess: 0, off: 11 * time.Second, flags: flagRejected}),
			sp: simParams{pacer: schedule.Speed(2)},
			check: func(t *testing.T, p Profile) {
				if p.Unrepeated401s != 0 || p.ExpiredTokenRequests != 0 || p.Rejected401s != 1 {
					t.Errorf("unrepeated %d, expired %d, rejected %d; want 0, 0, 1", p.Unrepeated401s, p.ExpiredTokenRequests, p.Rejected401s)
				}
			},
		},
		{
			// Skipped, it is not sent at all.
			name: "401 skipped", rec: hand(hreq{sess: 0, ttl: 10 * time.Second, flags: flagAuth}, hreq{sess: 0, off: 11 * time.Second, flags: flagRejected}),
			sp: simParams{pacer: schedule.Speed(2), rejected: replay.RejectedSkip},
			check: func(t *testing.T, p Profile) {
				if p.Requests != 1 || p.Rejected401s != 0 {
					t.Errorf("requests %d, rejected %d; want 1 and 0", p.Requests, p.Rejected401s)
				}
			},
		},
		{
			// A refresh 50 s after a 60 s token's issue, at 10x: 5 s.
			name: "refresh interval", rec: hand(hreq{sess: 0, ttl: time.Minute, flags: flagAuth}, hreq{sess: 0, off: 50 * time.Second, ttl: time.Minute, flags: flagAuth | flagRefresh}),
			sp: simParams{pacer: schedule.Speed(10)},
			check: func(t *testing.T, p Profile) {
				if p.RefreshIntervalS != 5 || p.Refreshes != 1 || p.TokenUse != 5.0/60 {
					t.Errorf("interval %v, refreshes %d, use %v; want 5 s, 1, 1/12", p.RefreshIntervalS, p.Refreshes, p.TokenUse)
				}
			},
		},
		{
			// Three clones of two sessions: six requests, the clones
			// 50 ms apart.
			name: "scale", rec: hand(hreq{sess: 0}, hreq{sess: 1}), sp: simParams{pacer: schedule.Speed(1), clones: 3, stagger: 50 * ms},
			check: func(t *testing.T, p Profile) {
				if p.Requests != 6 || p.Sessions != 6 || p.DurationS != 0.1 {
					t.Errorf("requests %d, sessions %d, duration %v; want 6, 6, 0.1 s", p.Requests, p.Sessions, p.DurationS)
				}
			},
		},
		{
			// One session at a time: the second starts when the first
			// (1 s long) ends.
			name: "session cap", rec: hand(hreq{sess: 0, dur: time.Second}, hreq{sess: 1, dur: time.Second}),
			sp: simParams{pacer: schedule.Speed(1), maxSessions: 1},
			check: func(t *testing.T, p Profile) {
				if p.Lag.Max != 1000 || p.PeakSessions != 1 {
					t.Errorf("lag %v, sessions at once %d; want 1000 ms and 1", p.Lag.Max, p.PeakSessions)
				}
			},
		},
		{
			// Speed max: everything due at once, only order and caps pace it.
			name: "max", rec: hand(hreq{sess: 0, dur: time.Second}, hreq{sess: 0, off: time.Hour}),
			sp: simParams{},
			check: func(t *testing.T, p Profile) {
				if p.DurationS != 1 || p.OrderWaits != 1 {
					t.Errorf("duration %v, order waits %d; want 1 s and 1", p.DurationS, p.OrderWaits)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := simulate(tc.rec, tc.sp)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

// findings returns the checks named in res's findings at level.
func findings(res *Result, level Level) []string {
	var out []string
	for _, f := range res.Findings {
		if f.Level == level {
			out = append(out, f.Check)
		}
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustRamp(t testing.TB, s string) *ramp.Ramp {
	t.Helper()
	r, err := ramp.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCheckPlan is the acceptance of the plan check on a population whose
// users refresh their 60 s tokens 5 s ahead of expiry, most arriving in a
// peak.
func TestCheckPlan(t *testing.T) {
	rec := defaultPopulation().recording(t, Filter{})
	excluded := defaultPopulation().recording(t, Filter{Exclude: []string{`^/api/products/[0-9]+`}})
	reactive := defaultPopulation()
	reactive.reactive = 0.5
	recReactive := reactive.recording(t, Filter{})
	tests := []struct {
		name    string
		rec     *Recording
		plan    Plan
		verdict Level
		want    []string // checks that must be among the findings at the verdict's level
		text    string   // a substring of those findings
		warns   []string // checks that must be among the warnings
		not     []string // checks that must not be among the findings
	}{
		// Replaying as recorded is as real as it gets.
		{name: "faithful 1x", rec: rec, plan: Plan{}, verdict: Pass},
		// Half speed: the recorded refreshes come after the server's 60 s
		// lifetimes, so live tokens expire under the sessions.
		{name: "slow speed breaks refresh timing", rec: rec, plan: Plan{Speed: 0.5}, verdict: Fail, want: []string{"expired_tokens"}, text: "past its 1m0s lifetime"},
		// A ramp that holds 1x for a minute and then jumps to 10x just
		// as the peak's users refresh: 81% of refreshes but 51% of
		// requests fall in the busiest tenth of seconds (recording: 24%
		// and 18%), 24 points beyond the traffic, 14 of them chance.
		{name: "ramp crowds refreshes", rec: rec, plan: Plan{SpeedRamp: mustRamp(t, "1x:1m,10x")}, verdict: Warn, want: []string{"refresh_peak", "refresh_compression"}, text: "beyond the traffic"},
		// A ramp that reaches 10x before the peak's refreshes packs the
		// traffic into its fastest seconds, refreshes no more than the
		// rest: no refresh_peak finding (see below), only the compression.
		{name: "ramp packs the traffic", rec: rec, plan: Plan{SpeedRamp: mustRamp(t, "1x:30s,10x")}, verdict: Warn, want: []string{"refresh_compression"}, not: []string{"refresh_peak"}},
		// 10x: tokens renewed ten times sooner than the server expects.
		{name: "10x is refresh-heavy", rec: rec, plan: Plan{Speed: 10}, verdict: Warn, want: []string{"refresh_compression"}, text: "refresh-heavy"},
		// 40x: beyond the fail threshold of 20.
		{name: "40x breaks refresh timing", rec: rec, plan: Plan{Speed: 40}, verdict: Fail, want: []string{"refresh_compression"}},
		// A rate cap far below the peak: the schedule slips by minutes and
		// refreshes come too late.
		{name: "rate cap slips", rec: rec, plan: Plan{Speed: 3, Rate: 5}, verdict: Fail, want: []string{"rate_cap", "expired_tokens"}, text: "raise --rate to"},
		// Too few slots for the requests in flight at 10x.
		{name: "in-flight cap slips", rec: rec, plan: Plan{Speed: 10, MaxInFlight: 1}, verdict: Fail, want: []string{"inflight_cap"}, text: "raise --max-inflight to"},
		// Too few sessions at once.
		{name: "session cap slips", rec: rec, plan: Plan{MaxSessions: 5}, verdict: Fail, want: []string{"session_cap"}},
		// A filter that drops a route changes the mix before anything
		// is sent.
		{name: "filter changes the mix", rec: excluded, plan: Plan{}, verdict: Warn, want: []string{"filters"}, text: "GET /api/products/{id}"},
		// Users who refresh after a 401: at 2x with --rejected live the
		// expired tokens are still alive when sent, so the 401s do not
		// recur and the retries repeat their effect.
		{name: "rejected live", rec: recReactive, plan: Plan{Speed: 2, Rejected: replay.RejectedLive}, verdict: Warn, want: []string{"unrepeated_401s"}, text: "keep --rejected recorded"},
		// As recorded (the default) they recur: no such finding.
		{name: "rejected as recorded", rec: recReactive, plan: Plan{Speed: 2}, verdict: Warn, want: []string{"refresh_compression"}},
		// Scale multiplies the refresh load.
		{name: "scale multiplies refreshes", rec: rec, plan: Plan{Scale: 5}, verdict: Warn, want: []string{"refresh_density"}},
		// Max ignores timing altogether: refreshes come a hundred times
		// too soon, and it says so.
		{name: "speed max", rec: rec, plan: Plan{Max: true}, verdict: Fail, want: []string{"refresh_compression"}, warns: []string{"speed_max"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := CheckPlan(tc.rec, tc.plan, DefaultThresholds())
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s; findings: %v", res.Verdict, tc.verdict, res.Findings)
			}
			got := findings(res, tc.verdict)
			for _, w := range tc.want {
				if !has(got, w) {
					t.Errorf("no %s finding %q among %v", tc.verdict, w, res.Findings)
				}
			}
			for _, w := range tc.not {
				if has(findings(res, Warn), w) || has(findings(res, Fail), w) {
					t.Errorf("finding %q among %v", w, res.Findings)
				}
			}
			for _, w := range tc.warns {
				if !has(findings(res, Warn), w) {
					t.Errorf("no warning %q among %v", w, res.Findings)
				}
			}
			if tc.text != "" {
				found := false
				for _, f := range res.Findings {
					found = found || strings.Contains(f.Message, tc.text)
				}
				if !found {
					t.Errorf("no finding says %q: %v", tc.text, res.Findings)
				}
			}
		})
	}
}

func TestPlanValidate(t *testing.T) {
	rec := hand(hreq{sess: 0})
	for _, p := range []Plan{{Speed: 1000}, {Speed: 0.01}, {Scale: -1}, {Rate: -1}, {SpeedRamp: mustRamp(t, "scale=1:1m,scale=2")}} {
		if _, err := CheckPlan(rec, p, DefaultThresholds()); err == nil {
			t.Errorf("CheckPlan(%+v) accepted a bad plan", p)
		}
	}
}
