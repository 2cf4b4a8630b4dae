// Package htmlreport renders a replay's report as one self-contained HTML
// page (--html run.html): inline CSS and inline SVG drawn here in Go, with
// no script and no external URL, so it opens offline, in a mail
// attachment or an air-gapped incident room, years later.
//
// The page shows requests per second intended and achieved, latency
// percentiles over time, errors over time, the ramp stages and the abort
// point, and the summary and per-route tables. Its input is Report;
// FromReplay makes one from a replay's report (a run's, or a saved
// run.json read back), and WriteReplay draws that. The engine does not
// import this package: the page is drawn from what the engine reports.
package htmlreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/reprise-tool/reprise/replay"
)

// Report is everything the page shows.
type Report struct {
	Title     string    `json:"title"`
	Target    string    `json:"target,omitempty"`
	Recording []string  `json:"recording,omitempty"`
	Started   time.Time `json:"started"`
	// Outcome says how the run ended in a few words: "completed",
	// "stopped by a guard", "interrupted".
	Outcome string `json:"outcome"`
	// Series holds one entry per second of the run, in order.
	Series []Second `json:"series"`
	// Stages are the ramp stages placed on the run's clock (empty
	// without a ramp).
	Stages []Stage `json:"stages,omitempty"`
	// Abort is set when a guard or an interrupt stopped the run.
	Abort *Abort `json:"abort,omitempty"`
	// Summary is the table at a glance, in order ("Requests", "61,234").
	Summary []Row `json:"summary"`
	// Routes is the per-route table.
	Routes []Route `json:"routes,omitempty"`
}

// Second is one second of the run: a replay's figures (replay.Second),
// drawn as they are.
type Second = replay.Second

// Stage is one ramp stage on the run's clock.
type Stage struct {
	Name  string  `json:"name"`
	Start float64 `json:"start"` // seconds since the start
	End   float64 `json:"end"`
}

// Abort marks when and why the run stopped early.
type Abort struct {
	At     float64 `json:"at"`   // seconds since the start
	Rule   string  `json:"rule"` // "p99>2s", or "interrupt"
	Reason string  `json:"reason"`
}

// Row is one line of the summary table.
type Row struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Bad marks a value worth a look (drawn in red).
	Bad bool `json:"bad,omitempty"`
}

// Route is one line of the per-route table.
type Route struct {
	Route    string  `json:"route"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
}

// MaxSeconds bounds the seconds of a series (replay.MaxSeconds).
const MaxSeconds = replay.MaxSeconds

// MaxPoints bounds the points drawn per line: a longer series is drawn
// from groups of seconds (rates averaged, errors averaged per second,
// percentiles the group's worst), since a chart 1000 units wide shows no
// more.
const MaxPoints = 1200

// Decode reads a Report from its JSON form.
func Decode(r io.Reader) (*Report, error) {
	var rep Report
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return &rep, rep.Validate()
}

// Validate checks that the series is in order and the stages are sane.
func (r *Report) Validate() error {
	if r == nil {
		return errors.New("report: nothing to render")
	}
	for i := 1; i < len(r.Series); i++ {
		if r.Series[i].T <= r.Series[i-1].T {
			return fmt.Errorf("report: series second %d (t=%d) is not after t=%d: sort the series", i, r.Series[i].T, r.Series[i-1].T)
		}
	}
	for i, s := range r.Stages {
		if s.End < s.Start {
			return fmt.Errorf("report: stage %d %q ends before it starts", i+1, s.Name)
		}
	}
	return nil
}
