package htmlreport_test

import (
	"os"
	"path/filepath"
	"time"

	"github.com/reprise-tool/reprise/replay/htmlreport"
)

// A report is a per-second series plus stages, the abort point and the
// summary rows; Render writes one self-contained page.
func ExampleRender() {
	r := &htmlreport.Report{
		Title:   "reprise replay shop.rpz",
		Target:  "http://127.0.0.1:8090",
		Started: time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC),
		Outcome: "completed",
		Stages:  []htmlreport.Stage{{Name: "1x:1s", Start: 0, End: 1}, {Name: "2x", Start: 1, End: 3}},
		Series: []htmlreport.Second{
			{T: 0, Intended: 10, Achieved: 10, Completed: 10, P50: 8, P90: 15, P99: 30},
			{T: 1, Intended: 20, Achieved: 19, Completed: 19, P50: 9, P90: 18, P99: 41, Errors: 1},
			{T: 2, Intended: 20, Achieved: 20, Completed: 20, P50: 9, P90: 17, P99: 35},
		},
		Summary: []htmlreport.Row{{Name: "Requests", Value: "49"}, {Name: "Errors", Value: "1 (2.0%)", Bad: true}},
	}
	f, err := os.Create(filepath.Join(os.TempDir(), "reprise-example-run.html"))
	if err != nil {
		return
	}
	defer f.Close()
	if err := htmlreport.Render(f, r); err != nil {
		panic(err)
	}
	// Output:
}
