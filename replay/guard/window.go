package guard

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ErrKind classifies a request that got no response.
type ErrKind string

// The error kinds a replay distinguishes.
const (
	ErrNone    ErrKind = ""
	ErrConnect ErrKind = "connect" // the connection was refused or could not be made
	ErrTimeout ErrKind = "timeout" // no response within the timeout
	ErrReset   ErrKind = "reset"   // the connection was reset or closed mid-exchange
	// ErrCanceled: the replay itself abandoned the request (a stop);
	// it is counted as a request but not as a failure of the target.
	ErrCanceled ErrKind = "canceled"
	ErrOther    ErrKind = "other"
)

// Observation is one finished request, as the engine saw it.
type Observation struct {
	// At is when the request finished (response read, or failed). It
	// places the observation in the window.
	At time.Time
	// FromDue is the latency from the request's due time (no coordinated
	// omission); FromSend the latency from when it was actually sent.
	FromDue, FromSend time.Duration
	// Lag is how late the request was sent: send time - due time.
	Lag time.Duration
	// Status is the response status, 0 when there was no response.
	Status int
	// Err is why there was no response; ErrNone when there was one.
	Err ErrKind
}

// NewObservation builds an observation from a request's due, send and
// finish times, its status (0 for none) and its error kind (the engine's
// strings: "connect", "timeout", "reset", "canceled", "other", or "").
func NewObservation(due, sent, done time.Time, status int, kind string) Observation {
	o := Observation{At: done, FromDue: done.Sub(due), Lag: sent.Sub(due), Status: status, Err: ErrKind(kind)}
	if !sent.IsZero() {
		o.FromSend = done.Sub(sent)
	} else {
		o.Lag = done.Sub(due)
	}
	return o
}

// failed reports whether the observation counts against error_rate.
func (o Observation) failed() bool {
	if o.Err == ErrCanceled {
		return false
	}
	return o.Err != ErrNone || o.Status == 0 || o.Status >= 500
}

// Histogram range: latencies are recorded in microseconds from 1 µs to one
// hour with 2 significant digits (1% error), which keeps a bucket's two
// histograms near 50 KiB.
const (
	histMin    = 1
	histMax    = int64(time.Hour / time.Microsecond)
	histDigits = 2
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func micros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if us < 0 {
		return 0
	}
	if us > histMax {
		return histMax
	}
	return us
}

type bucket struct {
	sec      int64 // Unix second this bucket holds; 0 when unused
	n        int
	failed   int
	s5xx     int
	timeouts int
	due      *hdrhistogram.Histogram
	lag      *hdrhistogram.Histogram
}

// Window keeps the last few seconds of observations in per-second buckets
// and summarises them. The window covers the current second and the ones
// before it, Size seconds in all. Safe for concurrent use.
type Window struct {
	mu      sync.Mutex
	size    int
	buckets []bucket
	due     *hdrhistogram.Histogram // scratch for merging
	lag     *hdrhistogram.Histogram
	backlog struct {
		sec int64
		lag time.Duration
	}
	late uint64 // observations older than the window when they arrived
}

// DefaultWindow is --abort-window's default.
const DefaultWindow = 10 * time.Second

// NewWindow returns a window of d, rounded up to whole seconds, between 1 s
// and 10 minutes.
func NewWindow(d time.Duration) (*Window, error) {
	if d < time.Second || d > 10*time.Minute {
		return nil, fmt.Errorf("abort window %v is outside 1s..10m: give --abort-window like 10s", d)
	}
	n := int((d + time.Second - 1) / time.Second)
	w := &Window{size: n, buckets: make([]bucket, n), due: newHist(), lag: newHist()}
	for i := range w.buckets {
		w.buckets[i].due = newHist()
		w.buckets[i].lag = newHist()
	}
	return w, nil
}

// Size returns the window's length.
func (w *Window) Size() time.Duration { return time.Duration(w.size) * time.Second }

// Add records one observation.
func (w *Window) Add(o Observation) {
	sec := o.At.Unix()
	w.mu.Lock()
	defer w.mu.Unlock()
	b := &w.buckets[int(sec%int64(w.size)+int64(w.size))%w.size]
	if b.sec != sec {
		if b.sec > sec {
			// The slot already holds a newer second: this one is older
			// than the window.
			w.late++
			return
		}
		b.sec, b.n, b.failed, b.s5xx, b.timeouts = sec, 0, 0, 0, 0
		b.due.Reset()
		b.lag.Reset()
	}
	b.n++
	if o.failed() {
		b.failed++
	}
	if o.Status >= 500 && o.Status <= 599 {
		b.s5xx++
	}
	if o.Err == ErrTimeout {
		b.timeouts++
	}
	b.due.RecordValue(micros(o.FromDue))
	b.lag.RecordValue(micros(o.Lag))
}

// Backlog reports, at time at, how late the oldest request that is due but
// not yet sent is. The engine calls it each tick so that a replay stuck
// behind a cap or a slow target shows lag before anything completes.
func (w *Window) Backlog(at time.Time, lag time.Duration) {
	w.mu.Lock()
	w.backlog.sec, w.backlog.lag = at.Unix(), lag
	w.mu.Unlock()
}

// Stats summarises a window.
type Stats struct {
	// Window is the span summarised; Requests the observations in it.
	Window   time.Duration
	Requests int
	Failed   int // no response, or a 5xx
	S5xx     int
	Timeouts int
	// ErrorRate, Status5xxRate and TimeoutRate are fractions of Requests.
	ErrorRate, Status5xxRate, TimeoutRate float64
	// Latency percentiles from the due time.
	P50, P90, P95, P99, Max time.Duration
	// Lag is the 99th percentile of send lag in the window, or the
	// latest backlog lag if that is larger.
	Lag time.Duration
	// RPS is Requests divided by the window's length.
	RPS float64
}

// Stats summarises the window that ends in the second holding now.
func (w *Window) Stats(now time.Time) Stats {
	cur := now.Unix()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.due.Reset()
	w.lag.Reset()
	st := Stats{Window: w.Size()}
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.sec == 0 || b.sec > cur || b.sec <= cur-int64(w.size) {
			continue
		}
		st.Requests += b.n
		st.Failed += b.failed
		st.S5xx += b.s5xx
		st.Timeouts += b.timeouts
		w.due.Merge(b.due)
		w.lag.Merge(b.lag)
	}
	if st.Requests > 0 {
		n := float64(st.Requests)
		st.ErrorRate = float64(st.Failed) / n
		st.Status5xxRate = float64(st.S5xx) / n
		st.TimeoutRate = float64(st.Timeouts) / n
		us := func(q float64) time.Duration { return time.Duration(w.due.ValueAtQuantile(q)) * time.Microsecond }
		st.P50, st.P90, st.P95, st.P99 = us(50), us(90), us(95), us(99)
		st.Max = time.Duration(w.due.Max()) * time.Microsecond
		st.Lag = time.Duration(w.lag.ValueAtQuantile(99)) * time.Microsecond
	}
	if w.backlog.sec > cur-int64(w.size) && w.backlog.sec <= cur && w.backlog.lag > st.Lag {
		st.Lag = w.backlog.lag
	}
	st.RPS = float64(st.Requests) / st.Window.Seconds()
	return st
}

// Late returns how many observations arrived after their second had left
// the window (they were not counted).
func (w *Window) Late() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.late
}
