package replay

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/reprise-tool/reprise/session"
)

// watchedSource is flatSource that keeps a weak pointer to one early
// exchange.
type watchedSource struct {
	flatSource
	watch int
	early weak.Pointer[session.Exchange]
}

func (s *watchedSource) Next() (*session.Exchange, error) {
	ex, err := s.flatSource.Next()
	if err == nil && s.i == s.watch {
		s.early = weak.Make(ex)
	}
	return ex, err
}

// A replay holds what its look-ahead window and its pending requests
// need, not what is done: an early request of a long sequential session
// must be garbage once the session has moved far past it. (Each request
// points at the one it waits for; kept after the wait, those pointers
// held a session's whole history.)
func TestReplayReleasesDoneRequests(t *testing.T) {
	srv := newScripted(t, nil)
	const n = 4000
	src := &watchedSource{flatSource: flatSource{conns: 2, n: n}, watch: 10}
	var seen atomic.Int64
	var retained atomic.Int32 // 1 kept, 2 released, 0 not checked
	obs := ObserverFunc(func(r *Result) {
		if seen.Add(1) != n*3/4 {
			return
		}
		// Far past request 10 (1 ms apart per session in the
		// recording, the window 10 ms): nothing should hold it.
		runtime.GC()
		if src.early.Value() != nil {
			retained.Store(1)
		} else {
			retained.Store(2)
		}
	})
	rep := run(t, srv.URL, src, WithPacer(Max{}), WithWindow(10*time.Millisecond), WithObserver(obs))
	if rep.Requests.Responses != n {
		t.Fatalf("%d responses of %d", rep.Requests.Responses, n)
	}
	switch retained.Load() {
	case 0:
		t.Fatal("the check did not run")
	case 1:
		t.Fatal("an early exchange was still reachable three quarters through the replay")
	}
}
