package replay

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestReportGolden pins the report's JSON layout, which `reprise report`
// and `reprise check` read: a replay of a fixed recording whose timings
// are then zeroed is compared with testdata/report.golden.json. Refresh it
// with: go test ./replay -run TestReportGolden -update
func TestReportGolden(t *testing.T) {
	srv := newScripted(t, nil)
	src := source(
		rec("a", "GET", "/api/products", 0, 1),
		rec("a", "GET", "/api/products/3", 10, 11),
		rec("a", "POST", "/api/cart", 20, 21),
		rec("b", "GET", "/api/products", 5, 6),
		rec("b", "GET", "/api/products/4", 15, 16),
		rec("b", "GET", "/static/app.js", 25, 26),
	)
	rep := run(t, srv.URL, src, WithPacer(Speed(5)))
	// Timings and addresses vary from run to run: normalise them.
	rep.Target = "http://127.0.0.1:8089"
	rep.Start, rep.End = time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 1, 0, 1, 0, time.UTC)
	rep.DurationMS, rep.LastSendMS = 5.2, 5
	for _, h := range []*Histogram{&rep.Latency, &rep.ServiceTime, &rep.Lag, &rep.InterArrival, &rep.InterArrivalScaled, &rep.ThinkTime, &rep.SessionLength} {
		*h = fixedHist(h.Count)
	}
	for i := range rep.Series {
		rep.Series[i].P50, rep.Series[i].P90, rep.Series[i].P99 = 1, 2, 3
	}
	// Whether a session's next request went before its previous answer
	// was read is timing: think times count as many as they found.
	rep.ThinkTime, rep.ThinkTimeScaled = fixedHist(0), fixedHist(0)
	rep.OrderWait = Histogram{} // whether a request found its predecessor in flight is timing
	// How many connections the pool opened and reused is timing too.
	rep.Connections = &ConnReport{Mode: rep.Connections.Mode, Opened: 2, Reused: 4, ClosedByClient: 2,
		Connect: fixedHist(2), MaxInFlight: rep.Connections.MaxInFlight}
	for i := range rep.Routes {
		rep.Routes[i].Latency = fixedHist(rep.Routes[i].Latency.Count)
		rep.Routes[i].ServiceTime = fixedHist(rep.Routes[i].ServiceTime.Count)
	}
	var got bytes.Buffer
	if err := rep.WriteJSON(&got); err != nil {
		t.Fatal(err)
	}
	const path = "testdata/report.golden.json"
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("report layout changed; if on purpose, run with -update and say so in ReportVersion's doc\ngot:\n%s", got.String())
	}
	// Every field name is snake_case: stable for other programs.
	var m map[string]any
	json.Unmarshal(want, &m)
	bad := regexp.MustCompile(`[A-Z]`)
	for k := range m {
		if bad.MatchString(k) {
			t.Errorf("field %q is not snake_case", k)
		}
	}
}

func fixedHist(n uint64) Histogram {
	if n == 0 {
		return Histogram{}
	}
	return Histogram{Count: n, Min: 0.1, Mean: 0.5, P50: 0.4, P90: 0.8, P99: 1, P999: 1, Max: 1}
}
