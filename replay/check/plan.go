package check

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/replay/schedule"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// Plan is a replay as 'reprise replay' would be asked for it: the same
// speed, scale, ramps and caps. Its zero value is replay's default: 1x,
// scale 1, replay.DefaultMaxInFlight requests in flight, no rate cap.
type Plan struct {
	Speed     float64    // constant speed multiplier; 0 means 1
	Max       bool       // --speed max: ignore the recording's timing
	SpeedRamp *ramp.Ramp // --ramp with speed stages; overrides Speed
	Scale     int        // clones of each session; 0 means 1
	ScaleRamp *ramp.Ramp // --ramp with scale stages; overrides Scale
	// CloneStagger is the shift between clones in recording time; 0
	// means replay.DefaultCloneStagger.
	CloneStagger time.Duration
	Rate         float64 // --rate, requests per second; 0 means no cap
	MaxInFlight  int     // --max-inflight; 0 means replay.DefaultMaxInFlight
	MaxSessions  int     // --max-sessions: sessions at once; 0 means no cap
	// Rejected is replay's policy for requests the recorded server
	// refused with 401 (replay.RejectedAsRecorded, the default when "",
	// RejectedLive or RejectedSkip).
	Rejected string
}

// MaxSimulated bounds the requests a prediction simulates (recorded
// requests kept by the filter, times the scale), so that a mistaken scale
// cannot exhaust memory. Sample the sessions (--sessions) to check larger
// plans.
const MaxSimulated = 20_000_000

// validate checks the plan as replay would.
func (p Plan) validate() error {
	if p.Speed != 0 && (p.Speed < replay.MinSpeed || p.Speed > replay.MaxSpeed || math.IsNaN(p.Speed)) {
		return fmt.Errorf("speed %g out of range: want %g to %g, or max", p.Speed, replay.MinSpeed, replay.MaxSpeed)
	}
	if p.SpeedRamp != nil && p.SpeedRamp.Kind() != ramp.KindSpeed {
		return errors.New("the speed ramp holds scale stages")
	}
	if p.ScaleRamp != nil && p.ScaleRamp.Kind() != ramp.KindScale {
		return errors.New("the scale ramp holds speed stages")
	}
	if p.Scale < 0 || p.Scale > replay.DefaultMaxScale {
		return fmt.Errorf("scale %d out of range: want 1 to %d", p.Scale, replay.DefaultMaxScale)
	}
	switch p.Rejected {
	case "", replay.RejectedAsRecorded, replay.RejectedLive, replay.RejectedSkip:
	default:
		return fmt.Errorf("rejected policy %q: want recorded, live or skip", p.Rejected)
	}
	if p.Rate < 0 || p.MaxInFlight < 0 || p.MaxSessions < 0 || p.CloneStagger < 0 {
		return errors.New("rate, max in-flight, max sessions and clone stagger must not be negative")
	}
	return nil
}

// pacer returns the due-time function; nil for --speed max.
func (p Plan) pacer() schedule.Pacer {
	switch {
	case p.Max:
		return nil
	case p.SpeedRamp != nil:
		return p.SpeedRamp
	case p.Speed > 0:
		return schedule.Speed(p.Speed)
	}
	return schedule.Speed(1)
}

// clones returns the most clones of a session the plan ever runs.
func (p Plan) clones() int {
	if p.ScaleRamp != nil {
		n := 1.0
		for _, st := range p.ScaleRamp.Stages() {
			n = max(n, st.Value)
		}
		return int(n)
	}
	return max(1, p.Scale)
}

// topSpeed is the highest speed the plan reaches (0 for max).
func (p Plan) topSpeed() float64 {
	switch {
	case p.Max:
		return 0
	case p.SpeedRamp != nil:
		s := 0.0
		for _, st := range p.SpeedRamp.Stages() {
			s = max(s, st.Value)
		}
		return s
	case p.Speed > 0:
		return p.Speed
	}
	return 1
}

// String names the plan as a person writes it: "10x", "ramp 1x:2m,10x, scale 3, rate 50/s".
func (p Plan) String() string {
	var parts []string
	switch {
	case p.Max:
		parts = append(parts, "speed max")
	case p.SpeedRamp != nil:
		parts = append(parts, "ramp "+p.SpeedRamp.String())
	default:
		parts = append(parts, num(max(p.Speed, 0))+"x")
		if p.Speed == 0 {
			parts[0] = "1x"
		}
	}
	if p.ScaleRamp != nil {
		parts = append(parts, "ramp "+p.ScaleRamp.String())
	} else if p.Scale > 1 {
		parts = append(parts, "scale "+strconv.Itoa(p.Scale))
	}
	if p.Rate > 0 {
		parts = append(parts, "rate "+num(p.Rate)+"/s")
	}
	if p.MaxInFlight > 0 {
		parts = append(parts, "max in-flight "+strconv.Itoa(p.MaxInFlight))
	}
	if p.MaxSessions > 0 {
		parts = append(parts, "max sessions "+strconv.Itoa(p.MaxSessions))
	}
	if p.Rejected != "" && p.Rejected != replay.RejectedAsRecorded {
		parts = append(parts, "rejected "+p.Rejected)
	}
	return strings.Join(parts, ", ")
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Profile describes the traffic a target sees: the recording's own (as it was
// recorded) or a replay's (as predicted). Durations are in the unit their
// JSON name gives.
type Profile struct {
	DurationS       float64 `json:"duration_s"`
	Requests        int     `json:"requests"`
	Sessions        int     `json:"sessions"`
	PeakRPS         int     `json:"peak_rps"`         // requests started in the busiest second
	MeanRPS         float64 `json:"mean_rps"`         // requests / duration
	PeakConcurrency int     `json:"peak_concurrency"` // requests in flight at once
	PeakSessions    int     `json:"peak_sessions"`    // sessions active at once (first request to last response)

	Refreshes int `json:"refreshes"`
	// PeakRefreshesPerSecond is the most refreshes begun in one second;
	// RefreshesPerSecond the mean over the duration.
	PeakRefreshesPerSecond int     `json:"peak_refreshes_per_s"`
	RefreshesPerSecond     float64 `json:"refreshes_per_s"`
	// RefreshPeak is identity's "refreshes at peak": the share of
	// refreshes begun in the busiest tenth of seconds.
	RefreshPeak identity.PeakReport `json:"refresh_peak"`
	// TokenLifetimeS is the median lifetime of the access tokens issued
	// (the server's, never compressed); RefreshIntervalS the median time,
	// on this clock, from a token's issue to the refresh that replaced it;
	// TokenUse their ratio, the share of its life a token served.
	TokenLifetimeS   float64 `json:"token_lifetime_s,omitempty"`
	RefreshIntervalS float64 `json:"refresh_interval_s,omitempty"`
	TokenUse         float64 `json:"token_use,omitempty"`
	// ExpiredTokenRequests counts requests sent with an access token
	// older than its lifetime (the server rejects them), leaving out those
	// the recorded server refused already; Rejected401s counts the
	// recording's own 401s; Unrepeated401s those of them that a replay
	// with the live rejected policy sends with a token still alive.
	ExpiredTokenRequests int `json:"expired_token_requests"`
	Rejected401s         int `json:"rejected_401s"`
	Unrepeated401s       int `json:"unrepeated_401s"`

	// Lag is the predicted schedule lag (send minus due) in ms; OrderWaits
	// the requests that wait for their session's order and Slip the time
	// during which lag stays above the slip threshold.
	Lag        Dist    `json:"lag_ms"`
	OrderWaits int     `json:"order_waits"`
	OrderWait  Dist    `json:"order_wait_ms"`
	SlipS      float64 `json:"slip_s"`       // seconds of the run with lag above the threshold
	SlipFromS  float64 `json:"slip_from_s"`  // first such second
	SlipUntilS float64 `json:"slip_until_s"` // end of the last such second
	// PlannedS is how long the run would take with no cap and no order
	// wait; DurationS is how long it is predicted to take.
	PlannedS float64 `json:"planned_s"`
}

// simParams are the knobs of one simulation.
type simParams struct {
	pacer       schedule.Pacer // nil: everything due at once (max)
	clones      int
	scaleRamp   *ramp.Ramp
	stagger     time.Duration
	rate        float64
	maxInFlight int // 0: unlimited
	maxSessions int
	all         bool          // simulate every request, not only the kept ones
	rejected    string        // replay's rejected policy ("" is recorded)
	slipAt      time.Duration // lag above this counts as slip
}

// item is one simulated request.
type item struct {
	req   int32 // index into Recording.Requests
	clone int32
	due   int64 // wall ns since the run's start
}

// clone state during a simulation.
type cloneState struct {
	started  bool
	delay    int64 // session start delay from --max-sessions
	firstDue int64
	first    int64 // first send
	last     int64 // last done
	readyAcc int64 // latest done among requests that the order makes it wait for
	pend     []pendingReq
	tokenAt  int64 // wall ns the current access token was issued; -1 none
	tokenTTL int64
}

type pendingReq struct{ recEnd, done int64 }

// int64Heap is a min-heap of times.
type int64Heap []int64

func (h int64Heap) Len() int           { return len(h) }
func (h int64Heap) Less(i, j int) bool { return h[i] < h[j] }
func (h int64Heap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *int64Heap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *int64Heap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// simulate plays the schedule on a virtual clock and measures it. See the
// package documentation for the model.
func simulate(rec *Recording, sp simParams) (Profile, error) {
	var ld Profile
	reqs := rec.Requests
	nSess := len(rec.Sessions)
	clones := max(1, sp.clones)
	// Which clones take part (scale ramps add whole sessions).
	firstOff := make([]time.Duration, nSess)
	for i := range firstOff {
		firstOff[i] = -1
	}
	kept := 0
	for i := range reqs {
		r := &reqs[i]
		if !sp.all && !r.Kept() {
			continue
		}
		kept++
		if firstOff[r.Session] < 0 {
			firstOff[r.Session] = r.Offset
		}
	}
	if kept*clones > MaxSimulated {
		return ld, fmt.Errorf("the plan replays %d requests, more than the %d a check simulates: sample sessions with --sessions", kept*clones, MaxSimulated)
	}
	due := func(off time.Duration) int64 {
		if sp.pacer == nil {
			return 0
		}
		return int64(sp.pacer.Due(off))
	}
	active := func(sess int32, k int) bool {
		if k == 0 || sp.scaleRamp == nil {
			return true
		}
		from, ok := sp.scaleRamp.ActiveFrom(k)
		return ok && due(firstOff[sess]+time.Duration(k)*sp.stagger) >= int64(from)
	}
	items := make([]item, 0, kept*clones)
	for k := 0; k < clones; k++ {
		shift := time.Duration(k) * sp.stagger
		for i := range reqs {
			r := &reqs[i]
			if (!sp.all && !r.Kept()) || !active(r.Session, k) {
				continue
			}
			if sp.rejected == replay.RejectedSkip && r.flags&flagRejected != 0 {
				continue
			}
			items = append(items, item{req: int32(i), clone: int32(k), due: due(r.Offset + shift)})
		}
	}
	// In due order; ties in recording order, then clone order, as the
	// replay's feeder sorts them.
	slices.SortStableFunc(items, func(a, b item) int {
		if a.due != b.due {
			if a.due < b.due {
				return -1
			}
			return 1
		}
		return 0
	})
	states := make([]cloneState, nSess*clones)
	for i := range states {
		states[i].tokenAt = -1
	}
	stateOf := func(it item) *cloneState { return &states[int(reqs[it.req].Session)*clones+int(it.clone)] }

	// --max-sessions: a session starts when a slot is free and then holds
	// it for its compressed length; its whole schedule slides by the wait.
	if sp.maxSessions > 0 {
		type span struct {
			st        *cloneState
			start, ln int64
		}
		var spans []span
		ends := map[*cloneState]int64{}
		for _, it := range items {
			st := stateOf(it)
			r := &reqs[it.req]
			if !st.started {
				st.started, st.firstDue = true, it.due
				spans = append(spans, span{st: st, start: it.due})
			}
			ends[st] = max(ends[st], it.due+int64(r.Duration))
		}
		slots := int64Heap{}
		for _, s := range spans {
			s.ln = ends[s.st] - s.start
			at := s.start
			if len(slots) >= sp.maxSessions {
				if free := heap.Pop(&slots).(int64); free > at {
					at = free
				}
			}
			s.st.delay = at - s.start
			heap.Push(&slots, at+s.ln)
		}
		for i := range states {
			states[i].started = false
		}
	}

	var (
		flight    int64Heap
		nextGrant int64
		interval  int64
		lags      []float64
		waits     []float64
		sends     = make([]int64, 0, len(items))
		refreshAt []int64
		slipSecs  = map[int64]bool{}
		end       int64
		planned   int64
		gaps      []float64
		lifetimes []float64
	)
	if sp.rate > 0 {
		interval = int64(float64(time.Second) / sp.rate)
	}
	type ev struct {
		at    int64
		delta int
	}
	var evs []ev
	sum := identity.NewSummary()
	var x session.Exchange
	var tls []session.Timeline
	tlOf := map[*cloneState]int{}
	const base = int64(1e18) // synthetic clock for identity's per-second counts
	for _, it := range items {
		r := &reqs[it.req]
		st := stateOf(it)
		// The order rule: wait for every earlier request of the session
		// that had completed before this one started.
		recStart := int64(r.Offset)
		kept := st.pend[:0]
		for _, p := range st.pend {
			if p.recEnd <= recStart {
				st.readyAcc = max(st.readyAcc, p.done)
			} else {
				kept = append(kept, p)
			}
		}
		st.pend = kept
		dueAt := it.due + st.delay
		planned = max(planned, it.due+int64(r.Duration))
		ready := max(dueAt, st.readyAcc)
		if w := ready - dueAt; w > 0 {
			waits = append(waits, float64(w)/1e6)
		}
		send := ready
		if sp.maxInFlight > 0 {
			for len(flight) > 0 && flight[0] <= send {
				heap.Pop(&flight)
			}
			if len(flight) >= sp.maxInFlight {
				send = max(send, heap.Pop(&flight).(int64))
			}
		}
		if interval > 0 {
			send = max(send, nextGrant)
			nextGrant = send + interval
		}
		done := send + int64(r.Duration)
		if sp.maxInFlight > 0 {
			heap.Push(&flight, done)
		}
		lag := send - it.due
		lags = append(lags, float64(lag)/1e6)
		if sp.slipAt > 0 && lag > int64(sp.slipAt) {
			slipSecs[send/int64(time.Second)] = true
		}
		if r.flags&flagNoResp == 0 {
			st.pend = append(st.pend, pendingReq{recEnd: recStart + int64(r.Duration), done: done})
		}
		if !st.started {
			st.started, st.first = true, send
			tlOf[st] = len(tls)
			tls = append(tls, session.Timeline{Key: fmt.Sprintf("%d#%d", r.Session, it.clone), Start: base + send})
		}
		st.last = max(st.last, done)
		end = max(end, done)
		sends = append(sends, send)
		evs = append(evs, ev{send, 1}, ev{done, -1})
		tl := &tls[tlOf[st]]
		tl.End = base + st.last
		tl.Exchanges++

		// Tokens: a request that uses the access token after its
		// lifetime is rejected by the server, whatever the speed.
		if r.flags&flagRejected != 0 {
			ld.Rejected401s++
		}
		if st.tokenAt >= 0 && r.flags&flagAuth == 0 {
			alive := send <= st.tokenAt+st.tokenTTL
			switch {
			case r.flags&flagRejected != 0:
				// Refused in the recording: sent as recorded it is
				// refused again; sent live it succeeds if the token
				// lives, and the recorded retry repeats its effect.
				if alive && sp.rejected == replay.RejectedLive {
					ld.Unrepeated401s++
				}
			case !alive:
				ld.ExpiredTokenRequests++
			}
		}
		if r.Refresh() {
			refreshAt = append(refreshAt, send)
			tl.Refreshes++
			tl.Events = append(tl.Events, session.TimelineEvent{At: base + send, Index: tl.Exchanges - 1,
				Event: session.TokenEvent{Kind: session.TokenRefresh}})
			if st.tokenAt >= 0 && st.tokenTTL > 0 {
				gap := send - st.tokenAt
				gaps = append(gaps, float64(gap)/1e9)
			}
		}
		if r.TTL > 0 && r.flags&flagNoResp == 0 {
			st.tokenAt, st.tokenTTL = done, int64(r.TTL)
			lifetimes = append(lifetimes, r.TTL.Seconds())
		}
		x.Session = tl.Key
		x.Timing = session.Timing{RequestStart: base + send, ResponseEnd: base + done}
		sum.Add(&x)
	}
	ld.Requests = len(items)
	ld.DurationS = float64(end) / 1e9
	ld.PlannedS = float64(planned) / 1e9
	if end > 0 {
		ld.MeanRPS = float64(len(items)) / ld.DurationS
	}
	ld.PeakRPS = peakPerSecond(sends)
	ld.Refreshes = len(refreshAt)
	ld.PeakRefreshesPerSecond = peakPerSecond(refreshAt)
	if end > 0 {
		ld.RefreshesPerSecond = float64(len(refreshAt)) / ld.DurationS
	}
	// Concurrency: sweep sends and completions; a completion at the same
	// instant as a send frees its slot first.
	slices.SortFunc(evs, func(a, b ev) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return a.delta - b.delta
	})
	cur := 0
	for _, e := range evs {
		cur += e.delta
		ld.PeakConcurrency = max(ld.PeakConcurrency, cur)
	}
	// Sessions at once.
	evs = evs[:0]
	for i := range states {
		if states[i].started {
			ld.Sessions++
			evs = append(evs, ev{states[i].first, 1}, ev{states[i].last, -1})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return a.delta - b.delta
	})
	cur = 0
	for _, e := range evs {
		cur += e.delta
		ld.PeakSessions = max(ld.PeakSessions, cur)
	}
	rep := sum.Report(tls, 0)
	ld.RefreshPeak = rep.Refreshes.Peak
	ld.Lag = distOf(lags)
	ld.OrderWaits = len(waits)
	ld.OrderWait = distOf(waits)
	if len(slipSecs) > 0 {
		secs := make([]int64, 0, len(slipSecs))
		for s := range slipSecs {
			secs = append(secs, s)
		}
		slices.Sort(secs)
		ld.SlipS = float64(len(secs))
		ld.SlipFromS = float64(secs[0])
		ld.SlipUntilS = float64(secs[len(secs)-1] + 1)
	}
	if len(lifetimes) > 0 {
		slices.Sort(lifetimes)
		ld.TokenLifetimeS = quantile(lifetimes, 0.5)
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		ld.RefreshIntervalS = quantile(gaps, 0.5)
		if ld.TokenLifetimeS > 0 {
			ld.TokenUse = ld.RefreshIntervalS / ld.TokenLifetimeS
		}
	}
	return ld, nil
}

// peakPerSecond returns the most times falling in one second (ns since
// the run's start).
func peakPerSecond(at []int64) int {
	counts := map[int64]int{}
	best := 0
	for _, t := range at {
		s := t / int64(time.Second)
		counts[s]++
		best = max(best, counts[s])
	}
	return best
}
