package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// TestRecordRotatesAndStops runs Record for a bounded time with rotation
// by time, and checks the parts add up and the status callback ran.
func TestRecordRotatesAndStops(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "rot.rpz")
	addrc := make(chan string, 1)
	var statuses atomic.Int32
	done := make(chan struct{})
	var sum Summary
	var err error
	go func() {
		defer close(done)
		sum, err = Record(context.Background(), RecordConfig{
			Listen: "127.0.0.1:0", Upstream: srv.URL, Output: out,
			RotateEvery: time.Second, Duration: 2500 * time.Millisecond,
			OnListen: func(a string) { addrc <- a },
			Status:   func(Progress) { statuses.Add(1) },
		})
	}()
	addr := <-addrc
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	sent := 0
	for start := time.Now(); time.Since(start) < 2*time.Second; sent++ {
		testkit.Send(t, cl, testkit.NewRequest(t, "GET", "http://"+addr+"/tick", ""))
		time.Sleep(50 * time.Millisecond)
	}
	cl.CloseIdleConnections()
	<-done // Duration ends the run by itself
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Files) < 2 {
		t.Fatalf("files %v, want at least two parts", sum.Files)
	}
	if statuses.Load() < 1 {
		t.Fatal("status never reported")
	}
	rd, err := session.Open(sum.Files...)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	n := 0
	for {
		if _, err := rd.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	var counted uint64
	for _, m := range rd.Metadata() {
		counted += m.Counters.Exchanges
	}
	if n != sent || sum.Exchanges != uint64(sent) || counted != uint64(sent) {
		t.Fatalf("sent %d, read back %d, summary %d, part counters add to %d", sent, n, sum.Exchanges, counted)
	}
}

func TestRecordErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  RecordConfig
	}{
		{"no output", RecordConfig{Listen: "127.0.0.1:0", Upstream: "http://127.0.0.1:1"}},                                   // -o is required
		{"remote", RecordConfig{Listen: "0.0.0.0:0", Upstream: "http://127.0.0.1:1", Output: "x"}},                           // loopback only
		{"bad upstream", RecordConfig{Listen: "127.0.0.1:0", Upstream: "127.0.0.1:1", Output: "x"}},                          // not a URL
		{"body too big", RecordConfig{Listen: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", Output: "x", MaxBody: 1 << 30}}, // over the format's cap
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Record(context.Background(), tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Start refuses a public address unless allowed, and a started proxy
// ends its source (Next gives io.EOF) once ctx ends.
func TestStart(t *testing.T) {
	p, err := New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Start(context.Background(), "0.0.0.0:0", false); !errors.Is(err, ErrRemoteListen) {
		t.Fatalf("public address: err = %v, want ErrRemoteListen", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, served, err := p.Start(ctx, "127.0.0.1:0", false)
	if err != nil || addr == "" {
		t.Fatalf("start: %q %v", addr, err)
	}
	cancel()
	if err := served(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); err != io.EOF {
		t.Errorf("Next after the end = %v, want io.EOF", err)
	}
}
