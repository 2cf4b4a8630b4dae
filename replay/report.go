package replay

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/reprise-tool/reprise/replay/compare"
)

// ReportVersion is the version of the run report's JSON layout. Fields are
// only ever added within a version (connections was added so).
const ReportVersion = 1

// maxRoutes bounds per-route figures; further routes count under "other".
const maxRoutes = 500

// maxProblems bounds the sessions listed by name in a report.
const maxProblems = 100

// Result is the outcome of one scheduled request.
type Result struct {
	Session string        // session key ("S", or "S#k" for clone k)
	Method  string        // as sent
	Target  string        // request-target as sent, after substitution
	Route   string        // see Route
	Offset  time.Duration // in the recording
	// Status is the live status code (0 on error or when not sent);
	// RecordedStatus the recording's (0 when it had no response).
	Status         int
	RecordedStatus int
	Err            error  // transport error, nil on a response
	ErrKind        string // see the ErrKind constants; "" on a response
	// Due is when the schedule wanted the request sent; Ready when its
	// session's order allowed it; Sent when it was handed to the
	// connection; Done when the response's last byte arrived (or the
	// error). Ready, Sent and Done are zero when it was not sent.
	Due, Ready, Sent, Done time.Time
	Blocked                bool // waited for an earlier request of its session
	Uncorrelated           bool // carried a value with no live counterpart
	Skipped                bool // not sent (uncorrelated with --uncorrelated skip)
	Substituted            int  // values replaced by live ones
	BytesIn                int64
}

// Report is everything measured in one replay. It is written as JSON by
// WriteJSON with the field names below, which `reprise report` and
// `reprise check` read; durations are in milliseconds (floats) unless the
// name says otherwise.
type Report struct {
	Version int               `json:"version"`
	Target  string            `json:"target"`
	Speed   string            `json:"speed"` // "1", "2.5", "max", or the pacer's description
	Scale   int               `json:"scale"`
	Labels  map[string]string `json:"labels,omitempty"`
	Start   time.Time         `json:"start"`
	End     time.Time         `json:"end"`
	// DurationMS is the run's length, from start to the last response;
	// SpanMS the recording's span (first request start to last request
	// start, of the requests replayed) and ExpectedMS span/speed.
	DurationMS float64 `json:"duration_ms"`
	SpanMS     float64 `json:"recording_span_ms"`
	ExpectedMS float64 `json:"expected_duration_ms,omitempty"`
	// LastSendMS is when the last request was sent, from the start: the
	// schedule's own length, without the last response's latency.
	LastSendMS float64 `json:"last_send_ms"`
	// Completed is true when every selected request was scheduled and the
	// share of transport errors stayed within the allowed rate.
	Completed bool   `json:"completed"`
	Stopped   string `json:"stopped,omitempty"` // why the replay stopped early, if it did
	Failure   string `json:"failure,omitempty"` // why Completed is false, in words

	Requests    RequestCounts     `json:"requests"`
	StatusCodes map[string]uint64 `json:"status_codes"`
	// StatusMismatch counts responses whose status differs from the
	// recording's.
	StatusMismatch uint64            `json:"status_mismatch"`
	Errors         map[string]uint64 `json:"errors"` // by kind: connect, timeout, reset, canceled, other

	// Latency is from the due time to the last byte (free of coordinated
	// omission); ServiceTime from the send to the last byte; Lag from the
	// due time to the send; OrderWait from the due time to the moment the
	// session's order allowed the send, over the requests that found an
	// earlier request of their session still in flight and became ready
	// after their due time.
	Latency     Histogram `json:"latency"`
	ServiceTime Histogram `json:"service_time"`
	Lag         Histogram `json:"lag"`
	OrderWait   Histogram `json:"order_wait"`

	Routes      []RouteReport     `json:"routes"`
	Sessions    SessionCounts     `json:"sessions"`
	Problems    []SessionProblem  `json:"session_problems,omitempty"`
	Correlation CorrelationCounts `json:"correlation"`
	Filtered    FilterCounts      `json:"filtered"`

	// The figures 'reprise check' compares with the recording. PerSecond
	// counts the requests sent in each whole wall second since the start,
	// RefreshesPerSecond those of them whose recorded exchange carries a
	// token refresh. InterArrival holds the wall gaps between consecutive
	// sends; InterArrivalScaled the same gaps multiplied by the speed in
	// force when they ended (recording time, comparable with the
	// recording's gaps under a ramp; empty under --speed max). ThinkTime
	// is, per session clone, the time from the latest completion of its
	// earlier requests to its next send (when not negative), and
	// ThinkTimeScaled the same times multiplied by the speed in force at
	// the send (approximate for a pause that spans a stage change);
	// SessionLength, per clone, its first send to its last completion.
	PerSecond          []uint64  `json:"per_second"`
	RefreshesPerSecond []uint64  `json:"refreshes_per_second"`
	InterArrival       Histogram `json:"inter_arrival"`
	InterArrivalScaled Histogram `json:"inter_arrival_scaled"`
	ThinkTime          Histogram `json:"think_time"`
	ThinkTimeScaled    Histogram `json:"think_time_scaled"`
	SessionLength      Histogram `json:"session_length"`

	// Series holds one entry per wall second: requests due (intended)
	// and sent (achieved), latency percentiles from the due time over the
	// requests that finished in it, errors (no response or 5xx) and
	// timeouts. The HTML page draws it.
	Series []Second `json:"series"`
	// Stages are the ramp's stages on the run's clock (empty without a
	// ramp).
	Stages []StageReport `json:"stages,omitempty"`
	// Limits are the caps in force and how long requests waited at them;
	// that wait is part of Lag.
	Limits Limits `json:"limits"`
	// Guards are the --abort-on rules in force ("none" when off, empty
	// when the run had no guard).
	Guards string `json:"guards,omitempty"`
	// Abort says what stopped the run early: a guard or an interrupt.
	Abort *Abort `json:"abort,omitempty"`
	// Compare holds the differences between the live responses and the
	// recorded ones (--compare); nil when not asked for.
	Compare *compare.Report `json:"compare,omitempty"`

	// Recording names the recording replayed (WithRecording); reports
	// are merged only when it is the same.
	Recording *RecordingID `json:"recording,omitempty"`
	// Shard is set in one shard's report (WithShard): the part of the
	// sessions it sent and how the whole run's caps were divided.
	Shard *ShardReport `json:"shard,omitempty"`
	// Shards lists the shards a merged report was made of (MergeReports);
	// empty in one process's report.
	Shards []ShardRun `json:"shards,omitempty"`
	// StartAt is the agreed start instant (WithStartAt) and StartLateMS
	// how long after it the run's clock started.
	StartAt     *time.Time `json:"start_at,omitempty"`
	StartLateMS float64    `json:"start_late_ms,omitempty"`
	// Connections says how the run used connections (see ConnReport).
	Connections *ConnReport `json:"connections,omitempty"`
	// Plan says which correlation plan the replay followed, what it could
	// not replace and what the memory bounds did (see PlanReport).
	Plan *PlanReport `json:"plan,omitempty"`
}

// StageReport is one ramp stage on the run's wall clock, in seconds since
// the start.
type StageReport struct {
	Name     string  `json:"name"`
	Start    float64 `json:"start_s"`
	End      float64 `json:"end_s"`
	Value    float64 `json:"value"`
	EndValue float64 `json:"end_value"`
}

// Limits are a run's caps and their waits.
type Limits struct {
	RatePerSecond float64   `json:"rate_per_s,omitempty"` // --rate; 0 for none
	MaxInFlight   int       `json:"max_inflight"`
	MaxSessions   int       `json:"max_sessions,omitempty"` // 0 for none
	RateWaits     WaitCount `json:"rate_waits"`
	SessionWaits  WaitCount `json:"session_waits"`
}

// WaitCount says how many requests waited at a cap, and for how long.
type WaitCount struct {
	Waited  uint64  `json:"waited"`
	TotalMS float64 `json:"total_ms"`
	MaxMS   float64 `json:"max_ms"`
}

// Abort kinds.
const (
	AbortGuard     = "guard"     // a --abort-on rule held
	AbortInterrupt = "interrupt" // SIGINT or SIGTERM
)

// Abort says when and why a run stopped early.
type Abort struct {
	Kind string `json:"kind"` // AbortGuard or AbortInterrupt
	// Rule is the guard's rule ("p99>2s"), or "interrupt".
	Rule   string    `json:"rule"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	AtS    float64   `json:"at_s"` // seconds since the start
	// Value and Threshold are the guard's measure and limit, in the
	// metric's base unit (a fraction, seconds, a count); WindowS and
	// WindowRequests the window it was measured over.
	Value          float64 `json:"value,omitempty"`
	Threshold      float64 `json:"threshold,omitempty"`
	WindowS        float64 `json:"window_s,omitempty"`
	WindowRequests int     `json:"window_requests,omitempty"`
	// Abandoned is set when requests were still in flight at the end of
	// the drain and were abandoned.
	Abandoned bool `json:"abandoned,omitempty"`
}

// RequestCounts counts requests by fate.
type RequestCounts struct {
	Scheduled    uint64 `json:"scheduled"`    // selected and handed to the schedule (clones included)
	Sent         uint64 `json:"sent"`         // put on the wire
	Responses    uint64 `json:"responses"`    // answered with a status
	Errors       uint64 `json:"errors"`       // transport errors
	Skipped      uint64 `json:"skipped"`      // uncorrelated and not sent
	Uncorrelated uint64 `json:"uncorrelated"` // uncorrelated, sent or not
	NotSent      uint64 `json:"not_sent"`     // dropped because the replay stopped
	Truncated    uint64 `json:"truncated"`    // sent with a body the recording had cut short
}

// Histogram summarises one HDR histogram in milliseconds. HDR holds the
// full histogram (base64 of the compressed HdrHistogram V2 encoding, in
// microseconds) so that reports can be merged and re-queried.
type Histogram struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	HDR   string  `json:"hdr,omitempty"`
}

// RouteReport holds one route's figures.
type RouteReport struct {
	Route       string            `json:"route"`
	Requests    uint64            `json:"requests"` // sent
	Errors      uint64            `json:"errors"`
	StatusCodes map[string]uint64 `json:"status_codes"`
	Latency     Histogram         `json:"latency"`
	ServiceTime Histogram         `json:"service_time"`
}

// SessionCounts counts sessions by outcome. A session failed when one of
// its requests met a transport error; it is uncorrelated when one carried
// a value with no live counterpart (and none failed); completed otherwise.
type SessionCounts struct {
	Total        uint64 `json:"total"`
	Completed    uint64 `json:"completed"`
	Failed       uint64 `json:"failed"`
	Uncorrelated uint64 `json:"uncorrelated"`
}

// SessionProblem names a session that did not complete.
type SessionProblem struct {
	Session string `json:"session"`
	Outcome string `json:"outcome"` // "failed" or "uncorrelated"
	Detail  string `json:"detail"`
}

// CorrelationCounts says how live values were used.
type CorrelationCounts struct {
	Learned     uint64 `json:"learned"`     // recorded->live mappings learned
	Substituted uint64 `json:"substituted"` // values replaced in requests
	Credentials uint64 `json:"credentials"` // login requests given --credentials
	// Rejected counts requests the recording's server refused with 401,
	// handled by the rejected policy (sent as recorded by default).
	Rejected uint64 `json:"rejected_in_recording"`
}

// FilterCounts counts exchanges read and those left out.
type FilterCounts struct {
	Read       uint64 `json:"read"`
	ByMethod   uint64 `json:"method"`
	ByPath     uint64 `json:"path"`
	ByRange    uint64 `json:"range"`
	BySessions uint64 `json:"sessions"`
	// ByScaleRamp counts clone requests left out because the scale ramp
	// had not reached their clone when their session began.
	ByScaleRamp uint64 `json:"scale_ramp,omitempty"`
	// ByShard counts clone requests left to the other shards (WithShard).
	ByShard uint64 `json:"shard,omitempty"`
	// Unsendable counts exchanges with no method or target.
	Unsendable uint64 `json:"unsendable"`
	// NeedsHTTP2 counts gRPC calls, which the HTTP/1 sender cannot carry.
	NeedsHTTP2 uint64 `json:"grpc_needs_http2,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("read replay report: %w", err)
	}
	if r.Version != ReportVersion {
		return nil, fmt.Errorf("replay report version %d: this build reads version %d", r.Version, ReportVersion)
	}
	return &r, nil
}

// Decode returns the full histogram held in h, or nil when it has none.
func (h Histogram) Decode() (*hdrhistogram.Histogram, error) {
	if h.HDR == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(h.HDR)
	if err != nil {
		return nil, err
	}
	return hdrhistogram.Decode(b)
}

// WriteSummary writes the report for a person: a few lines read at a glance.
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	verdict := "COMPLETED"
	if !r.Completed {
		verdict = "FAILED: " + r.Failure
	}
	fmt.Fprintf(&b, "replay %s -> %s  speed %s  scale %d\n", verdict, r.Target, r.Speed, r.Scale)
	r.shardSummary(&b)
	fmt.Fprintf(&b, "  duration  %s, last send at %s (recording span %s", FormatMS(r.DurationMS), FormatMS(r.LastSendMS), FormatMS(r.SpanMS))
	if r.ExpectedMS > 0 {
		fmt.Fprintf(&b, ", expected %s", FormatMS(r.ExpectedMS))
	}
	b.WriteString(")\n")
	if r.Stopped != "" {
		fmt.Fprintf(&b, "  stopped   %s\n", r.Stopped)
	}
	if a := r.Abort; a != nil {
		if a.Kind == AbortGuard {
			fmt.Fprintf(&b, "  ABORTED   by guard %s at %.1fs: %s\n", a.Rule, a.AtS, a.Reason)
		} else {
			fmt.Fprintf(&b, "  ABORTED   by an interrupt at %.1fs\n", a.AtS)
		}
		if a.Abandoned {
			b.WriteString("            requests still in flight after the drain were abandoned\n")
		}
	}
	if len(r.Stages) > 0 {
		names := make([]string, len(r.Stages))
		for i, s := range r.Stages {
			names[i] = s.Name
		}
		fmt.Fprintf(&b, "  stages    %s\n", strings.Join(names, ", "))
	}
	q := r.Requests
	fmt.Fprintf(&b, "  requests  %d scheduled, %d sent, %d responses, %d errors, %d skipped, %d not sent\n",
		q.Scheduled, q.Sent, q.Responses, q.Errors, q.Skipped, q.NotSent)
	if n := r.Filtered.NeedsHTTP2; n > 0 {
		fmt.Fprintf(&b, "  skipped   %d gRPC calls: grpc needs http2 replay (drop --protocol h1; replay over h2c or h2)\n", n)
	}
	fmt.Fprintf(&b, "  status    %s", FormatCounts(r.StatusCodes))
	if r.StatusMismatch > 0 {
		fmt.Fprintf(&b, "  (%d differ from the recording)", r.StatusMismatch)
	}
	b.WriteString("\n")
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "  errors    %s\n", FormatCounts(r.Errors))
	}
	h := r.Latency
	fmt.Fprintf(&b, "  latency   p50 %s  p90 %s  p99 %s  max %s  (from due time)\n", FormatMS(h.P50), FormatMS(h.P90), FormatMS(h.P99), FormatMS(h.Max))
	h = r.ServiceTime
	fmt.Fprintf(&b, "  service   p50 %s  p90 %s  p99 %s  max %s  (from send)\n", FormatMS(h.P50), FormatMS(h.P90), FormatMS(h.P99), FormatMS(h.Max))
	fmt.Fprintf(&b, "  lag       p50 %s  p99 %s  max %s;  order waits %d, p99 %s\n", FormatMS(r.Lag.P50), FormatMS(r.Lag.P99), FormatMS(r.Lag.Max), r.OrderWait.Count, FormatMS(r.OrderWait.P99))
	if l := r.Limits; l.RateWaits.Waited > 0 || l.SessionWaits.Waited > 0 {
		// Name only the caps in force, so a reader never sees "max sessions 0".
		var caps []string
		if l.RatePerSecond > 0 {
			caps = append(caps, fmt.Sprintf("rate %g/s: %d waited (max %s)", l.RatePerSecond, l.RateWaits.Waited, FormatMS(l.RateWaits.MaxMS)))
		}
		if l.MaxSessions > 0 {
			caps = append(caps, fmt.Sprintf("max sessions %d: %d waited (max %s)", l.MaxSessions, l.SessionWaits.Waited, FormatMS(l.SessionWaits.MaxMS)))
		}
		fmt.Fprintf(&b, "  caps      %s; counted in lag\n", strings.Join(caps, "; "))
	}
	if c := r.Compare; c != nil {
		fmt.Fprintf(&b, "  compared  %d responses with the recording: %d differ beyond noise", c.Compared, c.Differing)
		if rp := c.Reported(); len(rp) > 0 {
			if len(rp) > 5 {
				rp = append(rp[:5:5], fmt.Sprintf("and %d more", len(rp)-5))
			}
			fmt.Fprintf(&b, " (%s)", strings.Join(rp, "; "))
		}
		b.WriteString("\n")
	}
	r.Connections.summary(&b)
	s := r.Sessions
	fmt.Fprintf(&b, "  sessions  %d: %d completed, %d failed, %d uncorrelated\n", s.Total, s.Completed, s.Failed, s.Uncorrelated)
	c := r.Correlation
	fmt.Fprintf(&b, "  live values  %d learned, %d substituted", c.Learned, c.Substituted)
	if c.Credentials > 0 {
		fmt.Fprintf(&b, ", %d logins given credentials", c.Credentials)
	}
	if c.Rejected > 0 {
		fmt.Fprintf(&b, ", %d refused in the recording (401)", c.Rejected)
	}
	b.WriteString("\n")
	r.Plan.writeSummary(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatMS writes a time in milliseconds for a person: 2.35ms, 120ms,
// 12.3s (the summary's and the HTML page's form).
func FormatMS(v float64) string {
	switch {
	case v >= 10000:
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + "s"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	default:
		return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
	}
}

// FormatCounts writes counts by name in name order, "200:12 503:1", or
// "none".
func FormatCounts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
