package check

import (
	"fmt"
	"math"
	"time"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/schedule"
	"github.com/reprise-tool/reprise/session/identity"
)

// PlanResult is the prediction for a plan.
type PlanResult struct {
	Plan string `json:"plan"`
	// FilteredOut counts the recording's requests the plan's filters
	// leave out.
	FilteredOut int `json:"filtered_out"`
	// Demand is the load the schedule asks for with no cap (caps can only
	// delay requests); Predicted is what the target is predicted to see
	// with the plan's caps.
	Demand    Profile `json:"demand"`
	Predicted Profile `json:"predicted"`
}

// baseline is the recording's own load: every request at 1x, no cap.
func baseline(rec *Recording, th Thresholds) (Profile, error) {
	return simulate(rec, simParams{pacer: schedule.Speed(1), clones: 1, all: true, slipAt: secDur(th.SlipAt)})
}

func secDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// CheckPlan predicts the load a replay of rec under plan will produce and
// how it distorts the recording's real usage, and judges it against th.
// The recording's requests left out by rec.Filter are left out of the
// prediction (and counted as a finding).
func CheckPlan(rec *Recording, plan Plan, th Thresholds) (*Result, error) {
	if err := plan.validate(); err != nil {
		return nil, err
	}
	base, err := baseline(rec, th)
	if err != nil {
		return nil, err
	}
	sp := simParams{pacer: plan.pacer(), clones: plan.clones(), scaleRamp: plan.ScaleRamp,
		stagger: plan.CloneStagger, slipAt: secDur(th.SlipAt), rejected: plan.Rejected,
		pooled: plan.Connections == replay.ConnectionsPooled}
	if sp.stagger == 0 {
		sp.stagger = replay.DefaultCloneStagger
	}
	demand, err := simulate(rec, sp)
	if err != nil {
		return nil, err
	}
	sp.rate, sp.maxInFlight, sp.maxSessions = plan.Rate, plan.MaxInFlight, plan.MaxSessions
	if sp.maxInFlight == 0 {
		sp.maxInFlight = replay.DefaultMaxInFlight
	}
	pred, err := simulate(rec, sp)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Recording:  RecordingInfo{Paths: rec.Paths, SessionsFrom: rec.SessionsFrom, Damaged: rec.Damaged, Load: base},
		Plan:       &PlanResult{Plan: plan.String(), FilteredOut: rec.Dropped, Demand: demand, Predicted: pred},
		Thresholds: th,
	}
	judgePlan(res, rec, plan, sp.maxInFlight, base, demand, pred, th)
	res.finish()
	return res, nil
}

func judgePlan(res *Result, rec *Recording, plan Plan, inflight int, base, demand, pred Profile, th Thresholds) {
	at := "at " + plan.String()
	if len(rec.Requests) == 0 {
		res.add(Fail, "requests", "the recording holds no request to replay")
		return
	}
	if pred.Requests == 0 {
		res.add(Fail, "filters", "the plan's filters leave no request to replay: loosen --include-path, --exclude-path, --method, --from/--to or --sessions")
		return
	}

	// Filters change the mix before anything is sent.
	if rec.Dropped > 0 {
		share := float64(rec.Dropped) / float64(len(rec.Requests))
		kept := map[string]float64{}
		for i := range rec.Requests {
			if rec.Requests[i].Kept() {
				kept[rec.Routes[rec.Requests[i].Route]]++
			}
		}
		d, worst, a, b := TotalVariation(rec.RouteCounts(), kept)
		lvl := judge(share, th.FilteredWarn, 0)
		if l := judge(d, th.MixWarn, 0); l.rank() > lvl.rank() {
			lvl = l
		}
		res.add(lvl, "filters", "the plan's filters leave out %s of the recording's requests (%s: %s of the replay, recording %s; mix distance %.2f): the replay will not be real usage",
			pct(share), worst, pct(b), pct(a), d)
	}
	if plan.Max {
		res.add(Warn, "speed_max", "--speed max ignores the recording's timing: think times, inter-arrivals and refresh timing are not kept, and only the caps pace it (predicted peak %d req/s, %d in flight, %s in all); use a number (e.g. --speed 5) for a realistic rehearsal",
			pred.PeakRPS, pred.PeakConcurrency, secs(pred.DurationS))
	}

	// Refresh timing.
	if base.Refreshes > 0 && float64(base.Refreshes) >= th.MinRefreshes {
		c := crowdingOf(base.RefreshPeak, pred.RefreshPeak, pred.Refreshes)
		res.add(judge(c.rise-c.noise, th.RefreshPeakWarn, th.RefreshPeakFail), "refresh_peak",
			"%s, refreshes crowd the busiest tenth of seconds beyond the traffic: %s of refreshes but %s of requests fall in them (recording: %s and %s), %.0f points more than recorded (chance explains %.0f), %d/s at the peak (recording: %d/s) — lower the top speed or spread the ramp's stages",
			at, pct(pred.RefreshPeak.Share), pct(pred.RefreshPeak.RequestShare), pct(base.RefreshPeak.Share), pct(base.RefreshPeak.RequestShare),
			100*c.rise, 100*c.noise, pred.PeakRefreshesPerSecond, base.PeakRefreshesPerSecond)
		if base.RefreshIntervalS > 0 && pred.RefreshIntervalS > 0 && base.TokenLifetimeS > 0 {
			c := base.RefreshIntervalS / pred.RefreshIntervalS
			res.add(judge(c, th.RefreshCompressionWarn, th.RefreshCompressionFail), "refresh_compression",
				"%s, a %s token is refreshed after %s (recording: %s, %s of its life): the target sees %.0fx the refreshes per session it expects, %d/s at the peak (recording: %d/s), since lifetimes on the server are not compressed — the replay is refresh-heavy",
				at, secs(base.TokenLifetimeS), secs(pred.RefreshIntervalS), secs(base.RefreshIntervalS), pct(base.TokenUse), c,
				pred.PeakRefreshesPerSecond, base.PeakRefreshesPerSecond)
		}
		if d := ratio(float64(pred.PeakRefreshesPerSecond), float64(base.PeakRefreshesPerSecond)); plan.clones() > 1 && d >= th.RefreshCompressionWarn && th.RefreshCompressionWarn > 0 {
			res.add(Warn, "refresh_density", "with %d clones of every session, refreshes at the peak rise from %d/s to %d/s: each clone logs in and refreshes on its own",
				plan.clones(), base.PeakRefreshesPerSecond, pred.PeakRefreshesPerSecond)
		}
	}
	if extra := pred.ExpiredTokenRequests - base.ExpiredTokenRequests; extra > 0 {
		share := float64(extra) / float64(pred.Requests)
		lvl := Warn
		if th.ExpiredFail > 0 && share >= th.ExpiredFail {
			lvl = Fail
		}
		why := "server-side token lifetimes do not stretch with a slower replay — use --speed 1 or more"
		if plan.Max || (pred.Lag.P99 > 1000*th.SlipAt && plan.topSpeed() >= 1) {
			why = "the schedule slips, so refreshes come after the live tokens expired — lift the caps that make it slip"
		}
		res.add(lvl, "expired_tokens", "%s, %d requests (%s) would carry an access token past its %s lifetime (recording: %d): %s",
			at, pred.ExpiredTokenRequests, pct(float64(pred.ExpiredTokenRequests)/float64(pred.Requests)), secs(base.TokenLifetimeS), base.ExpiredTokenRequests, why)
	}
	if pred.Unrepeated401s > 0 {
		res.add(Warn, "unrepeated_401s", "%s, %d of the recording's %d 401s will not recur with --rejected live: the live token is still within its lifetime when sent, so the target accepts them and the recorded retries repeat their effect — keep --rejected recorded",
			at, pred.Unrepeated401s, base.Rejected401s)
	}

	// Caps that make the schedule slip. Under --speed max every request
	// is due at once and the caps are the pacing, not a slip.
	if plan.Max {
		return
	}
	lagLevel := judge(pred.Lag.P99/1000, th.LagWarn, th.LagFail)
	if lagLevel == Pass {
		lagLevel = Warn // a cap below the demand always deserves a line
	}
	slip := slipText(pred, th)
	longer := ""
	if pred.DurationS > demand.DurationS*1.02 {
		longer = fmt.Sprintf("; the run takes %s instead of %s", secs(pred.DurationS), secs(demand.DurationS))
	}
	capped := false
	if plan.Rate > 0 && plan.Rate < float64(demand.PeakRPS) {
		capped = true
		res.add(lagLevel, "rate_cap", "--rate %s/s is below the plan's peak of %d req/s: %s%s — raise --rate to %d/s or lower --speed",
			num(plan.Rate), demand.PeakRPS, slip, longer, demand.PeakRPS)
	}
	if inflight < demand.PeakConcurrency {
		capped = true
		name := fmt.Sprintf("--max-inflight %d", inflight)
		if plan.MaxInFlight == 0 {
			name += " (the default)"
		}
		res.add(lagLevel, "inflight_cap", "%s is below the predicted peak of %d requests in flight: %s%s — raise --max-inflight to %d",
			name, demand.PeakConcurrency, slip, longer, demand.PeakConcurrency)
	}
	if plan.MaxSessions > 0 && plan.MaxSessions < demand.PeakSessions {
		capped = true
		res.add(lagLevel, "session_cap", "--max-sessions %d is below the %d sessions active at once: sessions start late and %s%s — raise --max-sessions to %d",
			plan.MaxSessions, demand.PeakSessions, slip, longer, demand.PeakSessions)
	}
	if !capped {
		res.add(judge(pred.Lag.P99/1000, th.LagWarn, th.LagFail), "lag",
			"%s, %d requests wait for their session's order (p99 %s): recorded latencies do not shrink with the speed, so think times shorter than them make the schedule slip: %s",
			at, pred.OrderWaits, secs(pred.OrderWait.P99/1000), slip)
	}
}

// slipText says how far behind the schedule falls and for how long.
func slipText(p Profile, th Thresholds) string {
	s := fmt.Sprintf("the schedule slips up to %s behind (p99 %s)", secs(p.Lag.Max/1000), secs(p.Lag.P99/1000))
	if p.SlipS > 0 {
		s += fmt.Sprintf(" and stays over %s late for %s (%s-%s)", secs(th.SlipAt), secs(p.SlipS), clock(p.SlipFromS), clock(p.SlipUntilS))
	}
	return s
}

// crowding says how much more a replay's refreshes crowd its busiest
// tenth of seconds than its requests do, against the recording's own
// difference. A replay that is faster in some seconds than in others (a
// ramp) packs every kind of request into them, so the share of
// refreshes at peak rises with the share of requests; only a rise beyond
// the traffic's changes refresh timing as the target sees it.
type crowding struct {
	// rise is (refresh share - request share at peak) of the replay less
	// the recording's, in shares (0.1 is ten points).
	rise float64
	// noise is how far rise moves by chance alone: two standard errors
	// of the replay's refresh share at peak, taken as a share of its n
	// refreshes around its request share at peak (kept within a tenth,
	// the share of seconds in the peak, and nine tenths): if refreshes
	// fell where requests do, that is how far they would stray. With 44
	// refreshes and a third of the requests at peak that is about 14
	// points; a rise is judged beyond it.
	noise float64
}

// crowdingOf compares the replay's refreshes and requests at its peak
// (rep, over nRep refreshes) with the recording's (rec).
func crowdingOf(rec, rep identity.PeakReport, nRep int) crowding {
	c := crowding{rise: (rep.Share - rep.RequestShare) - (rec.Share - rec.RequestShare)}
	if nRep > 0 {
		q := min(max(rep.RequestShare, 0.1), 0.9)
		c.noise = 2 * math.Sqrt(q*(1-q)/float64(nRep))
	}
	return c
}
