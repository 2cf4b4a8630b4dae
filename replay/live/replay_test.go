package live_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/live"
	"github.com/reprise-tool/reprise/session"
)

// The metrics and the live display subscribe to the run's events
// (formerly replay's TestLiveAndMetrics, when the engine fed them itself).
func TestLiveAndMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	m, err := live.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	prog, err := live.NewProgress(&lockedWriter{w: &out}, live.WithTerminal(false), live.WithPlainInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	const t0 = int64(1_700_000_000_000_000_000)
	var ex []*session.Exchange
	for i := 0; i < 30; i++ {
		start := t0 + int64(i)*int64(50*time.Millisecond)
		ex = append(ex, &session.Exchange{Session: fmt.Sprintf("s%d", i),
			Request:  session.Request{Method: "GET", Target: "/m", Proto: "HTTP/1.1"},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200},
			Timing:   session.Timing{RequestStart: start, RequestEnd: start, ResponseStart: start + 1e6, ResponseEnd: start + 1e6}})
	}
	d := &live.Display{Progress: prog, Metrics: m}
	r, err := replay.New(srv.URL, replay.WithObserver(d), replay.WithMonitor(d), replay.WithPlannedLength(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), &shoptest.SliceSource{Exchanges: ex}); err != nil {
		t.Fatal(err)
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var requests float64
	for _, f := range fams {
		if f.GetName() == "reprise_requests_total" {
			for _, mt := range f.GetMetric() {
				requests += mt.GetCounter().GetValue()
			}
		}
	}
	if requests != 30 {
		t.Errorf("reprise_requests_total %v, want 30", requests)
	}
	if !strings.Contains(out.String(), "sent 30") {
		t.Errorf("progress:\n%s", out.String())
	}
	// The schedule's rate shows beside the achieved one: 20 due in the
	// first second, 10 in the half second after.
	if !regexp.MustCompile(`\(due (20|10)\)`).MatchString(out.String()) {
		t.Errorf("no intended rate in the progress:\n%s", out.String())
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
