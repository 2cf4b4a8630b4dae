package live

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Request is one finished request, as the metrics see it.
type Request struct {
	// Route names the request's route, e.g. "GET /api/items/{id}"; keep
	// it low in cardinality (past MaxRoutes distinct names, "other" is
	// used).
	Route string
	// Status is the response status, 0 when there was no response.
	Status int
	// Err is the error kind when there was no response ("connect",
	// "timeout", "reset", "other"), "" otherwise.
	Err string
	// FromDue and FromSend are the latency from the due time and from the
	// send time; Lag is send time - due time.
	FromDue, FromSend, Lag time.Duration
}

// NewRequest builds a Request from a request's route, due, send and
// finish times, status (0 for none) and error kind ("" for none).
func NewRequest(route string, due, sent, done time.Time, status int, kind string) Request {
	r := Request{Route: route, Status: status, Err: kind, FromDue: done.Sub(due), Lag: sent.Sub(due)}
	if !sent.IsZero() {
		r.FromSend = done.Sub(sent)
	} else {
		r.Lag = done.Sub(due)
	}
	return r
}

// DefaultMaxRoutes bounds the route label.
const DefaultMaxRoutes = 200

// MetricsOption configures Metrics.
type MetricsOption func(*metricsOptions) error

type metricsOptions struct {
	maxRoutes int
	buckets   []float64
}

// WithMaxRoutes sets how many distinct routes get their own label.
func WithMaxRoutes(n int) MetricsOption {
	return func(o *metricsOptions) error {
		if n < 1 {
			return fmt.Errorf("max routes %d: give at least 1", n)
		}
		o.maxRoutes = n
		return nil
	}
}

// WithBuckets sets the latency histograms' upper bounds in seconds.
func WithBuckets(b []float64) MetricsOption {
	return func(o *metricsOptions) error {
		for i := 1; i < len(b); i++ {
			if b[i] <= b[i-1] {
				return errors.New("latency buckets must increase")
			}
		}
		if len(b) == 0 {
			return errors.New("latency buckets: give at least one")
		}
		o.buckets = b
		return nil
	}
}

// Metrics are a replay's Prometheus metrics, in their own registry (never
// the global one), so that two replays in one process, or tests in
// parallel, do not collide. Safe for concurrent use.
//
//	reprise_requests_total{route,status}            counter; status "error" when no response
//	reprise_request_duration_seconds{route,from}    histogram; from="due" or "send"
//	reprise_errors_total{kind}                      counter: connect, timeout, reset, other, 5xx
//	reprise_schedule_lag_seconds                    histogram of send - due
//	reprise_backlog_lag_seconds                     gauge: lateness of the oldest due, unsent request
//	reprise_in_flight                               gauge
//	reprise_stage, reprise_speed                    gauges: ramp stage (from 1) and speed in force
//	reprise_stage_info{stage}                       1 for the stage in force
//	reprise_aborted                                 1 once a guard tripped or the run was interrupted
//	reprise_aborted_info{rule}                      1 for what stopped the run
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	errs      *prometheus.CounterVec
	lag       prometheus.Histogram
	backlog   prometheus.Gauge
	inFlight  prometheus.Gauge
	stage     prometheus.Gauge
	speed     prometheus.Gauge
	stageInfo *prometheus.GaugeVec
	aborted   prometheus.Gauge
	abortInfo *prometheus.GaugeVec

	mu        sync.Mutex
	routes    map[string]struct{}
	maxRoutes int
	lastStage string
}

// NewMetrics registers a replay's metrics in a new registry.
func NewMetrics(opts ...MetricsOption) (*Metrics, error) {
	o := metricsOptions{maxRoutes: DefaultMaxRoutes,
		buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	m := &Metrics{reg: prometheus.NewRegistry(), routes: map[string]struct{}{}, maxRoutes: o.maxRoutes}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reprise_requests_total",
		Help: "Requests finished, by route and status (\"error\" when there was no response)."}, []string{"route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "reprise_request_duration_seconds",
		Help:    "Request latency, from the due time (from=\"due\", free of coordinated omission) and from the send time (from=\"send\").",
		Buckets: o.buckets}, []string{"route", "from"})
	m.errs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reprise_errors_total",
		Help: "Requests that failed, by kind: connect, timeout, reset, other, or 5xx."}, []string{"kind"})
	m.lag = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "reprise_schedule_lag_seconds",
		Help: "How late requests were sent behind their due time.", Buckets: o.buckets})
	m.backlog = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reprise_backlog_lag_seconds",
		Help: "How late the oldest request that is due but not yet sent is."})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reprise_in_flight", Help: "Requests sent and not yet finished."})
	m.stage = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reprise_stage", Help: "The ramp stage in force, from 1 (0 without a ramp)."})
	m.speed = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reprise_speed", Help: "The speed multiplier in force."})
	m.stageInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reprise_stage_info", Help: "1 for the ramp stage in force, by its name."}, []string{"stage"})
	m.aborted = prometheus.NewGauge(prometheus.GaugeOpts{Name: "reprise_aborted", Help: "1 once the replay is stopping early (a guard tripped, or it was interrupted)."})
	m.abortInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "reprise_aborted_info", Help: "1 for the rule (or \"interrupt\") that stopped the replay."}, []string{"rule"})
	m.reg.MustRegister(m.requests, m.latency, m.errs, m.lag, m.backlog, m.inFlight, m.stage, m.speed, m.stageInfo, m.aborted, m.abortInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m, nil
}

// Registry returns the metrics' own registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func (m *Metrics) route(r string) string {
	if r == "" {
		r = "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.routes[r]; ok {
		return r
	}
	if len(m.routes) >= m.maxRoutes {
		return "other"
	}
	m.routes[r] = struct{}{}
	return r
}

// Observe records one finished request.
func (m *Metrics) Observe(r Request) {
	route := m.route(r.Route)
	status := "error"
	if r.Status > 0 {
		status = strconv.Itoa(r.Status)
	}
	m.requests.WithLabelValues(route, status).Inc()
	m.latency.WithLabelValues(route, "due").Observe(r.FromDue.Seconds())
	if r.Status > 0 {
		m.latency.WithLabelValues(route, "send").Observe(r.FromSend.Seconds())
	}
	m.lag.Observe(r.Lag.Seconds())
	switch {
	case r.Err != "":
		m.errs.WithLabelValues(r.Err).Inc()
	case r.Status == 0:
		m.errs.WithLabelValues("other").Inc()
	case r.Status >= 500:
		m.errs.WithLabelValues("5xx").Inc()
	}
}

// SetInFlight sets the number of requests in flight.
func (m *Metrics) SetInFlight(n int) { m.inFlight.Set(float64(n)) }

// SetBacklog sets the lateness of the oldest due, unsent request.
func (m *Metrics) SetBacklog(d time.Duration) { m.backlog.Set(d.Seconds()) }

// SetStage sets the ramp stage in force (index from 1, 0 without a ramp),
// its name and the speed.
func (m *Metrics) SetStage(index int, name string, speed float64) {
	m.stage.Set(float64(index))
	m.speed.Set(speed)
	m.mu.Lock()
	defer m.mu.Unlock()
	if name != m.lastStage {
		if m.lastStage != "" {
			m.stageInfo.WithLabelValues(m.lastStage).Set(0)
		}
		if name != "" {
			m.stageInfo.WithLabelValues(name).Set(1)
		}
		m.lastStage = name
	}
}

// SetAborted marks the run as stopping early because of rule (a guard's
// rule text, or "interrupt").
func (m *Metrics) SetAborted(rule string) {
	m.aborted.Set(1)
	m.abortInfo.WithLabelValues(rule).Set(1)
}

// Server serves metrics on --metrics-addr until ctx ends.
type Server struct {
	Addr net.Addr // where it listens (the port filled in)
	srv  *http.Server
	done chan error
}

// Serve listens on addr and serves h at /metrics until ctx ends. An addr
// without a host (":9090") listens on 127.0.0.1 only: metrics stay on the
// machine unless a host is named. It returns once listening.
func Serve(ctx context.Context, addr string, h http.Handler) (*Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: write it like 127.0.0.1:9090 or :9090", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	s := &Server{Addr: ln.Addr(), done: make(chan error, 1),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
	}()
	return s, nil
}

// Wait returns when the server has stopped, with its error if any.
func (s *Server) Wait() error { return <-s.done }
