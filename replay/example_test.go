package replay_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/session"
)

// Replay a recording (any session.Source: a recording file, a proxy, a
// capture) against a target twice as fast as recorded, and print the
// summary's verdict.
func Example() {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer target.Close()

	const t0 = int64(1_700_000_000_000_000_000)
	recording := session.NewSliceSource([]*session.Exchange{
		{Session: "alice", Request: session.Request{Method: "GET", Target: "/api/products"},
			Response: session.Response{Status: 200}, Timing: session.Timing{RequestStart: t0, ResponseEnd: t0 + 2e6}},
		{Session: "alice", Request: session.Request{Method: "GET", Target: "/api/products/7"},
			Response: session.Response{Status: 200}, Timing: session.Timing{RequestStart: t0 + 100e6, ResponseEnd: t0 + 102e6}},
	}...)

	r, err := replay.New(target.URL, replay.WithPacer(replay.Speed(2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := r.Run(context.Background(), recording)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Completed, rep.Requests.Responses, rep.ExpectedMS)
	for _, rt := range rep.Routes {
		fmt.Println(rt.Route, rt.Requests)
	}
	// Output:
	// true 2 50
	// GET /api/products 1
	// GET /api/products/{id} 1
}

// ParseSpeed reads --speed.
func ExampleParseSpeed() {
	for _, s := range []string{"2", "0.5x", "max", "500"} {
		p, err := replay.ParseSpeed(s)
		fmt.Println(p, err)
	}
	// Output:
	// 2 <nil>
	// 0.5 <nil>
	// max <nil>
	// <nil> speed 500 out of range: want 0.1 to 100, or max
}

// A report written with --report is read back for later checks.
func ExampleReadReport() {
	f, err := os.Open("testdata/report.golden.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	rep, err := replay.ReadReport(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Version, rep.Speed, rep.Requests.Sent, rep.Sessions.Completed)
	// Output:
	// 1 5 6 2
}
