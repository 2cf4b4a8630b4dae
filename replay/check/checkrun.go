package check

import (
	"bytes"
	"encoding/json"
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

	// Figures replay.Report does not hold yet (see ReadRun for their JSON
	// names); nil when the report lacks them.
	PerSecond          []uint64 // requests sent in each wall second since the start
	RefreshesPerSecond []uint64 // refresh requests sent in each wall second
	InterArrival       Sample   // ms between consecutive sends, wall clock
	ThinkTime          Sample   // ms from a session's response to its next send
	SessionLength      Sample   // ms from a session's first send to its last response
	// Bucketed says the three samples above come from HDR histograms (3
	// significant digits, µs): the recording's are put through the same
	// buckets before comparing, or clustered values would differ by the
	// rounding alone.
	Bucketed bool
}

// FromReport fills RunData from a replay report.
func FromReport(rep *replay.Report) *RunData {
	rd := &RunData{
		Speed: rep.Speed, Scale: max(1, rep.Scale),
		DurationS: rep.DurationMS / 1000, ExpectedS: rep.ExpectedMS / 1000, LastSendS: rep.LastSendMS / 1000,
		Scheduled: rep.Requests.Scheduled, Sent: rep.Requests.Sent, Responses: rep.Requests.Responses,
		Errors: rep.Requests.Errors, Skipped: rep.Requests.Skipped, NotSent: rep.Requests.NotSent,
		StatusCodes: rep.StatusCodes, StatusMismatch: rep.StatusMismatch, ErrorsByKind: rep.Errors,
		Routes: map[string]float64{}, Sessions: rep.Sessions, Filtered: rep.Filtered,
	}
	for _, r := range rep.Routes {
		rd.Routes[r.Route] += float64(r.Requests)
	}
	if rep.Requests.Sent > 0 {
		lag, wait := rep.Lag, rep.OrderWait
		rd.Lag, rd.OrderWait = &lag, &wait
	}
	return rd
}

// runExtension holds the figures ReadRun takes from a run report beyond
// replay.Report's fields; the names are those proposed for the report.
type runExtension struct {
	PerSecond          []uint64          `json:"per_second"`
	RefreshesPerSecond []uint64          `json:"refreshes_per_second"`
	InterArrival       *replay.Histogram `json:"inter_arrival"`
	ThinkTime          *replay.Histogram `json:"think_time"`
	SessionLength      *replay.Histogram `json:"session_length"`
}

// ReadRun reads a run report written by replay.Report.WriteJSON (the file
// of 'reprise replay --report run.json'). Besides the report's fields it
// reads, when present, "per_second" and "refreshes_per_second" (arrays of
// counts per wall second) and "inter_arrival", "think_time" and
// "session_length" (replay.Histogram values with their "hdr"), so that a
// report which gains them is checked on them without a change here.
func ReadRun(r io.Reader) (*RunData, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read run report: %w", err)
	}
	rep, err := replay.ReadReport(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	rd := FromReport(rep)
	var ext runExtension
	if err := json.Unmarshal(b, &ext); err != nil {
		return nil, fmt.Errorf("read run report: %w", err)
	}
	rd.PerSecond, rd.RefreshesPerSecond = ext.PerSecond, ext.RefreshesPerSecond
	for _, f := range []struct {
		h   *replay.Histogram
		dst *Sample
		key string
	}{{ext.InterArrival, &rd.InterArrival, "inter_arrival"}, {ext.ThinkTime, &rd.ThinkTime, "think_time"}, {ext.SessionLength, &rd.SessionLength, "session_length"}} {
		if f.h == nil {
			continue
		}
		h, err := f.h.Decode()
		if err != nil {
			return nil, fmt.Errorf("read run report: %s: bad hdr histogram: %w", f.key, err)
		}
		*f.dst = SampleOfHDR(h, 1e-3) // µs to ms
		rd.Bucketed = true
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

	LagP99MS           *float64 `json:"lag_p99_ms"`
	LagMaxMS           *float64 `json:"lag_max_ms"`
	OrderWaits         *uint64  `json:"order_waits"`
	OrderWaitP99MS     *float64 `json:"order_wait_p99_ms"`
	ErrorRate          *float64 `json:"error_rate"`
	StatusMismatchRate *float64 `json:"status_mismatch_rate"`
	FailedSessions     *float64 `json:"failed_session_share"`
	// RefreshPeakShare is the share of the run's refreshes begun in its
	// busiest tenth of seconds; the recording's is in
	// Recording.Load.RefreshPeak.Share.
	RefreshPeakShare *float64 `json:"refresh_peak_share"`

	NotMeasured []string `json:"not_measured"`
}

func f64(v float64) *float64 { return &v }

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
		NotMeasured: []string{}}
	res := &Result{
		Recording:  RecordingInfo{Paths: rec.Paths, SessionsFrom: rec.SessionsFrom, Damaged: rec.Damaged, Load: base},
		Run:        rr,
		Thresholds: th,
	}
	notMeasured := func(name string) { rr.NotMeasured = append(rr.NotMeasured, name) }
	at := "the replay at " + run.Speed + "x"
	if run.Speed == "max" {
		at = "the replay at max speed"
	}
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
		notMeasured("route_distance")
	}
	if rr.Expected > 0 && run.Sent < rr.Expected {
		share := 1 - float64(run.Sent)/float64(rr.Expected)
		res.add(judge(share, th.FilteredWarn, 0), "requests", "%s sent %d of the recording's %d requests (x%d): %s were not replayed",
			at, run.Sent, len(rec.Requests), rr.Scale, pct(share))
	}

	// Distributions, in recording time.
	speed, ok := constSpeed(run.Speed)
	inter, think, length := recordedDists(rec)
	for _, d := range []struct {
		name, what string
		rec, run   Sample
		dst        **float64
		scaled     bool // comparable only at scale 1
	}{
		{"inter_arrival", "inter-arrival times", inter, run.InterArrival, &rr.InterArrivalKS, true},
		{"think_time", "think times", think, run.ThinkTime, &rr.ThinkTimeKS, false},
		{"session_length", "session lengths", length, run.SessionLength, &rr.SessionLengthKS, false},
	} {
		if len(d.run) == 0 || len(d.rec) == 0 || !ok || (d.scaled && rr.Scale > 1) {
			notMeasured(d.name + "_ks")
			continue
		}
		want := d.rec.Scale(1 / speed)
		if run.Bucketed {
			want = rebucket(want)
		}
		ks := KS(want, d.run)
		*d.dst = f64(ks)
		res.add(judge(ks, th.KSWarn, th.KSFail), d.name, "%s: the distribution of %s differs from the recording's (KS %.2f)", at, d.what, ks)
	}

	// Lag and order.
	if run.Lag != nil && run.Lag.Count > 0 {
		rr.LagP99MS, rr.LagMaxMS = f64(run.Lag.P99), f64(run.Lag.Max)
		res.add(judge(run.Lag.P99/1000, th.LagWarn, th.LagFail), "lag", "%s ran behind its schedule: lag p99 %s, max %s — a cap, the target's latency or the sending machine held it back",
			at, secs(run.Lag.P99/1000), secs(run.Lag.Max/1000))
	} else {
		notMeasured("lag_p99_ms")
	}
	if run.OrderWait != nil {
		n := run.OrderWait.Count
		rr.OrderWaits, rr.OrderWaitP99MS = &n, f64(run.OrderWait.P99)
		res.add(judge(run.OrderWait.P99/1000, th.LagWarn, th.LagFail), "order_wait", "%d requests waited for their session's order, p99 %s: the target answered slower than the recording's think times allow at this speed",
			n, secs(run.OrderWait.P99/1000))
	} else {
		notMeasured("order_wait_p99_ms")
	}
	// The schedule's length is the last send; the duration adds the last
	// response's latency.
	if took := cmpOr(run.LastSendS, run.DurationS); run.ExpectedS > 0 && took > run.ExpectedS*1.1 && took-run.ExpectedS > th.SlipAt {
		res.add(Warn, "duration", "%s sent its last request at %s instead of the planned %s", at, secs(took), secs(run.ExpectedS))
	}

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
		notMeasured("failed_session_share")
	}

	// Refreshes at peak, from per-second counts.
	if len(run.PerSecond) > 0 && len(run.RefreshesPerSecond) > 0 {
		p := peakOfSeconds(run.PerSecond, run.RefreshesPerSecond)
		rr.RefreshPeakShare = f64(p.Share)
		if float64(base.Refreshes) >= th.MinRefreshes {
			res.add(judge(p.Share-base.RefreshPeak.Share, th.RefreshPeakWarn, th.RefreshPeakFail), "refresh_peak",
				"%s, %s of refreshes fell in the busiest tenth of seconds (recording: %s)", at, pct(p.Share), pct(base.RefreshPeak.Share))
		}
	} else {
		notMeasured("refresh_peak_share")
	}
	res.finish()
	return res, nil
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
