package replay_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/htmlreport"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
)

// A controlled replay: a ramp of speeds, one rate cap for the whole run,
// a guard that stops issuing when the target breaks, and the page drawn
// from the report. This target answers 503 to everything, so the guard
// trips and Run returns a *guard.AbortError (exit code 3 in the CLI).
func ExampleWithGuard() {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer target.Close()

	const t0 = int64(1_700_000_000_000_000_000)
	var list []*session.Exchange
	for i := 0; i < 200; i++ {
		at := t0 + int64(i)*int64(10*time.Millisecond)
		list = append(list, &session.Exchange{Session: fmt.Sprint("user", i%10),
			Request:  session.Request{Method: "GET", Target: "/api/products"},
			Response: session.Response{Status: 200}, Timing: session.Timing{RequestStart: at, ResponseEnd: at + 1e6}})
	}

	speeds, _ := ramp.Parse("1x:1s,2x")
	rate, _ := ramp.ParseRate("500/s")
	rules, _ := guard.ParseRules("error_rate>20%")
	g, _ := guard.New(rules, guard.WithWindow(time.Second))
	r, err := replay.New(target.URL,
		replay.WithPacer(speeds), replay.WithRate(rate),
		replay.WithGuard(g), replay.WithDrainTimeout(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := r.Run(context.Background(), session.NewSliceSource(list...))
	var abort *guard.AbortError
	if errors.As(err, &abort) {
		fmt.Println("stopped by", abort.Trip.RuleText)
	}
	if f, err := os.CreateTemp("", "run-*.html"); err == nil {
		htmlreport.WriteReplay(f, rep) // what --html writes
		f.Close()
		os.Remove(f.Name())
	}
	// Output: stopped by error_rate>20%
}
