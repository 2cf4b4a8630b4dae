package live

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func snap(elapsed time.Duration) Snapshot {
	return Snapshot{Elapsed: elapsed, Total: 8*time.Minute + 40*time.Second, Stage: "2x:2m", StageIndex: 2, Stages: 4, Speed: 2,
		Sent: 61234, Completed: 61190, Errors: 31, InFlight: 44, RPS: 512.4, IntendedRPS: 520,
		P50: 12300 * time.Microsecond, P99: 85 * time.Millisecond, Lag: 1800 * time.Microsecond}
}

func TestLine(t *testing.T) {
	tests := []struct {
		name string
		s    Snapshot
		want string
	}{
		// A ramped run in progress.
		{"ramp", snap(130 * time.Second),
			"2m10s/8m40s stage 2x:2m (2/4) | 512 req/s (due 520) | p50 12ms p99 85ms | errors 31 (0.1%) | lag 1.8ms | in flight 44 | sent 61234"},
		// A plain speed, total unknown, stopping.
		{"stopping", Snapshot{Elapsed: 5 * time.Second, Speed: 3, RPS: 10, P99: 2300 * time.Millisecond, Stopping: "p99>2s"},
			"5s 3x | stopping: p99>2s | 10 req/s | p50 0ms p99 2.3s | errors 0 | lag 0ms | in flight 0 | sent 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Line(); got != tt.want {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestProgressPlain(t *testing.T) {
	var b strings.Builder
	p, err := NewProgress(&b, WithTerminal(false))
	if err != nil {
		t.Fatal(err)
	}
	// Updates each second; a line every 5 s of elapsed time.
	for s := 0; s <= 12; s++ {
		p.Update(snap(time.Duration(s) * time.Second))
	}
	stop := snap(13 * time.Second)
	stop.Stopping = "error_rate>5%"
	p.Update(stop)
	p.Finish(snap(14 * time.Second))
	p.Update(snap(20 * time.Second)) // ignored after Finish
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	for i, prefix := range []string{"reprise: 0s/", "reprise: 5s/", "reprise: 10s/", "reprise: 13s/", "reprise: 14s/"} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], prefix)
		}
	}
	if strings.Contains(b.String(), "\r") || strings.Contains(b.String(), "\x1b") {
		t.Error("plain output has terminal control characters")
	}
}

func TestProgressBar(t *testing.T) {
	var b strings.Builder
	p, _ := NewProgress(&b, WithTerminal(true))
	if !p.Terminal() {
		t.Fatal("not a terminal display")
	}
	for s := 0; s < 3; s++ {
		p.Update(snap(time.Duration(s) * time.Second))
	}
	p.Finish(snap(3 * time.Second))
	out := b.String()
	if !strings.Contains(out, "\r") || !strings.Contains(out, "stage 2x:2m (2/4)") || !strings.Contains(out, "[") {
		t.Errorf("bar output %q", out)
	}
	if IsTerminal(&b) {
		t.Error("a buffer is not a terminal")
	}
}

func TestProgressRun(t *testing.T) {
	var b strings.Builder
	p, _ := NewProgress(&b, WithTerminal(false), WithPlainInterval(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	n := 0
	p.Run(ctx, 10*time.Millisecond, func() Snapshot { n++; return snap(time.Duration(n) * time.Second) })
	if n == 0 || !strings.Contains(b.String(), "reprise: ") {
		t.Errorf("Run made %d snapshots: %q", n, b.String())
	}
	if _, err := NewProgress(&b, WithPlainInterval(time.Millisecond)); err == nil {
		t.Error("a 1ms interval was accepted")
	}
}

// TestMetricsScrape serves the metrics on loopback and scrapes them.
func TestMetricsScrape(t *testing.T) {
	m, err := NewMetrics(WithMaxRoutes(2))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Serve(ctx, "127.0.0.1:0", m.Handler())
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(Request{Route: "GET /items", Status: 200, FromDue: 20 * time.Millisecond, FromSend: 18 * time.Millisecond, Lag: 2 * time.Millisecond})
	m.Observe(Request{Route: "GET /items", Status: 503, FromDue: 40 * time.Millisecond, FromSend: 40 * time.Millisecond})
	m.Observe(Request{Route: "POST /orders", Err: "timeout", FromDue: 5 * time.Second})
	m.Observe(Request{Route: "GET /third", Status: 200}) // past the route cap: "other"
	m.SetInFlight(7)
	m.SetBacklog(1500 * time.Millisecond)
	m.SetStage(1, "1x:2m", 1)
	m.SetStage(2, "2x:2m", 2)
	m.SetAborted("p99>2s")

	resp, err := http.Get("http://" + srv.Addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`reprise_requests_total{route="GET /items",status="200"} 1`,
		`reprise_requests_total{route="GET /items",status="503"} 1`,
		`reprise_requests_total{route="POST /orders",status="error"} 1`,
		`reprise_requests_total{route="other",status="200"} 1`,
		`reprise_request_duration_seconds_count{from="due",route="GET /items"} 2`,
		`reprise_request_duration_seconds_count{from="send",route="GET /items"} 2`,
		`reprise_request_duration_seconds_bucket{from="due",route="POST /orders",le="5"} 1`,
		`reprise_errors_total{kind="timeout"} 1`,
		`reprise_errors_total{kind="5xx"} 1`,
		`reprise_schedule_lag_seconds_count 4`,
		`reprise_backlog_lag_seconds 1.5`,
		`reprise_in_flight 7`,
		`reprise_stage 2`,
		`reprise_speed 2`,
		`reprise_stage_info{stage="1x:2m"} 0`,
		`reprise_stage_info{stage="2x:2m"} 1`,
		`reprise_aborted 1`,
		`reprise_aborted_info{rule="p99>2s"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	cancel()
	if err := srv.Wait(); err != nil {
		t.Errorf("server: %v", err)
	}
	// Two replays in one process do not collide: each has its registry.
	if _, err := NewMetrics(); err != nil {
		t.Errorf("second registry: %v", err)
	}
}

func TestServeAddr(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, _ := NewMetrics()
	// No host: loopback only.
	srv, err := Serve(ctx, ":0", m.Handler())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.Addr.String(), "127.0.0.1:") {
		t.Errorf("listening on %v, want loopback", srv.Addr)
	}
	if _, err := Serve(ctx, "9090", m.Handler()); err == nil || !strings.Contains(err.Error(), "write it like") {
		t.Errorf("bad address: %v", err)
	}
}

func BenchmarkObserve(b *testing.B) {
	m, _ := NewMetrics()
	r := Request{Route: "GET /items", Status: 200, FromDue: 20 * time.Millisecond, FromSend: 18 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Observe(r)
		}
	})
}
