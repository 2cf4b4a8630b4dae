package check

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// handReport builds the report a replay of rec would write: every request
// sent once per clone and answered as recorded, except those whose route
// drop names (as --exclude-path would leave them out).
func handReport(rec *Recording, speed string, drop string) *replay.Report {
	rep := &replay.Report{Version: replay.ReportVersion, Target: "http://127.0.0.1:8089", Speed: speed, Scale: 1,
		StatusCodes: map[string]uint64{}, Errors: map[string]uint64{}}
	counts := map[string]uint64{}
	for route, n := range rec.RouteCounts() {
		if route == drop {
			rep.Filtered.ByPath += uint64(n)
			continue
		}
		counts[route] = uint64(n)
		rep.Requests.Sent += uint64(n)
	}
	for route, n := range counts {
		rep.Routes = append(rep.Routes, replay.RouteReport{Route: route, Requests: n, StatusCodes: map[string]uint64{"200": n}})
	}
	rep.Requests.Scheduled, rep.Requests.Responses = rep.Requests.Sent, rep.Requests.Sent
	rep.StatusCodes["200"] = rep.Requests.Sent
	rep.Filtered.Read = uint64(len(rec.Requests))
	rep.DurationMS = rec.Span.Seconds() * 1000
	rep.ExpectedMS = rep.DurationMS
	rep.Lag = replay.Histogram{Count: rep.Requests.Sent, P50: 0.2, P90: 0.4, P99: 0.9, Max: 2.5}
	rep.OrderWait = replay.Histogram{Count: 3, P50: 0.5, P99: 1.2, Max: 1.2}
	rep.Sessions = replay.SessionCounts{Total: uint64(len(rec.Sessions)), Completed: uint64(len(rec.Sessions))}
	return rep
}

func TestCheckRun(t *testing.T) {
	rec := defaultPopulation().recording(t, Filter{})
	faithful := handReport(rec, "1", "")
	filtered := handReport(rec, "1", "GET /api/products/{id}")
	failing := handReport(rec, "1", "")
	failing.Requests.Errors = failing.Requests.Sent / 20
	failing.Errors = map[string]uint64{"timeout": failing.Requests.Errors}
	failing.Sessions.Failed, failing.Sessions.Completed = 10, failing.Sessions.Total-10
	slow := handReport(rec, "1", "")
	slow.Lag.P99, slow.Lag.Max = 4000, 9000
	slow.DurationMS = slow.ExpectedMS * 1.5
	tests := []struct {
		name    string
		rep     *replay.Report
		verdict Level
		want    []string
	}{
		// Every request as recorded, little lag: as real as it gets.
		{"faithful 1x", faithful, Pass, nil},
		// --exclude-path on one route: the mix moves by its share.
		{"filtered mix", filtered, Fail, []string{"route_mix"}},
		// 5% transport errors and failed sessions.
		{"errors", failing, Fail, []string{"error_rate", "failed_sessions"}},
		// Seconds of lag.
		{"lag", slow, Fail, []string{"lag"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := CheckRun(rec, FromReport(tc.rep), DefaultThresholds())
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s: %v", res.Verdict, tc.verdict, res.Findings)
			}
			for _, w := range tc.want {
				if !has(findings(res, tc.verdict), w) {
					t.Errorf("no %s finding %q: %v", tc.verdict, w, res.Findings)
				}
			}
			// What the report cannot tell is said, not invented.
			if res.Run.InterArrivalKS != nil || res.Run.RefreshPeakShare != nil {
				t.Errorf("figures measured from a report that lacks them: %+v", res.Run)
			}
			if !has(res.Run.NotMeasured, "inter_arrival_ks") || !has(res.Run.NotMeasured, "refresh_peak_share") {
				t.Errorf("not_measured = %v", res.Run.NotMeasured)
			}
		})
	}
}

// hdrOf encodes ms values as a report's Histogram with its hdr.
func hdrOf(t *testing.T, ms []float64) *replay.Histogram {
	t.Helper()
	h := hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	for _, v := range ms {
		_ = h.RecordValue(int64(v * 1000))
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	return &replay.Histogram{Count: uint64(len(ms)), HDR: base64.StdEncoding.EncodeToString(b)}
}

// TestReadRunExtension: a report that carries the proposed per-second and
// distribution fields is checked on them, with no change to the check.
func TestReadRunExtension(t *testing.T) {
	rec := defaultPopulation().recording(t, Filter{})
	rep := handReport(rec, "2", "")
	inter, think, length := recordedDists(rec)
	for _, tc := range []struct {
		name    string
		factor  float64 // applied to the recording's times (in recording time) for the run
		verdict Level
	}{
		// At 2x every gap halves: the same shapes once scaled.
		{"as recorded", 0.5, Pass},
		// Gaps as recorded although the run was at 2x: the schedule did
		// not compress, every distribution is off.
		{"not compressed", 1, Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := rep.WriteJSON(&b); err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			doc["inter_arrival"] = hdrOf(t, scaledValues(inter, tc.factor))
			doc["think_time"] = hdrOf(t, scaledValues(think, tc.factor))
			doc["session_length"] = hdrOf(t, scaledValues(length, tc.factor))
			// Per-second counts: a peak second holding most refreshes.
			doc["per_second"] = []uint64{10, 50, 10, 10, 10, 10, 10, 10, 10, 10}
			doc["refreshes_per_second"] = []uint64{1, 8, 1, 0, 0, 0, 0, 0, 0, 0}
			raw, _ := json.Marshal(doc)
			rd, err := ReadRun(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			res, err := CheckRun(rec, rd, DefaultThresholds())
			if err != nil {
				t.Fatal(err)
			}
			r := res.Run
			if r.InterArrivalKS == nil || r.ThinkTimeKS == nil || r.SessionLengthKS == nil || r.RefreshPeakShare == nil {
				t.Fatalf("extension figures not measured: %+v", r)
			}
			if *r.RefreshPeakShare != 0.8 {
				t.Errorf("refresh peak share %v, want 0.8 (8 of 10 in the one busiest second)", *r.RefreshPeakShare)
			}
			// Inter-arrivals of many interleaved sessions are close to
			// exponential, so doubling them moves KS by about 0.25 (a
			// warning); think times and session lengths fail outright.
			for _, c := range []string{"inter_arrival", "think_time", "session_length"} {
				got := has(findings(res, Fail), c) || has(findings(res, Warn), c)
				if got != (tc.verdict == Fail) {
					t.Errorf("%s flagged = %v, want %v: %v (KS %v %v %v)", c, got, tc.verdict == Fail, res.Findings, *r.InterArrivalKS, *r.ThinkTimeKS, *r.SessionLengthKS)
				}
			}
			if tc.verdict == Fail && !has(findings(res, Fail), "think_time") {
				t.Errorf("think times not failing: %v", res.Findings)
			}
		})
	}
}

func TestReadRunErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		// Not JSON at all.
		{"garbage", "not json", "read replay report"},
		// Another layout version.
		{"version", `{"version": 99}`, "version 99"},
		// A proposed histogram with a broken hdr.
		{"bad hdr", `{"version": 1, "think_time": {"hdr": "!!"}}`, "think_time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadRun(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestGoldenText(t *testing.T) {
	rec := defaultPopulation().recording(t, Filter{})
	rec.Paths = []string{"shop.rpz"}
	plan, err := CheckPlan(rec, Plan{SpeedRamp: mustRamp(t, "1x:1m,10x"), Rate: 150}, DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	run, err := CheckRun(rec, FromReport(handReport(rec, "1", "GET /api/products/{id}")), DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	// A ramped run whose report carries the send figures: the ramp packs
	// requests and refreshes alike into its last seconds.
	ramped := handReport(rec, "1x:1m,10x", "")
	inter, _, _ := recordedDists(rec)
	var gaps []float64
	for _, p := range inter {
		gaps = append(gaps, p.Value)
	}
	ramped.InterArrivalScaled = *hdrOf(t, gaps)
	ramped.PerSecond = append(repeat(20, 60), repeat(190, 15)...)
	ramped.RefreshesPerSecond = spread(80, ramped.PerSecond)
	rampRun, err := CheckRun(rec, FromReport(ramped), DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	for name, res := range map[string]*Result{"plan.txt": plan, "run.txt": run, "run-ramp.txt": rampRun} {
		var b bytes.Buffer
		if err := res.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		testkit.Golden(t, filepath.Join("testdata", name), b.Bytes(), *update)
	}
	// The JSON's names are an interface: pin them (numbers and messages
	// vary with the data, and floats in their last digit by platform).
	for name, res := range map[string]*Result{"plan.schema.json": plan, "run.schema.json": run} {
		var b bytes.Buffer
		if err := res.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		out, _ := json.MarshalIndent(schema(doc), "", "  ")
		testkit.Golden(t, filepath.Join("testdata", name), append(out, '\n'), *update)
	}
}

// schema replaces every value in a JSON document by its type, keeping
// the names, and a list by its first element.
func schema(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = schema(e)
		}
		return out
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{schema(x[0])}
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "bool"
	}
	return "null"
}

// spread returns n counts over len(weights) seconds in proportion to the
// weights, rounding so that they add up to n.
func spread(n int, weights []uint64) []uint64 {
	var total uint64
	for _, w := range weights {
		total += w
	}
	out := make([]uint64, len(weights))
	var cum uint64
	given := 0
	for i, w := range weights {
		cum += w
		upto := int((cum*uint64(n) + total/2) / total)
		out[i] = uint64(upto - given)
		given = upto
	}
	return out
}

func repeat(v uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestRefreshPeakRun: refreshes at peak are judged against the run's own
// traffic at peak. A ramp packs everything into its fastest seconds and
// passes when the refreshes follow the traffic; refreshes crowding a peak
// the requests do not still fail.
func TestRefreshPeakRun(t *testing.T) {
	rec := defaultPopulation().recording(t, Filter{})
	base, err := baseline(rec, DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	n := base.Refreshes
	flat := append(repeat(140, 9), 150, 150)
	flat = append(flat, repeat(140, 9)...)
	crowded := spread(n-60, repeat(1, 18))
	crowded = append(append(crowded[:9:9], 30, 30), crowded[9:]...)
	ramped := append(repeat(10, 18), 600, 600)
	tests := []struct {
		name      string
		speed     string
		perSecond []uint64
		refreshes []uint64
		verdict   Level
		crowdLo   float64 // RefreshCrowding must lie in [crowdLo, crowdHi]
		crowdHi   float64
	}{
		// Flat traffic, but three quarters of the refreshes in the two
		// busiest seconds, which hold a tenth of the requests: refresh
		// timing is broken whatever the traffic's shape.
		{"refreshes crowd a flat run's peak", "1", flat, crowded, Fail, 0.5, 0.7},
		// The demo's shape: a ramp sends 87% of its requests in its last
		// two seconds, and 88% of its refreshes with them. The refresh
		// share at peak rose from 24% to 88%, but no more than the
		// requests': real refresh timing, squeezed by the ramp.
		{"ramp packs the traffic", "1x:6s,5x:3s,10x", ramped, spread(n, ramped), Pass, -0.1, 0.05},
		// The refreshes spread like the requests at a constant speed.
		{"faithful", "2", flat, spread(n, flat), Pass, -0.1, 0.05},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := handReport(rec, tc.speed, "")
			rep.PerSecond, rep.RefreshesPerSecond = tc.perSecond, tc.refreshes
			res, err := CheckRun(rec, FromReport(rep), DefaultThresholds())
			if err != nil {
				t.Fatal(err)
			}
			r := res.Run
			if r.RefreshCrowding == nil || r.RefreshPeakNoise == nil || r.RefreshPeakRequestShare == nil {
				t.Fatalf("refresh crowding not measured: %+v", r)
			}
			t.Logf("run: %s of refreshes, %s of requests at peak; crowding %.2f, noise %.2f; %v",
				pct(*r.RefreshPeakShare), pct(*r.RefreshPeakRequestShare), *r.RefreshCrowding, *r.RefreshPeakNoise, res.Findings)
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s: %v", res.Verdict, tc.verdict, res.Findings)
			}
			if got := *r.RefreshCrowding; got < tc.crowdLo || got > tc.crowdHi {
				t.Errorf("crowding %.2f, want %.2f to %.2f", got, tc.crowdLo, tc.crowdHi)
			}
			if tc.verdict == Pass && has(findings(res, Warn), "refresh_peak") {
				t.Errorf("refresh_peak warned: %v", res.Findings)
			}
			for _, f := range res.Findings {
				if strings.Contains(f.Message, "xx") {
					t.Errorf("speed named twice: %s", f.Message)
				}
				if f.Check == "refresh_peak" && !strings.Contains(f.Message, "beyond the traffic") {
					t.Errorf("refresh_peak does not say what it compares: %s", f.Message)
				}
			}
		})
	}
}

func TestSpeedPhrase(t *testing.T) {
	for _, tc := range []struct{ speed, want string }{
		{"1", "the replay at 1x"},                                 // a report's constant speed
		{"2.5x", "the replay at 2.5x"},                            // written with its x already
		{"max", "the replay at max speed"},                        // no timing at all
		{"1x:6s,5x:3s,10x", "the replay on ramp 1x:6s,5x:3s,10x"}, // a ramp names its own stages
	} {
		if got := speedPhrase(tc.speed); got != tc.want {
			t.Errorf("speedPhrase(%q) = %q, want %q", tc.speed, got, tc.want)
		}
	}
}

// TestRunDistributionsUnderRamp: under a ramp only the speed-scaled
// inter-arrivals compare with the recording; think times and session
// lengths are said to be not measured, with the reason.
func TestRunDistributionsUnderRamp(t *testing.T) {
	rec := defaultPopulation().recording(t, Filter{})
	inter, think, length := recordedDists(rec)
	for _, tc := range []struct {
		name   string
		scaled bool
	}{
		// The report carries the scaled copy: compared, and as recorded.
		{"scaled", true},
		// A report without it: nothing to compare under a ramp.
		{"no scaled copy", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := handReport(rec, "1x:1m,10x", "")
			rep.InterArrival = *hdrOf(t, scaledValues(inter, 0.1))
			if tc.scaled {
				rep.InterArrivalScaled = *hdrOf(t, scaledValues(inter, 1))
			}
			rep.ThinkTime = *hdrOf(t, scaledValues(think, 0.1))
			rep.SessionLength = *hdrOf(t, scaledValues(length, 0.1))
			res, err := CheckRun(rec, FromReport(rep), DefaultThresholds())
			if err != nil {
				t.Fatal(err)
			}
			r := res.Run
			if tc.scaled {
				if r.InterArrivalKS == nil || *r.InterArrivalKS > 0.05 {
					t.Errorf("inter-arrival KS %v, want measured and near 0", r.InterArrivalKS)
				}
			} else if r.InterArrivalKS != nil || !has(r.NotMeasured, "inter_arrival_ks") {
				t.Errorf("inter-arrivals compared without their scaled copy: %v", r.NotMeasured)
			}
			for _, name := range []string{"think_time_ks", "session_length_ks"} {
				if !has(r.NotMeasured, name) || !strings.Contains(r.NotMeasuredWhy[name], "ramp") {
					t.Errorf("%s: not measured %v, why %q", name, r.NotMeasured, r.NotMeasuredWhy[name])
				}
			}
			if r.ThinkTimeKS != nil || r.SessionLengthKS != nil {
				t.Errorf("wall think times or lengths compared under a ramp: %+v", r)
			}
			var b bytes.Buffer
			if err := res.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "a ramp changed the speed within the run") {
				t.Errorf("the text does not say why:\n%s", b.String())
			}
		})
	}
}

// TestInterArrivalResolution: gaps shorter than the sender's timing
// jitter (its lag p90, times the top speed under a ramp) cannot be
// reproduced and count as equal; longer ones are still compared.
func TestInterArrivalResolution(t *testing.T) {
	rec := defaultPopulation().recording(t, Filter{})
	inter, _, _ := recordedDists(rec)
	median := 0.0
	if len(inter) > 0 {
		vs := make([]float64, 0, len(inter))
		for _, p := range inter {
			vs = append(vs, p.Value)
		}
		slices.Sort(vs)
		median = vs[len(vs)/2]
	}
	// jittered: every gap below the median stretched to it, as a sender
	// whose wake-ups come late would stretch them.
	jittered := func(f float64) []float64 {
		var out []float64
		for _, p := range inter {
			out = append(out, max(p.Value, median)*f)
		}
		return out
	}
	tests := []struct {
		name    string
		speed   string
		lagP90  float64 // ms, wall
		gaps    []float64
		verdict Level
	}{
		// At 10x a sender late by up to 1.2 × median/10 cannot place
		// gaps below the median: not the replay's distortion.
		{"jitter at 10x", "1x:1m,10x", median / 10 * 1.2, jittered(1), Pass},
		// The same gaps from a sender that kept time: it did stretch them.
		{"stretched by a punctual sender", "1x:1m,10x", 0.1, jittered(1), Fail},
		// At a constant 2x the wall jitter is compared in wall time.
		{"jitter at 2x", "2", median / 2 * 1.2, jittered(0.5), Pass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := handReport(rec, tc.speed, "")
			rep.Lag.P90 = tc.lagP90
			if _, ok := constSpeed(tc.speed); ok {
				rep.InterArrival = *hdrOf(t, tc.gaps)
			} else {
				rep.InterArrivalScaled = *hdrOf(t, tc.gaps)
			}
			res, err := CheckRun(rec, FromReport(rep), DefaultThresholds())
			if err != nil {
				t.Fatal(err)
			}
			r := res.Run
			if r.InterArrivalKS == nil {
				t.Fatalf("not measured: %v", r.NotMeasuredWhy)
			}
			t.Logf("KS %.2f, noise %.3f, floor %.1fms: %v", *r.InterArrivalKS, r.KSNoise["inter_arrival"], r.KSFloorMS["inter_arrival"], res.Findings)
			got := Pass
			for _, f := range res.Findings {
				if f.Check == "inter_arrival" {
					got = f.Level
				}
			}
			if got != tc.verdict {
				t.Errorf("inter_arrival %s, want %s", got, tc.verdict)
			}
		})
	}
}

// scaledValues is s's values, each times f: a recorded distribution as a
// run at another speed would measure it.
func scaledValues(s Sample, f float64) []float64 {
	var out []float64
	for _, p := range s {
		out = append(out, p.Value*f)
	}
	return out
}
