package check

import (
	"cmp"
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
	// Connections is replay's --connections: replay.ConnectionsRecorded
	// (the default when "") makes a request wait for the one before it on
	// its recorded connection, whichever session that was, as the engine
	// does; replay.ConnectionsPooled does not.
	Connections string
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
	switch p.Connections {
	case "", replay.ConnectionsRecorded, replay.ConnectionsPooled:
	default:
		return fmt.Errorf("connections %q: want %s or %s", p.Connections, replay.ConnectionsRecorded, replay.ConnectionsPooled)
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
	if p.Connections == replay.ConnectionsPooled {
		parts = append(parts, "pooled connections")
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
	Lag        session.Dist `json:"lag_ms"`
	OrderWaits int          `json:"order_waits"`
	OrderWait  session.Dist `json:"order_wait_ms"`
	SlipS      float64      `json:"slip_s"`       // seconds of the run with lag above the threshold
	SlipFromS  float64      `json:"slip_from_s"`  // first such second
	SlipUntilS float64      `json:"slip_until_s"` // end of the last such second
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
	pooled      bool          // --connections pooled: no wait for the connection's previous request
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
	readyAcc int64 // latest done among the settled requests the order made it wait for
	pend     []*simPending
	tokenAt  int64 // wall ns the current access token was issued; -1 none
	tokenTTL int64
}

// simPending is a simulated request later ones of its session may wait
// for: its recorded order and when it is done on the virtual clock.
type simPending struct {
	order schedule.Order
	done  int64
}

func (p *simPending) Order() *schedule.Order { return &p.order }

// orderTime places a recording offset on the order rule's clock: shifted
// by a nanosecond, so that a request at offset 0 that took no time still
// completed (an End of 0 means it never did).
func orderTime(off time.Duration) int64 { return int64(off) + 1 }

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

// sim is one simulation: the schedule played on a virtual clock.
type sim struct {
	rec    *Recording
	sp     simParams
	clones int
	items  []item
	states []cloneState
	ld     Profile

	flight    int64Heap
	nextGrant int64
	interval  int64
	lags      []float64
	waits     []float64
	sends     []int64
	refreshAt []int64
	slipSecs  map[int64]bool
	end       int64
	planned   int64
	gaps      []float64
	lifetimes []float64
	evs       []ev
	deps      []*simPending
	doneOf    map[int64]int64 // done of the requests a data edge points at, by req*clones+clone

	sum  *identity.Summary
	x    session.Exchange
	tls  []session.Timeline
	tlOf map[*cloneState]int
}

// ev is a send (+1) or a completion (-1) at a moment.
type ev struct {
	at    int64
	delta int
}

// simBase is the synthetic clock for identity's per-second counts.
const simBase = int64(1e18)

// simulate plays the schedule on a virtual clock and measures it. See the
// package documentation for the model. The order rule is the engine's
// (package replay/schedule): the time rule and the data edges the
// recorded clocks contradict.
func simulate(rec *Recording, sp simParams) (Profile, error) {
	s := &sim{rec: rec, sp: sp, clones: max(1, sp.clones), slipSecs: map[int64]bool{},
		sum: identity.NewSummary(), tlOf: map[*cloneState]int{}, doneOf: map[int64]int64{}}
	if err := s.schedule(); err != nil {
		return s.ld, err
	}
	s.states = make([]cloneState, len(rec.Sessions)*s.clones)
	for i := range s.states {
		s.states[i].tokenAt = -1
	}
	if sp.maxSessions > 0 {
		s.sessionDelays()
	}
	if sp.rate > 0 {
		s.interval = int64(float64(time.Second) / sp.rate)
	}
	s.sends = make([]int64, 0, len(s.items))
	for _, it := range s.items {
		s.step(it)
	}
	s.measure()
	return s.ld, nil
}

// due is the pacer's due time for a recording offset (0 under max).
func (s *sim) due(off time.Duration) int64 {
	if s.sp.pacer == nil {
		return 0
	}
	return int64(s.sp.pacer.Due(off))
}

// schedule makes the items, the requests of every clone that takes part,
// in due order; ties in recording order, then clone order, as the
// replay's feeder sorts them.
func (s *sim) schedule() error {
	reqs, sp := s.rec.Requests, s.sp
	// Which clones take part (scale ramps add whole sessions).
	firstOff := make([]time.Duration, len(s.rec.Sessions))
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
	if kept*s.clones > MaxSimulated {
		return fmt.Errorf("the plan replays %d requests, more than the %d a check simulates: sample sessions with --sessions", kept*s.clones, MaxSimulated)
	}
	var pacer schedule.Pacer = schedule.Max{}
	if sp.pacer != nil {
		pacer = sp.pacer
	}
	var sr schedule.ScaleRamp
	if sp.scaleRamp != nil {
		sr = sp.scaleRamp
	}
	s.items = make([]item, 0, kept*s.clones)
	for k := 0; k < s.clones; k++ {
		for i := range reqs {
			r := &reqs[i]
			if (!sp.all && !r.Kept()) || !schedule.CloneActive(pacer, sr, firstOff[r.Session], k, sp.stagger) {
				continue
			}
			if sp.rejected == replay.RejectedSkip && r.flags&flagRejected != 0 {
				continue
			}
			s.items = append(s.items, item{req: int32(i), clone: int32(k), due: s.due(schedule.CloneOffset(r.Offset, k, sp.stagger))})
		}
	}
	slices.SortStableFunc(s.items, func(a, b item) int { return cmp.Compare(a.due, b.due) })
	return nil
}

func (s *sim) stateOf(it item) *cloneState {
	return &s.states[int(s.rec.Requests[it.req].Session)*s.clones+int(it.clone)]
}

// sessionDelays applies --max-sessions: a session starts when a slot is
// free and then holds it for its compressed length; its whole schedule
// slides by the wait.
func (s *sim) sessionDelays() {
	type span struct {
		st        *cloneState
		start, ln int64
	}
	var spans []span
	ends := map[*cloneState]int64{}
	for _, it := range s.items {
		st := s.stateOf(it)
		r := &s.rec.Requests[it.req]
		if !st.started {
			st.started, st.firstDue = true, it.due
			spans = append(spans, span{st: st, start: it.due})
		}
		ends[st] = max(ends[st], it.due+int64(r.Duration))
	}
	slots := int64Heap{}
	for _, sp := range spans {
		sp.ln = ends[sp.st] - sp.start
		at := sp.start
		if len(slots) >= s.sp.maxSessions {
			if free := heap.Pop(&slots).(int64); free > at {
				at = free
			}
		}
		sp.st.delay = at - sp.start
		heap.Push(&slots, at+sp.ln)
	}
	for i := range s.states {
		s.states[i].started = false
	}
}

// ready returns when the order rule lets the item go: the latest done of
// the earlier requests of its session it waits for.
func (s *sim) ready(it item, st *cloneState) int64 {
	recStart := orderTime(s.rec.Requests[it.req].Offset)
	s.deps = schedule.After(s.deps[:0], st.pend, recStart)
	for _, d := range s.deps {
		st.readyAcc = max(st.readyAcc, d.done)
	}
	// The settled requests are implied by the ones After named, and
	// every later request of the clone starts no earlier: readyAcc holds
	// them from now on.
	st.pend = slices.DeleteFunc(st.pend, func(p *simPending) bool { return schedule.Settled(&p.order, recStart) })
	ready := st.readyAcc
	for _, from := range s.rec.after[it.req] {
		if done, ok := s.doneOf[int64(from)*int64(s.clones)+int64(it.clone)]; ok {
			ready = max(ready, done)
		}
	}
	if from, ok := s.rec.lineAfter[it.req]; ok && !s.sp.pooled {
		if done, ok := s.doneOf[int64(from)*int64(s.clones)+int64(it.clone)]; ok {
			ready = max(ready, done)
		}
	}
	return ready
}

// step sends one item on the virtual clock and measures it.
func (s *sim) step(it item) {
	r := &s.rec.Requests[it.req]
	st := s.stateOf(it)
	ready := s.ready(it, st)
	dueAt := it.due + st.delay
	s.planned = max(s.planned, it.due+int64(r.Duration))
	ready = max(dueAt, ready)
	if w := ready - dueAt; w > 0 {
		s.waits = append(s.waits, float64(w)/1e6)
	}
	send := s.caps(ready)
	done := send + int64(r.Duration)
	if s.sp.maxInFlight > 0 {
		heap.Push(&s.flight, done)
	}
	lag := send - it.due
	s.lags = append(s.lags, float64(lag)/1e6)
	if s.sp.slipAt > 0 && lag > int64(s.sp.slipAt) {
		s.slipSecs[send/int64(time.Second)] = true
	}
	if r.flags&flagNoResp == 0 {
		start := orderTime(r.Offset)
		st.pend = append(st.pend, &simPending{order: schedule.Order{Start: start, End: start + int64(r.Duration)}, done: done})
	}
	if s.rec.issuesTo(it.req) {
		s.doneOf[int64(it.req)*int64(s.clones)+int64(it.clone)] = done
	}
	if !st.started {
		st.started, st.first = true, send
		s.tlOf[st] = len(s.tls)
		s.tls = append(s.tls, session.Timeline{Key: fmt.Sprintf("%d#%d", r.Session, it.clone), Start: simBase + send})
	}
	st.last = max(st.last, done)
	s.end = max(s.end, done)
	s.sends = append(s.sends, send)
	s.evs = append(s.evs, ev{send, 1}, ev{done, -1})
	tl := &s.tls[s.tlOf[st]]
	tl.End = simBase + st.last
	tl.Exchanges++
	s.tokens(r, st, tl, send, done)
	s.x.Session = tl.Key
	s.x.Timing = session.Timing{RequestStart: simBase + send, ResponseEnd: simBase + done}
	s.sum.Add(&s.x)
}

// caps returns when a request ready at ready is sent under the in-flight
// and rate caps.
func (s *sim) caps(ready int64) int64 {
	send := ready
	if s.sp.maxInFlight > 0 {
		for len(s.flight) > 0 && s.flight[0] <= send {
			heap.Pop(&s.flight)
		}
		if len(s.flight) >= s.sp.maxInFlight {
			send = max(send, heap.Pop(&s.flight).(int64))
		}
	}
	if s.interval > 0 {
		send = max(send, s.nextGrant)
		s.nextGrant = send + s.interval
	}
	return send
}

// tokens measures the item's use of its session's tokens: a request that
// uses the access token after its lifetime is rejected by the server,
// whatever the speed.
func (s *sim) tokens(r *Request, st *cloneState, tl *session.Timeline, send, done int64) {
	ld := &s.ld
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
			if alive && s.sp.rejected == replay.RejectedLive {
				ld.Unrepeated401s++
			}
		case !alive:
			ld.ExpiredTokenRequests++
		}
	}
	if r.Refresh() {
		s.refreshAt = append(s.refreshAt, send)
		tl.Refreshes++
		tl.Events = append(tl.Events, session.TimelineEvent{At: simBase + send, Index: tl.Exchanges - 1,
			Event: session.TokenEvent{Kind: session.TokenRefresh}})
		if st.tokenAt >= 0 && st.tokenTTL > 0 {
			gap := send - st.tokenAt
			s.gaps = append(s.gaps, float64(gap)/1e9)
		}
	}
	if r.TTL > 0 && r.flags&flagNoResp == 0 {
		st.tokenAt, st.tokenTTL = done, int64(r.TTL)
		s.lifetimes = append(s.lifetimes, r.TTL.Seconds())
	}
}

// peakOf sweeps sends and completions for the most at once; a completion
// at the same instant as a send frees its slot first.
func peakOf(evs []ev) int {
	slices.SortFunc(evs, func(a, b ev) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return a.delta - b.delta
	})
	cur, peak := 0, 0
	for _, e := range evs {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak
}

// measure fills the profile from what the simulation gathered.
func (s *sim) measure() {
	ld := &s.ld
	ld.Requests = len(s.items)
	ld.DurationS = float64(s.end) / 1e9
	ld.PlannedS = float64(s.planned) / 1e9
	if s.end > 0 {
		ld.MeanRPS = float64(len(s.items)) / ld.DurationS
	}
	ld.PeakRPS = peakPerSecond(s.sends)
	ld.Refreshes = len(s.refreshAt)
	ld.PeakRefreshesPerSecond = peakPerSecond(s.refreshAt)
	if s.end > 0 {
		ld.RefreshesPerSecond = float64(len(s.refreshAt)) / ld.DurationS
	}
	ld.PeakConcurrency = peakOf(s.evs)
	// Sessions at once.
	s.evs = s.evs[:0]
	for i := range s.states {
		if s.states[i].started {
			ld.Sessions++
			s.evs = append(s.evs, ev{s.states[i].first, 1}, ev{s.states[i].last, -1})
		}
	}
	ld.PeakSessions = peakOf(s.evs)
	rep := s.sum.Report(s.tls, 0)
	ld.RefreshPeak = rep.Refreshes.Peak
	ld.Lag = session.Summarize(s.lags)
	ld.OrderWaits = len(s.waits)
	ld.OrderWait = session.Summarize(s.waits)
	if len(s.slipSecs) > 0 {
		secs := make([]int64, 0, len(s.slipSecs))
		for sec := range s.slipSecs {
			secs = append(secs, sec)
		}
		slices.Sort(secs)
		ld.SlipS = float64(len(secs))
		ld.SlipFromS = float64(secs[0])
		ld.SlipUntilS = float64(secs[len(secs)-1] + 1)
	}
	if len(s.lifetimes) > 0 {
		slices.Sort(s.lifetimes)
		ld.TokenLifetimeS = session.Quantile(s.lifetimes, 0.5)
	}
	if len(s.gaps) > 0 {
		slices.Sort(s.gaps)
		ld.RefreshIntervalS = session.Quantile(s.gaps, 0.5)
		if ld.TokenLifetimeS > 0 {
			ld.TokenUse = ld.RefreshIntervalS / ld.TokenLifetimeS
		}
	}
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
