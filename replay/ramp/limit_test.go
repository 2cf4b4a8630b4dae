package ramp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want float64 // per second
		err  string  // part of the error; "" for none
	}{
		{"per second", "100/s", 100, ""},                  // the common form
		{"plain", "100", 100, ""},                         // a bare number is per second
		{"per minute", "6000/m", 100, ""},                 // minutes divide by 60
		{"per hour", "3600/h", 1, ""},                     // hours by 3600
		{"fraction", "0.5/s", 0.5, ""},                    // one every two seconds
		{"spaces", " 20 / s ", 20, ""},                    // spaces are tolerated
		{"none", "0", 0, ""},                              // zero means no cap
		{"unit", "100/d", 0, "unknown unit"},              // days are not a unit
		{"negative", "-5/s", 0, "negative"},               // a mistake
		{"word", "fast", 0, "not a number"},               // not a number
		{"huge", "1e9/s", 0, "above"},                     // beyond any process
		{"tiny", "1/h", 1.0 / 3600, ""},                   // slow but fine
		{"too tiny", "0.00001/s", 0, "below one request"}, // likely a typo
		{"inf", "Inf", 0, "not a number"},                 // not finite
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRate(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseRate(%q) error %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.PerSecond != tt.want {
				t.Errorf("ParseRate(%q) = %v/s, want %v", tt.in, r.PerSecond, tt.want)
			}
			if (r.Limiter() == nil) != (tt.want == 0) {
				t.Errorf("limiter presence wrong for %q", tt.in)
			}
		})
	}
}

// TestLimiterWindows checks the property the rate-cap acceptance test
// relies on, on the limiter's own clock: however many requests ask at
// once, no one-second window holds more than the cap, even with 10 ms of
// jitter.
func TestLimiterWindows(t *testing.T) {
	for _, perSec := range []float64{1, 7, 20, 100, 1000} {
		lim := Rate{PerSecond: perSec}.Limiter()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		n := int(perSec*3) + 2
		at := make([]time.Duration, n)
		for i := range at {
			at[i] = lim.ReserveN(t0, 1).DelayFrom(t0)
		}
		cap := int(perSec)
		for i := 0; i+cap < n; i++ {
			if span := at[i+cap] - at[i]; span < time.Second+10*time.Millisecond {
				t.Fatalf("%g/s: requests %d..%d span %v, under 1.01s", perSec, i, i+cap, span)
			}
		}
	}
}

// TestThrottle shares one throttle among workers on the real clock and
// checks the waits are measured. Times are taken after Wait returns, so the
// window check allows one extra for scheduling delays on a loaded machine;
// TestLimiterWindows checks the exact property.
func TestThrottle(t *testing.T) {
	const perSec = 20
	th := NewThrottle(Rate{PerSecond: perSec})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var times []time.Time
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				if err := th.Wait(ctx); err != nil {
					return
				}
				mu.Lock()
				times = append(times, time.Now())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(times) != 32 {
		t.Fatalf("%d passed, want 32", len(times))
	}
	for i := range times {
		n := 0
		for j := range times {
			if d := times[j].Sub(times[i]); d >= 0 && d < time.Second {
				n++
			}
		}
		if n > perSec+1 {
			t.Fatalf("%d passed within one second, cap %d", n, perSec)
		}
	}
	st := th.Stats()
	if st.Acquired != 32 || st.Waited == 0 || st.Total <= 0 || st.Max <= 0 {
		t.Errorf("stats %+v", st)
	}
	var none *Throttle
	if w, err := none.Take(ctx); w != 0 || err != nil {
		t.Errorf("nil throttle waited %v %v", w, err)
	}
}

func TestSemaphore(t *testing.T) {
	s := NewSemaphore(2)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := s.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s.TryAcquire() {
		t.Fatal("third slot of two taken")
	}
	done := make(chan time.Duration)
	go func() {
		w, _ := s.Acquire(ctx)
		done <- w
	}()
	time.Sleep(100 * time.Millisecond) // let the goroutine block
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	if w := <-done; w <= 0 {
		t.Errorf("blocked acquire waited %v", w)
	}
	st := s.Stats()
	if st.Cap != 2 || st.InUse != 2 || st.Acquired != 3 || st.Waited != 1 {
		t.Errorf("stats %+v", st)
	}
	// A cancelled wait holds nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled acquire: %v", err)
	}
	s.Release()
	s.Release()
	if err := s.Release(); !errors.Is(err, ErrNotHeld) {
		t.Errorf("extra release: %v", err)
	}
	// No cap: never blocks.
	var none *Semaphore = NewSemaphore(0)
	if _, err := none.Acquire(ctx); err != nil || !none.TryAcquire() || none.Release() != nil {
		t.Error("nil semaphore blocked")
	}
}

func BenchmarkSemaphore(b *testing.B) {
	s := NewSemaphore(64)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Acquire(ctx)
			s.Release()
		}
	})
}
