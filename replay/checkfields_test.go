package replay_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/replay/check"
	"github.com/reprise-tool/reprise/session"
)

// The run report carries the figures 'reprise check' reads by name.
func TestReportReadByCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	var ex []*session.Exchange
	for i := 0; i < 6; i++ {
		at := int64(1e18) + int64(i)*int64(10e6)
		ex = append(ex, &session.Exchange{Session: "s", Request: session.Request{Method: "GET", Target: "/x"},
			Response: session.Response{Status: 200}, Timing: session.Timing{RequestStart: at, ResponseEnd: at + 1e6}})
	}
	r, err := replay.New(srv.URL, replay.WithPacer(replay.Speed(5)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), session.NewSliceSource(ex...))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	rd, err := check.ReadRun(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.PerSecond) == 0 || rd.RefreshesPerSecond == nil || len(rd.InterArrival) == 0 || len(rd.ThinkTime) == 0 || len(rd.SessionLength) == 0 {
		t.Errorf("check read per_second %v refreshes %v inter-arrival %d think %d length %d",
			rd.PerSecond, rd.RefreshesPerSecond, len(rd.InterArrival), len(rd.ThinkTime), len(rd.SessionLength))
	}
}
