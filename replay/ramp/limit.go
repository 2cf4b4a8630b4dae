package ramp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"flag"

	"golang.org/x/time/rate"
)

// Rate is the value of --rate: a hard cap on requests per second for the
// whole run. It accepts "100/s", "6000/m", "360000/h" and a plain "100"
// (per second). The zero Rate means no cap.
type Rate struct {
	PerSecond float64
	text      string
}

var _ flag.Value = (*Rate)(nil)

// MaxRate bounds --rate to what one process could ever send.
const MaxRate = 10_000_000

// ParseRate reads a --rate value.
func ParseRate(s string) (Rate, error) {
	in := strings.TrimSpace(strings.ToLower(s))
	if in == "" || in == "0" || in == "none" {
		return Rate{}, nil
	}
	num, unit, hasUnit := strings.Cut(in, "/")
	per := time.Second
	if hasUnit {
		switch strings.TrimSpace(unit) {
		case "s", "sec", "second":
			per = time.Second
		case "m", "min", "minute":
			per = time.Minute
		case "h", "hour":
			per = time.Hour
		default:
			return Rate{}, fmt.Errorf("rate %q: unknown unit %q: write requests per second like 100/s, or 6000/m", s, unit)
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return Rate{}, fmt.Errorf("rate %q: %q is not a number: write it like 100/s", s, num)
	}
	if n < 0 {
		return Rate{}, fmt.Errorf("rate %q is negative: write a cap like 100/s, or 0 for none", s)
	}
	ps := n / per.Seconds()
	if ps > MaxRate {
		return Rate{}, fmt.Errorf("rate %q is above %d/s: lower it", s, MaxRate)
	}
	if n > 0 && ps < 1.0/86400 {
		return Rate{}, fmt.Errorf("rate %q is below one request a day: raise it", s)
	}
	return Rate{PerSecond: ps, text: strings.TrimSpace(s)}, nil
}

// Set parses s into r.
func (r *Rate) Set(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

func (r *Rate) String() string {
	if r.PerSecond == 0 {
		return ""
	}
	if r.text != "" {
		return r.text
	}
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + "/s"
}

// Type names the value in --help.
func (r *Rate) Type() string { return "N/s" }

// Margin is how much under the cap the limiter runs: 1%, so that any
// cap+1 consecutive requests span at least 1.01 s and network jitter of up
// to 10 ms cannot put more than the cap into one second at the target.
const Margin = 0.01

// Limiter returns the run's one limiter, or nil when there is no cap. Its
// burst is 1 and its rate PerSecond less Margin, so grants are evenly
// spaced and no one-second window, at the sender or (jitter under 10 ms)
// at the target, holds more than PerSecond requests.
func (r Rate) Limiter() *rate.Limiter {
	if r.PerSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(r.PerSecond*(1-Margin)), 1)
}

// WaitStats says how long callers waited at a cap. A replay reports it so
// that a cap shows as lag, never as hidden slowness.
type WaitStats struct {
	Cap      int           // the semaphore's size; 0 for the rate limiter
	Acquired uint64        // how many passed
	Waited   uint64        // how many of them had to wait
	Total    time.Duration // time spent waiting, summed
	Max      time.Duration // the longest single wait
	InUse    int           // slots held now (semaphores)
}

// Throttle wraps the run's one rate limiter and measures the waits. A nil
// *Throttle (no cap) lets everything through at once. Safe for concurrent
// use; share one Throttle among all workers.
type Throttle struct {
	lim   *rate.Limiter
	mu    sync.Mutex
	stats WaitStats
}

// A *Throttle has the shape of *rate.Limiter that the engine takes as its
// one limiter.
var _ interface{ Wait(context.Context) error } = (*Throttle)(nil)

// NewThrottle returns a throttle for r, or nil when r is no cap.
func NewThrottle(r Rate) *Throttle {
	lim := r.Limiter()
	if lim == nil {
		return nil
	}
	return &Throttle{lim: lim}
}

// Wait blocks until the next request may go. With this signature a
// *Throttle is the engine's Limiter (the shape of *rate.Limiter), with its
// waits measured.
func (t *Throttle) Wait(ctx context.Context) error {
	_, err := t.Take(ctx)
	return err
}

// Take blocks until the next request may go, and returns how long it
// waited. It returns ctx's error if ctx ends first.
func (t *Throttle) Take(ctx context.Context) (time.Duration, error) {
	if t == nil {
		return 0, ctx.Err()
	}
	start := time.Now()
	if err := t.lim.Wait(ctx); err != nil {
		return time.Since(start), err
	}
	w := time.Since(start)
	t.record(w)
	return w, nil
}

func (t *Throttle) record(w time.Duration) {
	t.mu.Lock()
	t.stats.add(w)
	t.mu.Unlock()
}

// Stats returns the waits so far.
func (t *Throttle) Stats() WaitStats {
	if t == nil {
		return WaitStats{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// waitThreshold is the shortest wait counted as "had to wait"; shorter
// ones are scheduling noise.
const waitThreshold = 50 * time.Microsecond

func (s *WaitStats) add(w time.Duration) {
	s.Acquired++
	if w >= waitThreshold {
		s.Waited++
		s.Total += w
		if w > s.Max {
			s.Max = w
		}
	}
}

// Semaphore caps how many things run at once (--max-inflight,
// --max-sessions) and measures how long callers waited for a slot. A nil
// *Semaphore (no cap) never blocks. Safe for concurrent use.
type Semaphore struct {
	slots chan struct{}
	mu    sync.Mutex
	stats WaitStats
}

// ErrNotHeld is returned by Release when no slot is held: a bug in the
// caller, reported rather than hidden.
var ErrNotHeld = errors.New("semaphore released more often than acquired")

// NewSemaphore returns a semaphore of n slots, or nil when n <= 0 (no cap).
func NewSemaphore(n int) *Semaphore {
	if n <= 0 {
		return nil
	}
	return &Semaphore{slots: make(chan struct{}, n), stats: WaitStats{Cap: n}}
}

// Acquire takes a slot, waiting if all are held, and returns how long it
// waited. On ctx's end it returns ctx's error and holds nothing.
func (s *Semaphore) Acquire(ctx context.Context) (time.Duration, error) {
	if s == nil {
		return 0, ctx.Err()
	}
	select {
	case s.slots <- struct{}{}:
		s.record(0)
		return 0, nil
	default:
	}
	start := time.Now()
	select {
	case s.slots <- struct{}{}:
		w := time.Since(start)
		s.record(w)
		return w, nil
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	}
}

// TryAcquire takes a slot if one is free.
func (s *Semaphore) TryAcquire() bool {
	if s == nil {
		return true
	}
	select {
	case s.slots <- struct{}{}:
		s.record(0)
		return true
	default:
		return false
	}
}

// Release gives a slot back.
func (s *Semaphore) Release() error {
	if s == nil {
		return nil
	}
	select {
	case <-s.slots:
		return nil
	default:
		return ErrNotHeld
	}
}

func (s *Semaphore) record(w time.Duration) {
	s.mu.Lock()
	s.stats.add(w)
	s.mu.Unlock()
}

// Stats returns the waits so far and the slots in use now.
func (s *Semaphore) Stats() WaitStats {
	if s == nil {
		return WaitStats{}
	}
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	st.InUse = len(s.slots)
	return st
}
