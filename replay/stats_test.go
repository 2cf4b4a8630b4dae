package replay

import (
	"fmt"
	"math/rand/v2"
	"reflect"
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

// TestStatsCountsCodesAndRoutes checks the status-code and per-route
// counts against a plain count of the same results, in batches that mix
// routes and codes (the last route's figures are reused between results)
// and past maxRoutes, where a new route's results go to "other".
func TestStatsCountsCodesAndRoutes(t *testing.T) {
	st := newStats()
	due := time.Unix(1000, 0)
	rnd := rand.New(rand.NewPCG(3, 4))
	codes := []int{200, 200, 200, 404, 500, 302, 0, 999, -1}
	wantCodes := map[string]uint64{}
	wantRoutes := map[string]map[string]uint64{}
	wantReqs := map[string]uint64{}
	count := func(rs []Result) { // as the figures counted with maps
		for _, r := range rs {
			name := r.Route
			if _, ok := wantRoutes[name]; !ok && len(wantRoutes) >= maxRoutes {
				name = "other"
			}
			if wantRoutes[name] == nil {
				wantRoutes[name] = map[string]uint64{}
			}
			wantRoutes[name][statusText(r.Status)]++
			wantReqs[name]++
			wantCodes[statusText(r.Status)]++
		}
	}
	var batch []Result
	for i := range 20_000 {
		route := fmt.Sprintf("GET /r%d", rnd.IntN(8))
		if i > 10_000 {
			route = fmt.Sprintf("GET /many%d", i%(maxRoutes+50)) // past maxRoutes
		}
		code := codes[rnd.IntN(len(codes))]
		r := Result{Route: route, Status: code, Due: due, Ready: due, Sent: due.Add(time.Millisecond), Done: due.Add(2 * time.Millisecond)}
		batch = append(batch, r)
		if len(batch) == 7 || i%5 == 0 {
			st.recordAll(batch)
			count(batch)
			batch = batch[:0]
		}
	}
	st.recordAll(batch)
	count(batch)
	var rep Report
	st.fill(&rep)
	if !reflect.DeepEqual(rep.StatusCodes, wantCodes) {
		t.Errorf("status codes %v, want %v", rep.StatusCodes, wantCodes)
	}
	if len(rep.Routes) != len(wantRoutes) {
		t.Fatalf("%d routes, want %d", len(rep.Routes), len(wantRoutes))
	}
	for _, rr := range rep.Routes {
		if rr.Requests != wantReqs[rr.Route] || !reflect.DeepEqual(rr.StatusCodes, wantRoutes[rr.Route]) {
			t.Errorf("route %s: %d requests %v, want %d %v", rr.Route, rr.Requests, rr.StatusCodes, wantReqs[rr.Route], wantRoutes[rr.Route])
		}
	}
	var none Report
	newStats().fill(&none)
	if none.StatusCodes == nil || len(none.StatusCodes) != 0 {
		t.Errorf("no results: status codes %v, want an empty map", none.StatusCodes)
	}
}
