package replay

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/corrplan"
)

// planFlow is a login whose token the next request carries, a listing
// with per-response ids nobody carries, and a request with an API key no
// response issued.
func planFlow() []*session.Exchange {
	return []*session.Exchange{
		rec("s", "POST", "/login", 0, 5, withResponse(200, "application/json", `{"token":"rec-token-0123456789"}`)),
		rec("s", "GET", "/list", 10, 15, withHeader("Authorization", "Bearer rec-token-0123456789"),
			withResponse(200, "application/json", `{"id":"rec-id-aaaaaaaaaaaa"}`)),
		rec("s", "GET", "/keyed?api_key=hard-coded-key-1", 20, 25, withResponse(200, "application/json", `{"id":"rec-id-bbbbbbbbbbbb"}`)),
	}
}

// planTarget answers planFlow's requests: a live token for the login, a
// fresh id for the others.
func planTarget(t *testing.T) *scripted {
	n := 0
	return newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/login":
			fmt.Fprint(w, `{"token":"live-token-9876543210"}`)
		default:
			fmt.Fprintf(w, `{"id":"live-id-%012d"}`, n)
		}
	})
}

// With a plan, the replay learns the planned token (and substitutes it),
// learns nothing from the listings, drops their recorded bodies as it
// reads them, and names the unreplaced API key in the summary.
func TestPlanLearnsOnlyPlanned(t *testing.T) {
	s := planTarget(t)
	b := corrplan.NewBuilder(0)
	for _, ex := range planFlow() {
		b.Add(ex)
	}
	plan := b.Plan()
	xs := planFlow()
	rep := run(t, s.URL, source(xs...), WithPacer(Max{}), WithPlan(plan))
	if got := s.find(t, "/list").Header.Get("Authorization"); got != "Bearer live-token-9876543210" {
		t.Errorf("Authorization %q: the planned token was not substituted", got)
	}
	if rep.Correlation.Learned != 1 {
		t.Errorf("learned %d values, want the token alone", rep.Correlation.Learned)
	}
	if len(xs[1].Response.Body) != 0 || len(xs[2].Response.Body) != 0 || len(xs[0].Response.Body) == 0 {
		t.Errorf("recorded bodies kept: login %d, list %d, keyed %d bytes; want only the login's", len(xs[0].Response.Body), len(xs[1].Response.Body), len(xs[2].Response.Body))
	}
	if rep.Plan == nil || rep.Plan.Memory.BodiesDropped != 2 || len(rep.Plan.Unreplaced) != 1 {
		t.Fatalf("plan report %+v", rep.Plan)
	}
	var sum strings.Builder
	rep.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "unreplaced  1 requests") || !strings.Contains(sum.String(), "query:api_key") {
		t.Errorf("summary does not name the unreplaced key:\n%s", sum.String())
	}
}

// Without a plan every distinctive value is learned, as before plans.
func TestNoPlanLearnsAll(t *testing.T) {
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token":"live-token-9876543210","id":"live-id-000000000001"}`)
	})
	rep := run(t, s.URL, source(planFlow()...), WithPacer(Max{}))
	if rep.Correlation.Learned < 2 || rep.Plan != nil {
		t.Errorf("learned %d, plan report %+v", rep.Correlation.Learned, rep.Plan)
	}
}

// The window's bounds in exchanges and bytes release exchanges before its
// recording time has passed, the report says so, and every exchange is
// still replayed in start order when the recording is in order.
func TestWindowLimits(t *testing.T) {
	tests := []struct {
		name           string
		exchanges      int
		bytes          int64
		byExch, byByte bool
	}{
		{"exchanges bind", 4, 1 << 30, true, false},    // four exchanges at most
		{"bytes bind", 1 << 20, 3 * 1024, false, true}, // about two exchanges' worth
		{"neither binds", 1 << 20, 1 << 30, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScripted(t, nil)
			var xs []*session.Exchange
			for i := range 20 {
				xs = append(xs, rec(fmt.Sprint("s", i%3), "GET", fmt.Sprint("/", i), float64(i), float64(i)+0.5,
					withResponse(200, "text/plain", strings.Repeat("x", 1000))))
			}
			var res results
			rep := run(t, s.URL, source(xs...), WithPacer(Max{}), WithWindow(time.Hour), WithWindowLimits(tt.exchanges, tt.bytes), WithObserver(&res))
			if rep.Requests.Responses != 20 {
				t.Fatalf("requests %+v", rep.Requests)
			}
			var m MemoryReport
			if rep.Plan != nil {
				m = rep.Plan.Memory
			}
			if (m.ByExchanges > 0) != tt.byExch || (m.ByBytes > 0) != tt.byByte {
				t.Errorf("released early: %d by exchanges, %d by bytes", m.ByExchanges, m.ByBytes)
			}
			var sum strings.Builder
			rep.WriteSummary(&sum)
			if bound := strings.Contains(sum.String(), "window    bound"); bound != (tt.byExch || tt.byByte) {
				t.Errorf("summary says bound %v:\n%s", bound, sum.String())
			}
		})
	}
	if _, err := New("http://127.0.0.1:1", WithWindowLimits(0, 1)); err == nil {
		t.Error("a window bound of 0 exchanges was accepted")
	}
}

// A recording read past the range's end by more than the window holds is
// not read further.
func TestRangeStopsReading(t *testing.T) {
	s := newScripted(t, nil)
	var xs []*session.Exchange
	for i := range 100 {
		xs = append(xs, rec("s", "GET", fmt.Sprint("/", i), float64(i)*1000, float64(i)*1000+1))
	}
	src := &countingSource{src: source(xs...)}
	rep := run(t, s.URL, src, WithPacer(Max{}), WithRange(0, 5*time.Second), WithWindow(time.Second), WithOrigin(t0))
	if rep.Requests.Responses != 6 {
		t.Errorf("replayed %d, want the 6 in the range", rep.Requests.Responses)
	}
	if src.n > 10 {
		t.Errorf("read %d exchanges of 100 for a range that ends at the sixth", src.n)
	}
}

// countingSource counts the exchanges read from src.
type countingSource struct {
	src session.Source
	n   int
}

func (c *countingSource) Next() (*session.Exchange, error) {
	c.n++
	return c.src.Next()
}
