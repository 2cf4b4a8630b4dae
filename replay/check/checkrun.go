package check

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// RunData is what a check reads of a finished replay: what replay.Report
// holds today, plus the per-second and distribution figures that a
// report may carry (see ReadRun). A nil or empty figure is "not measured",
// never zero.
type RunData struct {
	Speed     string  // as the report gives it: "1", "2.5", "max", a ramp
	Scale     int     // clones of each session
	DurationS float64 // start to the last response
	ExpectedS float64 // the recording's span over the speed; 0 when unknown
	// LastSendS is when the last request was sent (the schedule's own
	// length); 0 when the report does not say.
	LastSendS float64

	Scheduled, Sent, Responses, Errors, Skipped, NotSent uint64
	StatusCodes                                          map[string]uint64
	StatusMismatch                                       uint64
	ErrorsByKind                                         map[string]uint64
	Routes                                               map[string]float64 // requests sent, by replay.Route
	Lag, OrderWait                                       *replay.Histogram  // nil: not measured
	Sessions                                             replay.SessionCounts
	Filtered                                             replay.FilterCounts

	// The send figures of the report; nil when it lacks them (a report
	// of an older build).
	PerSecond          []uint64 // requests sent in each wall second since the start
	RefreshesPerSecond []uint64 // refresh requests sent in each wall second
	InterArrival       Sample   // ms between consecutive sends, wall clock
	// InterArrivalScaled is the same gaps times the speed in force when
	// they ended: recording time, comparable with the recording's gaps
	// under a ramp as well.
	InterArrivalScaled Sample
	ThinkTime          Sample // ms from a session's response to its next send
	SessionLength      Sample // ms from a session's first send to its last response
	// Bucketed says the samples above come from HDR histograms (3
	// significant digits, µs): the recording's are put through the same
	// buckets before comparing, or clustered values would differ by the
	// rounding alone.
	Bucketed bool
}

// FromReport fills RunData from a replay report. A histogram whose hdr
// does not decode is left out (not measured); ReadRun reports it instead.
func FromReport(rep *replay.Report) *RunData {
	rd, _ := fromReport(rep)
	return rd
}

func fromReport(rep *replay.Report) (*RunData, error) {
	rd := &RunData{
		Speed: rep.Speed, Scale: max(1, rep.Scale),
		DurationS: rep.DurationMS / 1000, ExpectedS: rep.ExpectedMS / 1000, LastSendS: rep.LastSendMS / 1000,
		Scheduled: rep.Requests.Scheduled, Sent: rep.Requests.Sent, Responses: rep.Requests.Responses,
		Errors: rep.Requests.Errors, Skipped: rep.Requests.Skipped, NotSent: rep.Requests.NotSent,
		StatusCodes: rep.StatusCodes, StatusMismatch: rep.StatusMismatch, ErrorsByKind: rep.Errors,
		Routes: map[string]float64{}, Sessions: rep.Sessions, Filtered: rep.Filtered,
		PerSecond: rep.PerSecond, RefreshesPerSecond: rep.RefreshesPerSecond,
	}
	for _, r := range rep.Routes {
		rd.Routes[r.Route] += float64(r.Requests)
	}
	if rep.Requests.Sent > 0 {
		lag, wait := rep.Lag, rep.OrderWait
		rd.Lag, rd.OrderWait = &lag, &wait
	}
	var first error
	for _, f := range []struct {
		h   replay.Histogram
		dst *Sample
		key string
	}{
		{rep.InterArrival, &rd.InterArrival, "inter_arrival"},
		{rep.InterArrivalScaled, &rd.InterArrivalScaled, "inter_arrival_scaled"},
		{rep.ThinkTime, &rd.ThinkTime, "think_time"},
		{rep.SessionLength, &rd.SessionLength, "session_length"},
	} {
		h, err := f.h.Decode()
		if err != nil {
			if first == nil {
				first = fmt.Errorf("%s: bad hdr histogram: %w", f.key, err)
			}
			continue
		}
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		*f.dst = SampleOfHDR(h, 1e-3) // µs to ms
		rd.Bucketed = true
	}
	return rd, first
}

// ReadRun reads a run report written by replay.Report.WriteJSON (the file
// of 'reprise replay --report run.json'), with its send figures:
// "per_second" and "refreshes_per_second" (counts per wall second) and
// "inter_arrival", "inter_arrival_scaled", "think_time" and
// "session_length" (histograms with their "hdr"). A report without them
// is read all the same; the checks that need them say "not measured".
func ReadRun(r io.Reader) (*RunData, error) {
	rep, err := replay.ReadReport(r)
	if err != nil {
		return nil, err
	}
	rd, err := fromReport(rep)
	if err != nil {
		return nil, fmt.Errorf("read run report: %w", err)
	}
	return rd, nil
}

// RunResult compares a replay with its recording. A nil figure was not
// measured: the run report lacks what it needs (NotMeasured says what).
type RunResult struct {
	Speed     string  `json:"speed"`
	Scale     int     `json:"scale"`
	Sent      uint64  `json:"sent"`
	Expected  uint64  `json:"expected_requests"` // the recording's requests times the scale
	DurationS float64 `json:"duration_s"`
	ExpectedS float64 `json:"expected_duration_s,omitempty"`

	// RouteDistance is the total variation distance between the
	// recording's and the run's requests by route; WorstRoute the route
	// whose share differs most.
	RouteDistance           *float64 `json:"route_distance"`
	WorstRoute              string   `json:"worst_route,omitempty"`
	WorstRouteRecordedShare float64  `json:"worst_route_recorded_share"`
	WorstRouteRunShare      float64  `json:"worst_route_run_share"`
	// Two-sample Kolmogorov-Smirnov statistics against the recording,
	// with the recording's times divided by the speed.
	InterArrivalKS  *float64 `json:"inter_arrival_ks"`
	ThinkTimeKS     *float64 `json:"think_time_ks"`
	SessionLengthKS *float64 `json:"session_length_ks"`
	// KSNoise is, by distribution name, how large its KS statistic grows
	// by chance alone at its sample sizes (see KSNoise); a statistic is
	// judged beyond it. KSFloorMS is, by name, the time below which
	// values counted as equal: the sender's timing jitter (lag p90), in
	// wall ms at a constant speed and times the top speed (recording ms)
	// for the scaled inter-arrivals under a ramp.
	KSNoise   map[string]float64 `json:"ks_noise"`
	KSFloorMS map[string]float64 `json:"ks_floor_ms"`

	LagP99MS           *float64 `json:"lag_p99_ms"`
	LagMaxMS           *float64 `json:"lag_max_ms"`
	OrderWaits         *uint64  `json:"order_waits"`
	OrderWaitP99MS     *float64 `json:"order_wait_p99_ms"`
	ErrorRate          *float64 `json:"error_rate"`
	StatusMismatchRate *float64 `json:"status_mismatch_rate"`
	FailedSessions     *float64 `json:"failed_session_share"`
	// RefreshPeakShare is the share of the run's refreshes sent in its
	// busiest tenth of seconds and RefreshPeakRequestShare the share of
	// its requests sent in them; the recording's are in
	// Recording.Load.RefreshPeak (Share, RequestShare). RefreshCrowding is
	// how many points more the refreshes crowd the peak than the requests
	// do, against the recording's own difference; RefreshPeakNoise is how
	// far that moves by chance (two standard errors). See CheckRun.
	RefreshPeakShare        *float64 `json:"refresh_peak_share"`
	RefreshPeakRequestShare *float64 `json:"refresh_peak_request_share"`
	RefreshCrowding         *float64 `json:"refresh_crowding"`
	RefreshPeakNoise        *float64 `json:"refresh_peak_noise"`

	// NotMeasured names the figures the check could not compare;
	// NotMeasuredWhy says why, by name.
	NotMeasured    []string          `json:"not_measured"`
	NotMeasuredWhy map[string]string `json:"not_measured_why"`
}

func f64(v float64) *float64 { return &v }

// speedPhrase names the run's speed in a finding: "the replay at 2.5x",
// "the replay at max speed", "the replay on ramp 1x:1m,10x".
func speedPhrase(s string) string {
	switch _, ok := constSpeed(s); {
	case s == "max":
		return "the replay at max speed"
	case ok:
		return "the replay at " + strings.TrimSuffix(strings.TrimSpace(s), "x") + "x"
	}
	return "the replay on ramp " + s
}

// constSpeed returns the run's speed when it was constant.
func constSpeed(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "x"), 64)
	if err != nil || f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// recordedDists returns the recording's inter-arrival, think-time and
// session-length samples in ms of recording time.
func recordedDists(rec *Recording) (inter, think, length Sample) {
	type sess struct{ first, lastEnd int64 }
	ss := make([]sess, len(rec.Sessions))
	for i := range ss {
		ss[i].first = -1
	}
	for i := range rec.Requests {
		r := &rec.Requests[i]
		start := int64(r.Offset)
		if i > 0 {
			inter = append(inter, Point{float64(start-int64(rec.Requests[i-1].Offset)) / 1e6, 1})
		}
		s := &ss[r.Session]
		if s.first < 0 {
			s.first = start
		} else if gap := start - s.lastEnd; gap >= 0 {
			think = append(think, Point{float64(gap) / 1e6, 1})
		}
		s.lastEnd = max(s.lastEnd, start+int64(r.Duration))
	}
	for _, s := range ss {
		if s.first >= 0 {
			length = append(length, Point{float64(s.lastEnd-s.first) / 1e6, 1})
		}
	}
	return inter, think, length
}

// CheckRun compares a finished replay with the recording it replayed and
// judges the differences against th. rec should be the whole recording
// (no filter): a filter that altered the request mix is what it finds.
func CheckRun(rec *Recording, run *RunData, th Thresholds) (*Result, error) {
	base, err := baseline(rec, th)
	if err != nil {
		return nil, err
	}
	rr := &RunResult{Speed: run.Speed, Scale: max(1, run.Scale), Sent: run.Sent,
		Expected: uint64(len(rec.Requests)) * uint64(max(1, run.Scale)), DurationS: run.DurationS, ExpectedS: run.ExpectedS,
		NotMeasured: []string{}, NotMeasuredWhy: map[string]string{}, KSNoise: map[string]float64{}, KSFloorMS: map[string]float64{}}
	res := &Result{
		Recording:  RecordingInfo{Paths: rec.Paths, SessionsFrom: rec.SessionsFrom, Damaged: rec.Damaged, Load: base},
		Run:        rr,
		Thresholds: th,
	}
	j := &runJudge{rec: rec, run: run, th: th, res: res, rr: rr, at: speedPhrase(run.Speed), base: base}
	at := j.at
	if run.Sent == 0 {
		res.add(Fail, "requests", "%s sent no request: nothing to compare", at)
		res.finish()
		return res, nil
	}

	// Request mix.
	if d, worst, a, b := TotalVariation(rec.RouteCounts(), run.Routes); !math.IsNaN(d) {
		rr.RouteDistance, rr.WorstRoute, rr.WorstRouteRecordedShare, rr.WorstRouteRunShare = f64(d), worst, a, b
		why := ""
		if f := run.Filtered; f.ByPath+f.ByMethod+f.ByRange+f.BySessions > 0 {
			why = fmt.Sprintf(" — its filters left out %d requests (path %d, method %d, range %d, sessions %d): replay without them for real usage",
				f.ByPath+f.ByMethod+f.ByRange+f.BySessions, f.ByPath, f.ByMethod, f.ByRange, f.BySessions)
		} else if run.Skipped > 0 {
			why = fmt.Sprintf(" — %d requests were skipped as uncorrelated: check the logins (--credentials)", run.Skipped)
		}
		res.add(judge(d, th.MixWarn, th.MixFail), "route_mix", "the request mix differs from the recording by %.2f (total variation): %s is %s of the replay (recording: %s)%s",
			d, worst, pct(b), pct(a), why)
	} else {
		j.notMeasured("route_distance", "neither the recording nor the run has a request by route")
	}
	if rr.Expected > 0 && run.Sent < rr.Expected {
		share := 1 - float64(run.Sent)/float64(rr.Expected)
		res.add(judge(share, th.FilteredWarn, 0), "requests", "%s sent %d of the recording's %d requests (x%d): %s were not replayed",
			at, run.Sent, len(rec.Requests), rr.Scale, pct(share))
	}

	j.distributions()
	j.lagAndOrder()
	j.outcomes()
	res.finish()
	return res, nil
}

// runJudge holds what the parts of CheckRun share.
type runJudge struct {
	rec  *Recording
	run  *RunData
	th   Thresholds
	res  *Result
	rr   *RunResult
	at   string
	base Profile
}

// lacks is why a figure the run report does not hold is not measured.
const lacks = "the run report does not hold the figures needed"

func (j *runJudge) notMeasured(name, why string) {
	j.rr.NotMeasured = append(j.rr.NotMeasured, name)
	j.rr.NotMeasuredWhy[name] = why
}

// distributions compares the run's inter-arrival times, think times and
// session lengths with the recording's.
func (j *runJudge) distributions() {
	rec, run, th, res, rr, at, notMeasured := j.rec, j.run, j.th, j.res, j.rr, j.at, j.notMeasured
	// Distributions. At a constant speed the run's wall times are
	// compared with the recording's over the speed; under a ramp only the
	// inter-arrivals can be, through their speed-scaled copy (each gap
	// times the speed in force, recording time): think times and session
	// lengths mix the target's latency, which does not scale, with
	// recorded pauses that do, at speeds that change within a session.
	// Two allowances keep a faithful run from failing on what it could
	// not resolve: times shorter than the sender's own timing jitter (its
	// lag p90, times the speed for recording time) count as equal, and
	// the statistic is judged beyond its value by chance (KSNoise).
	speed, constant := constSpeed(run.Speed)
	jitter := 0.0 // ms, wall
	if run.Lag != nil && run.Lag.Count > 0 {
		jitter = run.Lag.P90
	}
	inter, think, length := recordedDists(rec)
	for _, d := range []struct {
		name, what string
		rec, run   Sample
		dst        **float64
		scaled     Sample // the run's sample in recording time, if it has one
		perClone   bool   // comparable at any scale (one figure per session clone)
	}{
		{"inter_arrival", "inter-arrival times", inter, run.InterArrival, &rr.InterArrivalKS, run.InterArrivalScaled, false},
		{"think_time", "think times", think, run.ThinkTime, &rr.ThinkTimeKS, nil, true},
		{"session_length", "session lengths", length, run.SessionLength, &rr.SessionLengthKS, nil, true},
	} {
		want, got, floor, top := d.rec, d.run, jitter, 0.0
		switch {
		case run.Speed == "max":
			notMeasured(d.name+"_ks", "--speed max keeps no timing to compare")
			continue
		case !d.perClone && rr.Scale > 1:
			notMeasured(d.name+"_ks", "clones interleave their sends: the gaps are not the recording's at a scale above 1")
			continue
		case constant && len(got) > 0:
			want = want.Scale(1 / speed)
		case !constant && len(d.scaled) > 0:
			got = d.scaled
			top = topSpeed(run.Speed)
			floor = jitter * top
		case !constant && d.scaled == nil:
			notMeasured(d.name+"_ks", "a ramp changed the speed within the run: its wall times do not compare with the recording's")
			continue
		}
		if len(got) == 0 || len(want) == 0 {
			notMeasured(d.name+"_ks", lacks)
			continue
		}
		if run.Bucketed {
			want = rebucket(want)
		}
		ks := KS(want.Floor(floor), got.Floor(floor))
		noise := KSNoise(want.Total(), got.Total())
		*d.dst = f64(ks)
		rr.KSNoise[d.name] = noise
		if floor > 0 {
			rr.KSFloorMS[d.name] = floor
		}
		res.add(judge(ks-noise, th.KSWarn, th.KSFail), d.name, "%s: the distribution of %s differs from the recording's (KS %.2f%s; chance explains %.2f)",
			at, d.what, ks, floorText(floor, top), noise)
	}

}

// lagAndOrder judges how far behind its schedule the run ran.
func (j *runJudge) lagAndOrder() {
	run, th, res, rr, at, notMeasured := j.run, j.th, j.res, j.rr, j.at, j.notMeasured
	// Lag and order.
	if run.Lag != nil && run.Lag.Count > 0 {
		rr.LagP99MS, rr.LagMaxMS = f64(run.Lag.P99), f64(run.Lag.Max)
		res.add(judge(run.Lag.P99/1000, th.LagWarn, th.LagFail), "lag", "%s ran behind its schedule: lag p99 %s, max %s — a cap, the target's latency or the sending machine held it back",
			at, secs(run.Lag.P99/1000), secs(run.Lag.Max/1000))
	} else {
		notMeasured("lag_p99_ms", lacks)
	}
	if run.OrderWait != nil {
		n := run.OrderWait.Count
		rr.OrderWaits, rr.OrderWaitP99MS = &n, f64(run.OrderWait.P99)
		res.add(judge(run.OrderWait.P99/1000, th.LagWarn, th.LagFail), "order_wait", "%d requests waited for their session's order, p99 %s: the target answered slower than the recording's think times allow at this speed",
			n, secs(run.OrderWait.P99/1000))
	} else {
		notMeasured("order_wait_p99_ms", lacks)
	}
	// The schedule's length is the last send; the duration adds the last
	// response's latency.
	if took := cmpOr(run.LastSendS, run.DurationS); run.ExpectedS > 0 && took > run.ExpectedS*1.1 && took-run.ExpectedS > th.SlipAt {
		res.add(Warn, "duration", "%s sent its last request at %s instead of the planned %s", at, secs(took), secs(run.ExpectedS))
	}

}

// outcomes judges errors, statuses, sessions and refreshes at peak.
func (j *runJudge) outcomes() {
	run, th, res, rr, at, notMeasured, base := j.run, j.th, j.res, j.rr, j.at, j.notMeasured, j.base
	// Errors, statuses and sessions.
	er := float64(run.Errors) / float64(run.Sent)
	rr.ErrorRate = f64(er)
	res.add(judge(er, th.ErrorWarn, th.ErrorFail), "error_rate", "%s of requests failed on the wire (%s): the target or the network did not keep up", pct(er), kinds(run.ErrorsByKind))
	if run.Responses > 0 {
		mr := float64(run.StatusMismatch) / float64(run.Responses)
		rr.StatusMismatchRate = f64(mr)
		res.add(judge(mr, th.MismatchWarn, th.MismatchFail), "status_mismatch", "%s of responses had another status than in the recording (%d of %d; run: %s)",
			pct(mr), run.StatusMismatch, run.Responses, kinds(run.StatusCodes))
	}
	if t := run.Sessions.Total; t > 0 {
		bad := run.Sessions.Failed + run.Sessions.Uncorrelated
		sr := float64(bad) / float64(t)
		rr.FailedSessions = f64(sr)
		res.add(judge(sr, th.SessionWarn, th.SessionFail), "failed_sessions", "%d of %d sessions did not complete (%d failed, %d uncorrelated): their later requests were not real usage",
			bad, t, run.Sessions.Failed, run.Sessions.Uncorrelated)
	} else {
		notMeasured("failed_session_share", lacks)
	}

	// Refreshes at peak, from per-second counts. A replay that runs
	// faster in some seconds than in others (a ramp) packs more of
	// everything into them, refreshes included; what distorts refresh
	// timing is refreshes crowding the peak beyond the traffic, so the
	// run's refresh share at peak less its request share is judged
	// against the recording's, beyond chance.
	if len(run.PerSecond) > 0 && len(run.RefreshesPerSecond) > 0 {
		p := peakOfSeconds(run.PerSecond, run.RefreshesPerSecond)
		rr.RefreshPeakShare, rr.RefreshPeakRequestShare = f64(p.Share), f64(p.RequestShare)
		if n := refreshesIn(run.RefreshesPerSecond); float64(base.Refreshes) >= th.MinRefreshes && n > 0 {
			c := crowdingOf(base.RefreshPeak, p, n)
			rr.RefreshCrowding, rr.RefreshPeakNoise = f64(c.rise), f64(c.noise)
			res.add(judge(c.rise-c.noise, th.RefreshPeakWarn, th.RefreshPeakFail), "refresh_peak",
				"%s, refreshes crowded its busiest tenth of seconds beyond the traffic: %s of refreshes but %s of requests fell in them (recording: %s and %s), %.0f points more than recorded (chance explains %.0f)",
				at, pct(p.Share), pct(p.RequestShare), pct(base.RefreshPeak.Share), pct(base.RefreshPeak.RequestShare), 100*c.rise, 100*c.noise)
		}
	} else {
		notMeasured("refresh_peak_share", lacks)
	}
}

// peakOfSeconds computes identity's "refreshes at peak" from per-second
// counts, by feeding them to identity.Summary so the definition is the
// same as for recordings.
func peakOfSeconds(perSecond, refreshes []uint64) identity.PeakReport {
	const base = int64(1e18)
	sum := identity.NewSummary()
	var x session.Exchange
	for s, n := range perSecond {
		x.Timing.RequestStart = base + int64(s)*int64(time.Second)
		for range n {
			sum.Add(&x)
		}
	}
	tl := session.Timeline{Key: "run"}
	for s, n := range refreshes {
		for range n {
			tl.Events = append(tl.Events, session.TimelineEvent{At: base + int64(s)*int64(time.Second), Index: len(tl.Events),
				Event: session.TokenEvent{Kind: session.TokenRefresh}})
		}
	}
	tl.Refreshes = len(tl.Events)
	return sum.Report([]session.Timeline{tl}, 0).Refreshes.Peak
}

// topSpeed is the fastest speed of a ramp as a report names it
// ("1x:2m~,5x:1m,10x"); 1 when it names none. It reads the stages' values
// alone, so that a ramp 'reprise replay --ramp' would refuse (stages
// shorter than a second, as a short demo's) still counts.
func topSpeed(s string) float64 {
	top := 1.0
	for _, part := range strings.Split(s, ",") {
		v, _, _ := strings.Cut(strings.TrimSpace(part), ":")
		if f, ok := constSpeed(v); ok {
			top = max(top, f)
		}
	}
	return top
}

// floorText names the resolution a KS statistic was taken at.
func floorText(floor, top float64) string {
	switch {
	case floor <= 0:
		return ""
	case top > 0:
		return fmt.Sprintf(" above %s of recording time, the sender's jitter at %gx", secs(floor/1000), top)
	}
	return fmt.Sprintf(" above %s, the sender's jitter", secs(floor/1000))
}

func refreshesIn(perSecond []uint64) int {
	var n uint64
	for _, v := range perSecond {
		n += v
	}
	return int(min(n, math.MaxInt32))
}

func kinds(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// rebucket puts a sample in ms through the buckets of the replay report's
// HDR histograms (µs from 1 to an hour, 3 significant digits).
func rebucket(s Sample) Sample {
	h := hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	for _, p := range s {
		us := max(1, min(int64(p.Value*1000), h.HighestTrackableValue()))
		_ = h.RecordValues(us, int64(p.Weight))
	}
	return SampleOfHDR(h, 1e-3)
}

func cmpOr(a, b float64) float64 {
	if a > 0 {
		return a
	}
	return b
}
