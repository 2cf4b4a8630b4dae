package replay

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Second is one second of the run.
type Second struct {
	T int `json:"t"` // seconds since the start
	// Intended is how many requests the schedule made due in this second;
	// Achieved how many were sent.
	Intended float64 `json:"intended"`
	Achieved float64 `json:"achieved"`
	// Latency percentiles from the due time, in milliseconds, over the
	// requests that finished in this second; Completed says how many
	// (0 leaves a gap in the latency chart).
	Completed int     `json:"completed"`
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	// Errors finished without a response or with a 5xx; Timeouts is the
	// part of them that timed out.
	Errors   int `json:"errors"`
	Timeouts int `json:"timeouts,omitempty"`
}

// MaxSeconds bounds how many seconds a series keeps (two days at most:
// later finishes count in the last second).
const MaxSeconds = 86400

// seriesRecorder builds the report's per-second series while the replay
// runs: the engine tells it when each request was due, sent and finished, and
// Series returns one Second per second of the run. Percentiles are taken
// per second from an HDR histogram that is kept only while its second is
// open (seriesGrace seconds after the newest finish), so memory stays flat over
// long runs. Safe for concurrent use.
type seriesRecorder struct {
	start time.Time
	mu    sync.Mutex
	secs  []Second
	open  map[int]*hdrhistogram.Histogram
	pool  []*hdrhistogram.Histogram
	high  int // the newest second that saw a finish
}

// seriesGrace is how many seconds a second's latency histogram stays open for
// requests that finish out of order. A finish later than that still
// counts in Completed and Errors, but not in the percentiles.
const seriesGrace = 5

// newSeriesRecorder returns a recorder for a run that started at start.
func newSeriesRecorder(start time.Time) *seriesRecorder {
	return &seriesRecorder{start: start, open: map[int]*hdrhistogram.Histogram{}}
}

// sec returns the entry for time at, growing the series as needed.
func (r *seriesRecorder) sec(at time.Time) *Second {
	i := int(at.Sub(r.start) / time.Second)
	if i < 0 {
		i = 0
	}
	if i >= MaxSeconds*2 {
		i = MaxSeconds*2 - 1
	}
	for len(r.secs) <= i {
		r.secs = append(r.secs, Second{T: len(r.secs)})
	}
	return &r.secs[i]
}

// Due counts a request due at at (the intended rate). The engine may call
// it ahead of time, when it schedules the request.
func (r *seriesRecorder) Due(at time.Time) {
	r.mu.Lock()
	r.sec(at).Intended++
	r.mu.Unlock()
}

// Sent counts a request sent at at (the achieved rate).
func (r *seriesRecorder) Sent(at time.Time) {
	r.mu.Lock()
	r.sec(at).Achieved++
	r.mu.Unlock()
}

// Results records the results that were sent: Due, Sent and Done for
// each, under one turn of the lock, which is what the engine calls with a
// worker's batch; three calls per request were three turns of a lock that
// every request's goroutine contends for. It reads them from the batch's
// results themselves: a copy of their times beside them was one more
// write of a request's figures. A result not sent is counted elsewhere
// (see Due).
func (r *seriesRecorder) Results(rs []Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range rs {
		q := &rs[i]
		if q.Sent.IsZero() {
			continue
		}
		r.sec(q.Due).Intended++
		r.sec(q.Sent).Achieved++
		r.done(q.Done, q.Done.Sub(q.Due), q.Err != nil || q.Status >= 500, q.ErrKind == ErrKindTimeout)
	}
}

// Done records a request that finished at at, fromDue after its due time;
// failed means no response or a 5xx, timeout that it timed out.
func (r *seriesRecorder) Done(at time.Time, fromDue time.Duration, failed, timeout bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done(at, fromDue, failed, timeout)
}

func (r *seriesRecorder) done(at time.Time, fromDue time.Duration, failed, timeout bool) {
	s := r.sec(at)
	s.Completed++
	if failed || timeout {
		s.Errors++
	}
	if timeout {
		s.Timeouts++
	}
	if s.T < r.high-seriesGrace {
		return
	}
	h := r.open[s.T]
	if h == nil {
		if n := len(r.pool); n > 0 {
			h, r.pool = r.pool[n-1], r.pool[:n-1]
		} else {
			h = hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 2)
		}
		r.open[s.T] = h
	}
	us := int64(fromDue / time.Microsecond)
	if us < 0 {
		us = 0
	}
	h.RecordValue(us)
	if s.T > r.high {
		r.high = s.T
		for t, old := range r.open {
			if t < r.high-seriesGrace {
				r.close(t, old)
			}
		}
	}
}

// close writes second t's percentiles and recycles its histogram.
func (r *seriesRecorder) close(t int, h *hdrhistogram.Histogram) {
	s := &r.secs[t]
	ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
	s.P50, s.P90, s.P99 = ms(50), ms(90), ms(99)
	delete(r.open, t)
	h.Reset()
	r.pool = append(r.pool, h)
}

// Series closes every open second and returns the series so far.
func (r *seriesRecorder) Series() []Second {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, h := range r.open {
		r.close(t, h)
	}
	return append([]Second(nil), r.secs...)
}
