package replay

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
)

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		err  bool
	}{
		{"0/1", Shard{0, 1}, false},     // the whole run
		{"3/4", Shard{3, 4}, false},     // the last of four
		{" 1 / 2 ", Shard{1, 2}, false}, // spaces are forgiven
		{"4/4", Shard{}, true},          // K counts from 0
		{"-1/4", Shard{}, true},         // negative
		{"0/0", Shard{}, true},          // no shard at all
		{"1", Shard{}, true},            // no N
		{"a/b", Shard{}, true},          // not numbers
		{"0/100000", Shard{}, true},     // more than MaxShards
	} {
		got, err := ParseShard(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("ParseShard(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
		if err != nil && !errors.Is(err, ErrShard) {
			t.Errorf("ParseShard(%q): %v is not ErrShard", c.in, err)
		}
	}
}

// Every key belongs to exactly one shard of N, for any N, and the split
// is roughly even.
func TestShardOwnsPartition(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 16} {
		per := make([]int, n)
		for i := range 4000 {
			key := cloneKey(fmt.Sprintf("sess-%d", i/4), i%4, 4)
			owners := 0
			for k := range n {
				if (Shard{k, n}).Owns(key) {
					owners++
					per[k]++
				}
			}
			if owners != 1 {
				t.Fatalf("N=%d: key %s owned by %d shards", n, key, owners)
			}
		}
		for k, c := range per {
			if want := 4000 / n; c < want/2 || c > want*3/2 {
				t.Errorf("N=%d: shard %d owns %d of 4000 keys, far from %d", n, k, c, want)
			}
		}
	}
}

func TestParseStartAt(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got, err := ParseStartAt("+30s", now); err != nil || !got.Equal(now.Add(30*time.Second)) {
		t.Errorf("+30s: %v, %v", got, err)
	}
	if got, err := ParseStartAt("2026-01-02T03:05:00Z", now); err != nil || !got.Equal(now.Add(55*time.Second)) {
		t.Errorf("RFC 3339: %v, %v", got, err)
	}
	for _, bad := range []string{"", "+", "+-3s", "tomorrow", "2026-01-02"} {
		if _, err := ParseStartAt(bad, now); err == nil {
			t.Errorf("ParseStartAt(%q): no error", bad)
		}
	}
}

// shardSource is a recording of sessions of three requests each.
func shardSource(sessions int) *session.SliceSource {
	var ex []*session.Exchange
	for s := range sessions {
		for i := range 3 {
			at := float64(s*7 + i*20)
			ex = append(ex, rec(fmt.Sprintf("s%02d", s), "GET", fmt.Sprintf("/x?s=%d&i=%d", s, i), at, at+5))
		}
	}
	sort.SliceStable(ex, func(i, j int) bool { return ex[i].Timing.RequestStart < ex[j].Timing.RequestStart })
	return source(ex...)
}

// N shards of a scaled replay send every session clone exactly once
// between them, each clone's requests at the due time the whole run gives
// them; their merged report counts what the whole run counts.
func TestShardsReplayEachCloneOnce(t *testing.T) {
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {})
	whole := &results{}
	wholeRep := run(t, srv.URL, shardSource(12), WithScale(3), WithPacer(Max{}), WithObserver(whole),
		WithRecording(&RecordingID{SHA256: "abc", Format: 1}))
	byKey := func(rs []Result) map[string]int {
		m := map[string]int{}
		for _, r := range rs {
			m[r.Session]++
		}
		return m
	}
	want := byKey(whole.get())
	if len(want) != 36 {
		t.Fatalf("whole run: %d clones, want 36", len(want))
	}
	for _, n := range []int{2, 4} {
		got := map[string]int{}
		var reps []*Report
		for k := range n {
			c := &results{}
			rep := run(t, srv.URL, shardSource(12), WithScale(3), WithPacer(Max{}), WithObserver(c), WithShard(k, n),
				WithRecording(&RecordingID{SHA256: "abc", Format: 1}), WithRate(ramp.Rate{PerSecond: 1000 * float64(n)}))
			for key, v := range byKey(c.get()) {
				if got[key] != 0 {
					t.Errorf("N=%d: clone %s sent by two shards", n, key)
				}
				got[key] += v
			}
			if rep.Shard == nil || rep.Shard.K != k || rep.Shard.N != n {
				t.Errorf("N=%d: report's shard %+v, want %d/%d", n, rep.Shard, k, n)
			}
			if rep.Limits.RatePerSecond != 1000 || rep.Shard.WholeRatePerSecond != 1000*float64(n) {
				t.Errorf("N=%d: rate %g of %g, want 1000 of %d", n, rep.Limits.RatePerSecond, rep.Shard.WholeRatePerSecond, 1000*n)
			}
			reps = append(reps, rep)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("N=%d: shards sent %v, the whole run %v", n, got, want)
		}
		m, err := MergeReports(reps...)
		if err != nil {
			t.Fatal(err)
		}
		if m.Requests.Sent != wholeRep.Requests.Sent || m.Sessions.Total != wholeRep.Sessions.Total || m.Latency.Count != wholeRep.Latency.Count {
			t.Errorf("N=%d: merged sent %d sessions %d latency count %d; whole run %d %d %d", n,
				m.Requests.Sent, m.Sessions.Total, m.Latency.Count, wholeRep.Requests.Sent, wholeRep.Sessions.Total, wholeRep.Latency.Count)
		}
		var sb strings.Builder
		if err := reps[0].WriteSummary(&sb); err != nil || !strings.Contains(sb.String(), "divided by") {
			t.Errorf("N=%d: a shard's summary does not say its caps were divided:\n%s", n, sb.String())
		}
	}
}

// A run given a start instant waits for it; one that reaches it late
// starts at once and reports how late.
func TestStartAt(t *testing.T) {
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {})
	at := time.Now().Add(300 * time.Millisecond)
	rep := run(t, srv.URL, shardSource(1), WithPacer(Max{}), WithStartAt(at))
	if rep.Start.Before(at) || rep.StartAt == nil || !rep.StartAt.Equal(at.UTC()) {
		t.Errorf("started %v, start at %v (report's %v)", rep.Start, at, rep.StartAt)
	}
	rep = run(t, srv.URL, shardSource(1), WithPacer(Max{}), WithStartAt(time.Now().Add(-2*time.Second)))
	if rep.StartLateMS < 2000 {
		t.Errorf("late by %vms, want 2000 or more", rep.StartLateMS)
	}
	var sb strings.Builder
	rep.WriteSummary(&sb)
	if !strings.Contains(sb.String(), "LATE by") {
		t.Errorf("summary does not say the start was late:\n%s", sb.String())
	}
}

// fakeShard is a report of shard k of n holding the latency samples.
func fakeShard(k, n int, samples []time.Duration, sha string) *Report {
	h, rh := newHist(), newHist()
	for _, d := range samples {
		h.record(d)
		rh.record(d)
	}
	return &Report{Version: ReportVersion, Target: "http://t", Speed: "1", Scale: 1,
		Start:     time.Unix(1000, 0).Add(time.Duration(k) * 1500 * time.Millisecond),
		Recording: &RecordingID{Paths: []string{"r.rpz"}, SHA256: sha, Format: 1},
		Shard:     &ShardReport{K: k, N: n, Hash: shardHash},
		Requests:  RequestCounts{Sent: uint64(len(samples)), Responses: uint64(len(samples))},
		Errors:    map[string]uint64{"timeout": uint64(k)},
		PerSecond: []uint64{1, 2, 3},
		Latency:   h.summary(true),
		Routes:    []RouteReport{{Route: "GET /x", Requests: uint64(len(samples)), Latency: rh.summary(true)}},
	}
}

// Merged percentiles are those of one histogram fed every sample; counts
// are sums; per-second counts add by wall second.
func TestMergeReports(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := newHist()
	parts := make([][]time.Duration, 3)
	for i := range 30000 {
		d := time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))
		all.record(d)
		parts[i%3] = append(parts[i%3], d)
	}
	var reps []*Report
	for k := range 3 {
		reps = append(reps, fakeShard(k, 3, parts[k], "abc"))
	}
	m, err := MergeReports(reps[2], reps[0], reps[1])
	if err != nil {
		t.Fatal(err)
	}
	want := all.summary(false)
	if m.Latency.Count != want.Count || m.Requests.Sent != 30000 || m.Errors["timeout"] != 3 {
		t.Errorf("merged count %d sent %d timeouts %d; want %d 30000 3", m.Latency.Count, m.Requests.Sent, m.Errors["timeout"], want.Count)
	}
	for _, p := range []struct {
		name      string
		got, want float64
	}{{"p50", m.Latency.P50, want.P50}, {"p99", m.Latency.P99, want.P99}, {"route p99", m.Routes[0].Latency.P99, want.P99}} {
		if math.Abs(p.got-p.want) > p.want*0.001 {
			t.Errorf("merged %s %vms, one histogram's %vms", p.name, p.got, p.want)
		}
	}
	// Shard k started 1.5k seconds after shard 0: seconds 0,1,2 | 1,2,3 | 3,4,5.
	if got := fmt.Sprint(m.PerSecond); got != "[1 3 5 4 2 3]" {
		t.Errorf("per second %s, want [1 3 5 4 2 3]", got)
	}
	if len(m.Shards) != 3 || m.Shards[0].K != 0 {
		t.Errorf("shards %+v", m.Shards)
	}
}

func TestMergeReportsRefuses(t *testing.T) {
	one := []time.Duration{time.Millisecond}
	for _, c := range []struct {
		name string
		reps []*Report
		want string
	}{
		{"none", nil, "no report"},
		{"another recording", []*Report{fakeShard(0, 2, one, "abc"), fakeShard(1, 2, one, "def")}, "differs from report 0"},
		{"a shard missing", []*Report{fakeShard(0, 3, one, "abc"), fakeShard(2, 3, one, "abc")}, "missing 1/3"},
		{"a shard twice", []*Report{fakeShard(0, 2, one, "abc"), fakeShard(0, 2, one, "abc")}, "given twice"},
		{"shard sets differ", []*Report{fakeShard(0, 2, one, "abc"), fakeShard(1, 3, one, "abc")}, "of 3 shards"},
		{"no recording", []*Report{{Version: ReportVersion}}, "names no recording"},
		{"another version", []*Report{{Version: 99}}, "version 99"},
		{"damaged histogram", func() []*Report {
			r := fakeShard(0, 1, one, "abc")
			r.Latency.HDR = "AAAA"
			return []*Report{r}
		}(), "damaged"},
	} {
		_, err := MergeReports(c.reps...)
		if err == nil || !errors.Is(err, ErrMerge) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an ErrMerge saying %q", c.name, err, c.want)
		}
	}
}

// TestMergeReportsPlan: the plan is the recording's and is taken once;
// what each shard's memory bounds did is summed.
func TestMergeReportsPlan(t *testing.T) {
	one := []time.Duration{time.Millisecond}
	unrep := []session.UnreplacedValue{{Route: "GET /api", Place: "header Authorization", Requests: 7, Example: "Bearer x"}}
	var reps []*Report
	for k := range 3 {
		r := fakeShard(k, 3, one, "abc")
		r.Plan = &PlanReport{Rules: 2, Unreplaced: unrep, Memory: MemoryReport{
			WindowExchanges: 4096, WindowBytes: 8 << 20, ByBytes: uint64(k), BodiesDropped: 10 * uint64(k+1)}}
		reps = append(reps, r)
	}
	reps[1].Plan = nil // a shard that had nothing to say about the plan
	m, err := MergeReports(reps...)
	if err != nil {
		t.Fatal(err)
	}
	p := m.Plan
	if p == nil {
		t.Fatal("merged report has no plan section")
	}
	if p.Rules != 2 || len(p.Unreplaced) != 1 || p.Unreplaced[0].Requests != 7 {
		t.Errorf("plan rules %d unreplaced %+v; want 2 and the recording's one place ×7", p.Rules, p.Unreplaced)
	}
	if p.Memory.BodiesDropped != 40 || p.Memory.ByBytes != 2 || p.Memory.WindowBytes != 8<<20 {
		t.Errorf("memory %+v; want bodies dropped 10+30, released by bytes 0+2, window 8 MiB", p.Memory)
	}
	for _, r := range reps {
		r.Plan = nil
	}
	if m, _ := MergeReports(reps...); m.Plan != nil {
		t.Errorf("no shard had a plan, merged plan %+v", m.Plan)
	}
}
