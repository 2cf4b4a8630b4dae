package replay

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestOverallMergesRoutes checks that the run's latency and service time,
// merged from the routes' histograms, are what recording every response
// in one histogram gives: the same summary and the same encoded HDR.
func TestOverallMergesRoutes(t *testing.T) {
	st := newStats()
	lat, svc := newHist(), newHist()
	rnd := rand.New(rand.NewPCG(1, 2))
	due := time.Unix(1000, 0)
	routes := []string{"GET /a", "GET /b", "POST /c"}
	for i := range 5000 {
		r := Result{Route: routes[i%len(routes)], Status: 200, Due: due}
		r.Ready = due
		r.Sent = due.Add(time.Duration(rnd.IntN(50_000)) * time.Microsecond)
		r.Done = r.Sent.Add(time.Duration(rnd.ExpFloat64()*float64(3*time.Millisecond)) + time.Microsecond)
		if i%97 == 0 {
			r.Err, r.ErrKind = errClientClosed, ErrKindCanceled // errors count in no latency
		} else {
			lat.record(r.Done.Sub(r.Due))
			svc.record(r.Done.Sub(r.Sent))
		}
		st.record(&r)
	}
	var rep Report
	st.fill(&rep)
	for _, c := range []struct {
		name      string
		got, want Histogram
	}{
		{"latency", rep.Latency, lat.summary(true)},
		{"service", rep.ServiceTime, svc.summary(true)},
	} {
		if c.got != c.want {
			t.Errorf("%s: merged %+v, recorded once %+v", c.name, c.got, c.want)
		}
	}
	if got, want := st.snapshot().LatP99, time.Duration(lat.h.ValueAtQuantile(99))*time.Microsecond; got != want {
		t.Errorf("snapshot p99 %v, want %v", got, want)
	}
}

// TestOverallOneRoute checks the run's figures when one route has them
// all: they are that route's.
func TestOverallOneRoute(t *testing.T) {
	st := newStats()
	due := time.Unix(1000, 0)
	for i := range 100 {
		r := Result{Route: "GET /a", Status: 200, Due: due, Ready: due, Sent: due.Add(time.Millisecond)}
		r.Done = r.Sent.Add(time.Duration(i+1) * time.Millisecond)
		st.record(&r)
	}
	var rep Report
	st.fill(&rep)
	if len(rep.Routes) != 1 || rep.Latency != rep.Routes[0].Latency || rep.ServiceTime != rep.Routes[0].ServiceTime {
		t.Errorf("run's latency %+v, service %+v; routes %+v", rep.Latency, rep.ServiceTime, rep.Routes)
	}
	if rep.Latency.Count != 100 || rep.Latency.Max < 100 || rep.ServiceTime.Min < 0.9 {
		t.Errorf("latency %+v, service %+v", rep.Latency, rep.ServiceTime)
	}
}
