package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// story is a small recording: two users with logins, a proactive and a
// reactive refresh, a logout and a later login, and a burst of traffic in
// one second so that "refreshes at peak" has something to find.
func story(t testing.TB) []*session.Exchange {
	a0, a1 := jwtFor(t, "ann", "S1", 0, 10), jwtFor(t, "ann", "S1", 8, 18)
	bs := []*xbuilder{
		xb(0, "POST", "/auth/login").form("username=ann&password=x").rjson(tokenJSON(a0, "ra0", 10)),
		xb(1*time.Second, "GET", "/api/products?page=1").bearer(a0),
		xb(2*time.Second, "POST", "/auth/login").form("username=bob&password=x").rjson(tokenJSON("B0", "rb0", 10)).conn(2, "127.0.0.1:40001"),
		xb(3*time.Second, "GET", "/api/cart").bearer("B0").conn(2, "127.0.0.1:40001"),
		xb(8*time.Second, "POST", "/auth/refresh").form("grant_type=refresh_token&refresh_token=ra0").rjson(tokenJSON(a1, "ra1", 10)),
		xb(9*time.Second, "GET", "/api/cart").bearer(a1),
		xb(13*time.Second, "GET", "/api/orders/1").bearer("B0").conn(2, "127.0.0.1:40001").status(401),
		xb(13*time.Second+100*ms, "POST", "/auth/refresh").form("grant_type=refresh_token&refresh_token=rb0").rjson(tokenJSON("B1", "rb1", 10)).conn(2, "127.0.0.1:40001"),
		xb(13*time.Second+200*ms, "GET", "/api/orders/1").bearer("B1").conn(2, "127.0.0.1:40001"),
		xb(14*time.Second, "POST", "/auth/logout").bearer(a1).status(204),
		xb(20*time.Second, "POST", "/auth/login").form("username=ann&password=x").rjson(tokenJSON("A9", "ra9", 10)),
	}
	for i := 0; i < 8; i++ { // a burst in second 13
		bs = append(bs, xb(13*time.Second+time.Duration(300+50*i)*ms, "GET", "/api/products").bearer("B1").conn(2, "127.0.0.1:40001"))
	}
	xs := make([]*session.Exchange, len(bs))
	for i, b := range bs {
		xs[i] = b.x
	}
	return xs
}

// writeRecording writes xs (in request start order) to a new recording,
// with the tracker's timelines when withTimelines is set.
func writeRecording(t *testing.T, xs []*session.Exchange, withTimelines bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "story.rpz")
	w, err := session.Create(path, session.Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTracker()
	if err != nil {
		t.Fatal(err)
	}
	src := tr.Annotate(session.NewSliceSource(xs...))
	for {
		x, err := src.Next()
		if err != nil {
			break
		}
		if !withTimelines {
			x.Session, x.Tokens = "", nil
		}
		if err := w.WriteExchange(x); err != nil {
			t.Fatal(err)
		}
	}
	if withTimelines {
		if err := tr.WriteFinished(w, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspect(t *testing.T) {
	stored := writeRecording(t, story(t), true)
	bare := writeRecording(t, story(t), false)
	ctx := context.Background()

	a, err := Inspect(ctx, []string{stored}, InspectOptions{Top: -1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Inspect(ctx, []string{bare}, InspectOptions{Top: -1})
	if err != nil {
		t.Fatal(err)
	}
	if a.Report.From != "recording" || b.Report.From != "recomputed" {
		t.Fatalf("timelines from %q and %q", a.Report.From, b.Report.From)
	}
	// Stored or recomputed, the figures agree.
	if b.Report.Tracking == nil || b.Report.Tracking.Attributed != 19 {
		t.Errorf("tracking %+v", b.Report.Tracking)
	}
	a.Report.From, b.Report.From = "", ""
	a.Report.Tracking, b.Report.Tracking = nil, nil
	ja, _ := json.Marshal(a.Report)
	jb, _ := json.Marshal(b.Report)
	if !bytes.Equal(ja, jb) {
		t.Errorf("stored and recomputed reports differ:\n%s\n%s", ja, jb)
	}
	r := b.Report
	if r.Sessions != 3 || r.Logins != 3 || r.Logouts != 1 || r.Refreshes.Total != 2 || r.Refreshes.Proactive != 1 || r.Refreshes.Reactive != 1 {
		t.Errorf("report %+v", r)
	}
	// 20 s span: the busiest tenth is 2 seconds; second 13 holds the
	// burst and the reactive refresh.
	if pk := r.Refreshes.Peak; pk.SpanSeconds != 21 || pk.Seconds != 3 || pk.Refreshes != 1 || pk.Share != 0.5 {
		t.Errorf("peak %+v", pk)
	}
	if r.ThinkTime.Count == 0 || r.Refreshes.Lead.Count != 2 {
		t.Errorf("think %+v lead %+v", r.ThinkTime, r.Refreshes.Lead)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "report.golden"), text.Bytes(), *update)

	d, err := Inspect(ctx, []string{stored}, InspectOptions{Session: "s-000002"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Detail == nil || len(d.Detail.Requests) != 13 || d.Detail.Timeline == nil || d.Detail.Timeline.Reactive != 1 {
		t.Fatalf("detail %+v", d.Detail)
	}
	text.Reset()
	if err := d.Detail.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "detail.golden"), text.Bytes(), *update)

	// Two separate recordings with stored timelines reuse keys: they are
	// recomputed as one, and the sessions of both are counted.
	other := writeRecording(t, story(t), true)
	m, err := Inspect(ctx, []string{stored, other}, InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Report.From != "recomputed" || m.Report.Exchanges != 38 {
		t.Errorf("merged: from %q, %d exchanges, %d sessions", m.Report.From, m.Report.Exchanges, m.Report.Sessions)
	}

	// An unknown key is an error that says where to look.
	if _, err := Inspect(ctx, []string{stored}, InspectOptions{Session: "s-999999"}); !errors.Is(err, ErrNoSession) {
		t.Errorf("unknown session: %v", err)
	}
	// A missing file is an error, not a panic.
	if _, err := Inspect(ctx, []string{filepath.Join(t.TempDir(), "none.rpz")}, InspectOptions{}); err == nil {
		t.Error("missing file: no error")
	}
}
