package replay

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/reprise-tool/reprise/replay/compare"
)

// ErrMerge means reports cannot be merged into one: they come from
// different recordings, runs or builds, or the shards do not make one
// whole. The *MergeError says which report and why.
var ErrMerge = errors.New("reports cannot be merged")

// MaxShardSkew is how far apart the shards of one run may have started
// for MergeReports: shards started together (WithStartAt) are milliseconds
// apart, by hand minutes; reports hours apart are of different runs.
const MaxShardSkew = time.Hour

// MergeError says why report Index (of those given to MergeReports, from
// 0) cannot be merged; Index is -1 when the set as a whole is wrong.
type MergeError struct {
	Index  int
	Reason string
}

func (e *MergeError) Error() string {
	if e.Index < 0 {
		return "merge reports: " + e.Reason
	}
	return fmt.Sprintf("merge reports: report %d: %s", e.Index, e.Reason)
}

func (e *MergeError) Unwrap() error { return ErrMerge }

// ShardRun is one shard's outcome in a merged report.
type ShardRun struct {
	K           int       `json:"k"`
	N           int       `json:"n"`
	Start       time.Time `json:"start"`
	StartLateMS float64   `json:"start_late_ms,omitempty"`
	Completed   bool      `json:"completed"`
	Failure     string    `json:"failure,omitempty"`
	Abort       *Abort    `json:"abort,omitempty"`
	Sent        uint64    `json:"sent"`
}

// MergeReports joins the reports of the N shards of one run (WithShard)
// into the report of the whole run. Counts are the shards' sums; the
// histograms are merged from their full HDR form, so the merged
// percentiles are those of one histogram fed every sample; the
// per-second series are summed by wall second, aligned on each shard's
// start. Per-second percentiles (Series' P50..P99), which no shard keeps
// in full, are the highest shard's: an upper bound. Inter-arrival gaps
// are each shard's own. The run is completed when every shard completed;
// Abort is the first shard's abort.
//
// The reports must be of one recording (Recording), one report version,
// one target, speed and scale, and hold each shard K of one N exactly
// once; otherwise the error is a *MergeError. A report without Shard is
// taken as shard 0/1.
func MergeReports(reps ...*Report) (*Report, error) {
	if err := checkMergeable(reps); err != nil {
		return nil, err
	}
	first := reps[0]
	m := &Report{
		Version: ReportVersion, Target: first.Target, Speed: first.Speed, Scale: first.Scale,
		Labels: first.Labels, Recording: first.Recording, Guards: first.Guards, Stages: first.Stages,
		StartAt: first.StartAt, Completed: true,
		StatusCodes: map[string]uint64{}, Errors: map[string]uint64{},
	}
	m.Start, m.End = first.Start, first.End
	for _, r := range reps {
		if r.Start.Before(m.Start) {
			m.Start = r.Start
		}
		if r.End.After(m.End) {
			m.End = r.End
		}
	}
	for i, r := range reps {
		sh := shardOf(r)
		m.Shards = append(m.Shards, ShardRun{K: sh.K, N: sh.N, Start: r.Start, StartLateMS: r.StartLateMS,
			Completed: r.Completed, Failure: r.Failure, Abort: r.Abort, Sent: r.Requests.Sent})
		m.StartLateMS = max(m.StartLateMS, r.StartLateMS)
		shift := r.Start.Sub(m.Start)
		m.DurationMS = max(m.DurationMS, r.DurationMS+msf(shift))
		m.LastSendMS = max(m.LastSendMS, r.LastSendMS+msf(shift))
		m.SpanMS = max(m.SpanMS, r.SpanMS)
		m.ExpectedMS = max(m.ExpectedMS, r.ExpectedMS)
		if !r.Completed && m.Completed {
			m.Completed = false
			m.Failure = fmt.Sprintf("shard %s: %s", sh, r.Failure)
		}
		if r.Stopped != "" && m.Stopped == "" {
			m.Stopped = fmt.Sprintf("shard %s: %s", sh, r.Stopped)
		}
		if a := r.Abort; a != nil && (m.Abort == nil || a.At.Before(m.Abort.At)) {
			ab := *a
			ab.AtS = ab.At.Sub(m.Start).Seconds()
			m.Abort = &ab
		}
		if err := m.addCounts(r); err != nil {
			return nil, &MergeError{Index: i, Reason: err.Error()}
		}
		sec := int(shift / time.Second)
		m.PerSecond = addSeries(m.PerSecond, r.PerSecond, sec)
		m.RefreshesPerSecond = addSeries(m.RefreshesPerSecond, r.RefreshesPerSecond, sec)
		m.Series = addSeconds(m.Series, r.Series, sec)
	}
	slices.SortFunc(m.Shards, func(a, b ShardRun) int { return a.K - b.K })
	m.Connections = mergeConnections(reps)
	m.Plan = mergePlans(reps)
	if err := m.mergeFigures(reps); err != nil {
		return nil, err
	}
	return m, nil
}

// checkMergeable refuses a set of reports that are not the shards of one run.
func checkMergeable(reps []*Report) error {
	if len(reps) == 0 {
		return &MergeError{Index: -1, Reason: "no report given"}
	}
	first := reps[0]
	seen := map[int]bool{}
	n := shardOf(first).N
	for i, r := range reps {
		bad := func(format string, a ...any) error { return &MergeError{Index: i, Reason: fmt.Sprintf(format, a...)} }
		sh := shardOf(r)
		switch {
		case r == nil:
			return bad("empty")
		case r.Version != ReportVersion:
			return bad("report version %d: this build merges version %d", r.Version, ReportVersion)
		case len(r.Shards) > 0:
			return bad("already a merged report: merge the shards' own reports")
		case r.Recording == nil:
			return bad("names no recording (written by an older reprise, or not by 'reprise replay'): cannot check that the shards replayed one recording")
		case r.Recording.SHA256 != first.Recording.SHA256:
			return bad("recording %s (sha256 %.12s) differs from report 0's %s (sha256 %.12s): merge only the shards of one run",
				strings.Join(r.Recording.Paths, ","), r.Recording.SHA256, strings.Join(first.Recording.Paths, ","), first.Recording.SHA256)
		case r.Recording.Format != first.Recording.Format:
			return bad("recording format %d differs from report 0's %d", r.Recording.Format, first.Recording.Format)
		case r.Target != first.Target || r.Speed != first.Speed || r.Scale != first.Scale:
			return bad("target %s speed %s scale %d differ from report 0's %s speed %s scale %d: merge only the shards of one run",
				r.Target, r.Speed, r.Scale, first.Target, first.Speed, first.Scale)
		case sh.N != n:
			return bad("shard %s is of %d shards, report 0 of %d", sh, sh.N, n)
		case sh.K < 0 || sh.K >= sh.N:
			return bad("shard %s: K out of range", sh)
		case r.Shard != nil && first.Shard != nil && r.Shard.Hash != first.Shard.Hash:
			return bad("sessions assigned by %q, report 0 by %q", r.Shard.Hash, first.Shard.Hash)
		case seen[sh.K] && sh.N == 1:
			return bad("two reports of whole runs (no --shard): merge the reports of one run's shards (--shard K/N)")
		case seen[sh.K]:
			return bad("shard %s given twice", sh)
		case r.Start.Sub(first.Start).Abs() > MaxShardSkew:
			return bad("started %v apart from report 0: the shards of one run start together (--start-at)", r.Start.Sub(first.Start).Round(time.Second))
		}
		seen[sh.K] = true
	}
	if len(seen) != n {
		var missing []string
		for k := 0; k < n && len(missing) < 10; k++ {
			if !seen[k] {
				missing = append(missing, fmt.Sprintf("%d/%d", k, n))
			}
		}
		return &MergeError{Index: -1, Reason: fmt.Sprintf("%d of %d shards given; missing %s: every shard's report is needed for the whole run", len(seen), n, strings.Join(missing, ", "))}
	}
	return nil
}

// shardOf is the report's shard, 0/1 for a whole run.
func shardOf(r *Report) Shard {
	if r == nil || r.Shard == nil {
		return Shard{K: 0, N: 1}
	}
	return Shard{K: r.Shard.K, N: r.Shard.N}
}

// addCounts adds r's counts to m.
func (m *Report) addCounts(r *Report) error {
	q, p := &m.Requests, r.Requests
	q.Scheduled += p.Scheduled
	q.Sent += p.Sent
	q.Responses += p.Responses
	q.Errors += p.Errors
	q.Skipped += p.Skipped
	q.Uncorrelated += p.Uncorrelated
	q.NotSent += p.NotSent
	q.Truncated += p.Truncated
	addCountMap(m.StatusCodes, r.StatusCodes)
	addCountMap(m.Errors, r.Errors)
	m.StatusMismatch += r.StatusMismatch
	s := &m.Sessions
	s.Total += r.Sessions.Total
	s.Completed += r.Sessions.Completed
	s.Failed += r.Sessions.Failed
	s.Uncorrelated += r.Sessions.Uncorrelated
	for _, pr := range r.Problems {
		if len(m.Problems) < maxProblems {
			m.Problems = append(m.Problems, pr)
		}
	}
	c := &m.Correlation
	c.Learned += r.Correlation.Learned
	c.Substituted += r.Correlation.Substituted
	c.Credentials += r.Correlation.Credentials
	c.Rejected += r.Correlation.Rejected
	// Every shard reads the whole recording and applies the same
	// filters before the shard's: those counts are the run's once.
	f, g := &m.Filtered, r.Filtered
	f.Read, f.ByMethod, f.ByPath = max(f.Read, g.Read), max(f.ByMethod, g.ByMethod), max(f.ByPath, g.ByPath)
	f.ByRange, f.BySessions, f.Unsendable = max(f.ByRange, g.ByRange), max(f.BySessions, g.BySessions), max(f.Unsendable, g.Unsendable)
	f.ByScaleRamp += g.ByScaleRamp
	l, k := &m.Limits, r.Limits
	l.RatePerSecond += k.RatePerSecond
	l.MaxInFlight += k.MaxInFlight
	l.MaxSessions += k.MaxSessions
	addWaits(&l.RateWaits, k.RateWaits)
	addWaits(&l.SessionWaits, k.SessionWaits)
	if r.Compare != nil {
		m.Compare = mergeCompare(m.Compare, r.Compare)
	}
	return nil
}

func addCountMap(dst, src map[string]uint64) {
	for k, v := range src {
		dst[k] += v
	}
}

func addWaits(dst *WaitCount, w WaitCount) {
	dst.Waited += w.Waited
	dst.TotalMS += w.TotalMS
	dst.MaxMS = max(dst.MaxMS, w.MaxMS)
}

// addSeries adds src, which starts shift seconds after dst, into dst.
func addSeries(dst, src []uint64, shift int) []uint64 {
	for i, v := range src {
		j := min(i+shift, MaxSeconds*2-1)
		for len(dst) <= j {
			dst = append(dst, 0)
		}
		dst[j] += v
	}
	return dst
}

// addSeconds adds the per-second series src, starting shift seconds
// after dst, into dst; percentiles take the higher.
func addSeconds(dst, src []Second, shift int) []Second {
	for i, s := range src {
		j := min(i+shift, MaxSeconds*2-1)
		for len(dst) <= j {
			dst = append(dst, Second{T: len(dst)})
		}
		d := &dst[j]
		d.Intended += s.Intended
		d.Achieved += s.Achieved
		d.Completed += s.Completed
		d.Errors += s.Errors
		d.Timeouts += s.Timeouts
		d.P50, d.P90, d.P99 = max(d.P50, s.P50), max(d.P90, s.P90), max(d.P99, s.P99)
	}
	return dst
}

// mergeFigures merges the histograms, run-wide and per route.
func (m *Report) mergeFigures(reps []*Report) error {
	fields := []func(*Report) *Histogram{
		func(r *Report) *Histogram { return &r.Latency },
		func(r *Report) *Histogram { return &r.ServiceTime },
		func(r *Report) *Histogram { return &r.Lag },
		func(r *Report) *Histogram { return &r.OrderWait },
		func(r *Report) *Histogram { return &r.InterArrival },
		func(r *Report) *Histogram { return &r.InterArrivalScaled },
		func(r *Report) *Histogram { return &r.ThinkTime },
		func(r *Report) *Histogram { return &r.ThinkTimeScaled },
		func(r *Report) *Histogram { return &r.SessionLength },
	}
	for _, field := range fields {
		acc := newHist()
		for i, r := range reps {
			if err := acc.add(*field(r)); err != nil {
				return &MergeError{Index: i, Reason: err.Error()}
			}
		}
		*field(m) = acc.summary(true)
	}
	type routeAcc struct {
		rr               RouteReport
		latency, service hist
	}
	routes := map[string]*routeAcc{}
	for i, r := range reps {
		for _, rr := range r.Routes {
			a := routes[rr.Route]
			if a == nil {
				a = &routeAcc{rr: RouteReport{Route: rr.Route, StatusCodes: map[string]uint64{}}, latency: newHist(), service: newHist()}
				routes[rr.Route] = a
			}
			a.rr.Requests += rr.Requests
			a.rr.Errors += rr.Errors
			addCountMap(a.rr.StatusCodes, rr.StatusCodes)
			if err := a.latency.add(rr.Latency); err != nil {
				return &MergeError{Index: i, Reason: "route " + rr.Route + ": " + err.Error()}
			}
			if err := a.service.add(rr.ServiceTime); err != nil {
				return &MergeError{Index: i, Reason: "route " + rr.Route + ": " + err.Error()}
			}
		}
	}
	m.Routes = make([]RouteReport, 0, len(routes))
	for _, a := range routes {
		a.rr.Latency, a.rr.ServiceTime = a.latency.summary(true), a.service.summary(true)
		m.Routes = append(m.Routes, a.rr)
	}
	slices.SortFunc(m.Routes, func(a, b RouteReport) int { return strings.Compare(a.Route, b.Route) })
	return nil
}

// add merges the full histogram held in s into h. A summary with counts
// but no full histogram cannot be merged exactly and is refused.
func (h hist) add(s Histogram) error {
	if s.HDR == "" {
		if s.Count > 0 {
			return errors.New("a histogram has counts but no full HDR form (written by an older reprise): its percentiles cannot be merged")
		}
		return nil
	}
	src, err := decodeHDR(s.HDR)
	if err != nil {
		return err
	}
	if uint64(src.TotalCount()) != s.Count {
		return fmt.Errorf("a histogram's HDR form holds %d samples but its count says %d", src.TotalCount(), s.Count)
	}
	if dropped := h.h.Merge(src); dropped != 0 {
		return fmt.Errorf("a histogram holds %d samples out of range", dropped)
	}
	return nil
}

// errHDR says a report's histogram is not one this build wrote.
var errHDR = errors.New("a histogram's HDR form is damaged or not reprise's (1µs to 1h, 3 significant digits)")

// decodeHDR decodes a Histogram.HDR after checking, from its header, that
// it has the geometry newHist gives, so that a damaged or foreign report
// cannot make the decoder allocate a histogram of any size.
func decodeHDR(s string) (h *hdrhistogram.Histogram, err error) {
	inner, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errHDR
	}
	blob, err := base64.StdEncoding.DecodeString(string(inner))
	if err != nil || len(blob) < 8 {
		return nil, errHDR
	}
	z, err := zlib.NewReader(bytes.NewReader(blob[8:]))
	if err != nil {
		return nil, errHDR
	}
	var head struct {
		Cookie, PayloadLen, NormOffset, Digits int32
		Lowest, Highest                        int64
	}
	if err := binary.Read(io.LimitReader(z, 32), binary.BigEndian, &head); err != nil {
		return nil, errHDR
	}
	ref := newHist().h
	if int64(head.Digits) != ref.SignificantFigures() || head.Lowest != ref.LowestTrackableValue() || head.Highest != ref.HighestTrackableValue() {
		return nil, errHDR
	}
	defer func() {
		// The decoder is a third party's; a report is a user's file.
		if recover() != nil {
			h, err = nil, errHDR
		}
	}()
	h, err = hdrhistogram.Decode(inner)
	if err != nil {
		return nil, errHDR
	}
	return h, nil
}

// mergeCompare adds the comparison b to a (nil for none yet): counts are
// summed, routes joined by name, their fields by path and kind.
func mergeCompare(a, b *compare.Report) *compare.Report {
	if a == nil {
		c := *b
		c.Routes = slices.Clone(b.Routes)
		for i := range c.Routes {
			c.Routes[i].Fields = slices.Clone(c.Routes[i].Fields)
		}
		return &c
	}
	a.Compared += b.Compared
	a.Differing += b.Differing
	a.NoiseSamples += b.NoiseSamples
	a.Overflow += b.Overflow
	for _, br := range b.Routes {
		i := slices.IndexFunc(a.Routes, func(r compare.Route) bool { return r.Route == br.Route })
		if i < 0 {
			a.Routes = append(a.Routes, br)
			continue
		}
		ar := &a.Routes[i]
		ar.Compared += br.Compared
		ar.Differing += br.Differing
		ar.NoiseSamples += br.NoiseSamples
		if ar.Compared > 0 {
			ar.Share = float64(ar.Differing) / float64(ar.Compared)
		}
		for _, bf := range br.Fields {
			j := slices.IndexFunc(ar.Fields, func(f compare.Field) bool { return f.Path == bf.Path && f.Kind == bf.Kind })
			if j < 0 {
				ar.Fields = append(ar.Fields, bf)
				continue
			}
			ar.Fields[j].Count += bf.Count
			ar.Fields[j].Volatile += bf.Volatile
		}
		for j := range ar.Fields {
			if ar.Compared > 0 {
				ar.Fields[j].Rate = float64(ar.Fields[j].Count) / float64(ar.Compared)
			}
		}
	}
	return a
}

// mergePlans merges the shards' plan sections. The plan is the
// recording's, so its rules and unreplaced places are the same in every
// shard that had one and are taken once (each place's request count is
// the recording's, not a shard's); what the memory bounds did is each
// shard's own and is summed, and the bounds are the largest any shard ran
// with. Nil when no shard has a plan section.
func mergePlans(reps []*Report) *PlanReport {
	var m *PlanReport
	for _, r := range reps {
		p := r.Plan
		if p == nil {
			continue
		}
		if m == nil {
			m = &PlanReport{Rules: p.Rules, All: p.All, Unreplaced: slices.Clone(p.Unreplaced)}
		}
		q, s := &m.Memory, p.Memory
		q.WindowExchanges = max(q.WindowExchanges, s.WindowExchanges)
		q.WindowBytes = max(q.WindowBytes, s.WindowBytes)
		q.ByExchanges += s.ByExchanges
		q.ByBytes += s.ByBytes
		q.BodiesDropped += s.BodiesDropped
		q.PeakExchanges = max(q.PeakExchanges, s.PeakExchanges) // each shard's own window
		q.PeakBytes = max(q.PeakBytes, s.PeakBytes)
	}
	return m
}
