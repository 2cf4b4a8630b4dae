package replay

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestSeriesRecorder(t *testing.T) {
	start := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	r := newSeriesRecorder(start)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	var wg sync.WaitGroup
	// Second 0: 100 due, 90 sent, latencies 1..90 ms, 5 failures, 2 timeouts.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < 100; i += 2 {
				r.Due(at(i * 10))
				if i < 90 {
					r.Sent(at(i * 10))
					r.Done(at(i*10+1), time.Duration(i+1)*time.Millisecond, i < 5, i < 2)
				}
			}
		}(w)
	}
	wg.Wait()
	// Second 12 moves the open window on; a finish for second 0 now is
	// counted but not in its percentiles.
	r.Done(at(12_000), 5*time.Millisecond, false, false)
	r.Done(at(500), time.Hour, true, false)
	s := r.Series()
	if len(s) != 13 {
		t.Fatalf("%d seconds", len(s))
	}
	s0 := s[0]
	if s0.Intended != 100 || s0.Achieved != 90 || s0.Completed != 91 || s0.Errors != 6 || s0.Timeouts != 2 {
		t.Errorf("second 0 = %+v", s0)
	}
	if s0.P50 < 44 || s0.P50 > 46 || s0.P99 < 88 || s0.P99 > 91 {
		t.Errorf("second 0 percentiles %v %v %v", s0.P50, s0.P90, s0.P99)
	}
	if s[5].Completed != 0 || s[5].T != 5 || s[12].Completed != 1 {
		t.Errorf("seconds 5, 12: %+v %+v", s[5], s[12])
	}
}

// Results is Due, Sent and Done in one call for each result sent: the
// same series; a result not sent is left to Due.
func TestRecorderResults(t *testing.T) {
	start := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	one, three := newSeriesRecorder(start), newSeriesRecorder(start)
	for _, q := range []struct {
		due, sent, done  int
		failed, timedOut bool
	}{
		{0, 1, 5, false, false},
		{10, 900, 1100, false, false},  // sent late, done in the next second
		{1500, 1500, 9000, true, true}, // a timeout seconds later
		{2000, 2100, 2050, true, false},
		{12_000, 12_000, 12_003, false, false}, // closes the early seconds
	} {
		res := Result{Due: at(q.due), Sent: at(q.sent), Done: at(q.done), Status: 200}
		switch {
		case q.timedOut:
			res.Status, res.Err, res.ErrKind = 0, errors.New("timeout"), ErrKindTimeout
		case q.failed:
			res.Status = 503
		}
		unsent := Result{Due: at(q.due)}
		one.Results([]Result{unsent, res})
		three.Due(at(q.due))
		three.Sent(at(q.sent))
		three.Done(at(q.done), at(q.done).Sub(at(q.due)), q.failed, q.timedOut)
	}
	a, b := one.Series(), three.Series()
	if len(a) != len(b) {
		t.Fatalf("%d seconds, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("second %d: %+v, want %+v", i, a[i], b[i])
		}
	}
}

func BenchmarkRecorder(b *testing.B) {
	start := time.Now()
	r := newSeriesRecorder(start)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		at := start.Add(time.Duration(i) * 100 * time.Microsecond)
		r.Due(at)
		r.Sent(at)
		r.Done(at, 3*time.Millisecond, false, false)
	}
}
