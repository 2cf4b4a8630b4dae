//go:build linux

package replay

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// pacedMode is one way of waiting the last stretch before a due time,
// set for a round of TestPacedCPU.
type pacedMode struct {
	name string
	set  func() // before the round
}

// pacedModes are compared in alternating rounds: Go timers alone, and
// the shared timerfd waker.
var pacedModes = []pacedMode{
	{"go timers", func() { preciseOff = true }},
	{"shared waker", func() { preciseOff = false }},
}

// TestPacedCPU measures what pacing costs: a recording at a fixed rate
// (2,000 and 20,000 requests a second, from 200 connections) is replayed
// at 1x against Debian's nginx, in alternating rounds of each pacedMode,
// and each round logs the replay's CPU per request (this process's
// getrusage, nginx apart) and the lag p50/p99 from the report. It takes
// about a minute; run it with
//
//	REPRISE_PACED=1 go test ./replay -run TestPacedCPU -v
//
// REPRISE_PACED_SECS (default 5) sets each round's length and
// REPRISE_PACED_ROUNDS (default 2) the rounds of each mode;
// REPRISE_PACED_MODE=waker (a part of a mode's name) runs that mode alone
// and REPRISE_PACED_RATE=2000 that rate alone, for a profile.
func TestPacedCPU(t *testing.T) {
	if os.Getenv("REPRISE_PACED") == "" {
		t.Skip("set REPRISE_PACED=1 to run (about a minute)")
	}
	defer func() { preciseOff = false }()
	secs, rounds := envInt("REPRISE_PACED_SECS", 5), envInt("REPRISE_PACED_ROUNDS", 2)
	modes := pacedModes
	if only := os.Getenv("REPRISE_PACED_MODE"); only != "" {
		modes = slices.DeleteFunc(slices.Clone(modes), func(m pacedMode) bool { return !strings.Contains(m.name, only) })
	}
	ng := startNginx(t)
	rates := []int{2000, 20000}
	if r := envInt("REPRISE_PACED_RATE", 0); r > 0 {
		rates = []int{r}
	}
	for _, rate := range rates {
		exs := pacedRecording(rate*secs, float64(rate))
		type fig struct{ cpu, p50, p99 []float64 }
		figs := make([]fig, len(modes))
		for round := range rounds {
			for i, m := range modes {
				m.set()
				time.Sleep(200 * time.Millisecond) // the previous round's connections close
				c0 := testkit.CPUTime()
				rep := run(t, ng.url, source(exs...), WithPacer(Speed(1)), WithMaxInFlight(256))
				cpu := testkit.CPUTime() - c0
				if !rep.Completed || rep.Requests.Sent != uint64(len(exs)) {
					var b strings.Builder
					rep.WriteSummary(&b)
					t.Fatalf("%s, round %d: replay did not send all %d requests:\n%s", m.name, round, len(exs), b.String())
				}
				perReq := float64(cpu.Microseconds()) / float64(len(exs))
				t.Logf("%d/s %-13s round %d: CPU %.1f µs/request, lag p50 %.3fms p99 %.3fms max %.3fms",
					rate, m.name, round, perReq, rep.Lag.P50, rep.Lag.P99, rep.Lag.Max)
				figs[i].cpu = append(figs[i].cpu, perReq)
				figs[i].p50 = append(figs[i].p50, rep.Lag.P50)
				figs[i].p99 = append(figs[i].p99, rep.Lag.P99)
			}
		}
		for i, m := range modes {
			f := figs[i]
			t.Logf("%d/s %-13s: CPU %s µs/request, lag p50 %s ms, p99 %s ms", rate, m.name, minMax(f.cpu, "%.0f"), minMax(f.p50, "%.3f"), minMax(f.p99, "%.2f"))
		}
	}
}

// pacedRecording is n requests for / at rate a second from 200
// connections, each answered at once.
func pacedRecording(n int, rate float64) []*session.Exchange {
	gap := time.Duration(float64(time.Second) / rate)
	exs := make([]*session.Exchange, n)
	for i := range exs {
		at := t0 + int64(time.Duration(i)*gap)
		exs[i] = &session.Exchange{
			Conn:     session.Conn{ID: uint64(i % 200)},
			Request:  session.Request{Method: "GET", Target: fmt.Sprintf("/paced/%d", i), Proto: "HTTP/1.1", Header: session.Headers{{Name: "Host", Value: "paced.example"}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200},
			Timing:   session.Timing{RequestStart: at, RequestEnd: at, ResponseStart: at + 1e5, ResponseEnd: at + 1e5},
		}
	}
	return exs
}

// minMax formats the lowest and highest of vs, "a-b".
func minMax(vs []float64, f string) string {
	return fmt.Sprintf(f+"-"+f, slices.Min(vs), slices.Max(vs))
}
