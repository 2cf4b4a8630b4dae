package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
)

// Connection modes (see WithConnections).
const (
	// ConnectionsRecorded replays each recorded connection as a
	// connection of its own: a target sees users through their
	// connections (a load balancer spreads connections, servers limit
	// and time out per connection).
	ConnectionsRecorded = "recorded"
	// ConnectionsPooled sends every request on a shared pool of
	// kept-alive connections, for top speed.
	ConnectionsPooled = "pooled"
)

// WithConnections sets how requests map to connections (default
// ConnectionsRecorded). Requests whose recording names no connection, and
// every request when redirects are followed, go on the pool.
func WithConnections(mode string) Option {
	return func(o *options) error {
		switch mode {
		case ConnectionsRecorded, ConnectionsPooled:
			o.connections = mode
			return nil
		}
		return fmt.Errorf("connections %q: want %s or %s", mode, ConnectionsRecorded, ConnectionsPooled)
	}
}

// recorded reports whether the run replays the recorded connections.
func (r *Replayer) recorded() bool {
	return r.wire != nil && r.o.connections != ConnectionsPooled
}

// lineKey names a replayed connection: a recorded one, for one clone.
type lineKey struct {
	id    uint64
	clone int
}

// line is one recorded connection as replayed.
//
// Its requests go on it in the recorded order: each waits for the one
// before it on the line to complete, as the session's order rule makes
// it wait for its session's requests, unless it was pipelined behind it
// (see pipelined); then it waits for that one to be written, writes, and
// reads its response after that one's.
type line struct {
	wl *wire.Line   // an HTTP/1 connection; nil for HTTP/2
	h2 *wire.H2Line // an HTTP/2 connection, whose streams go concurrently

	last    *task         // dispatcher only: the latest request dispatched on it
	lastOff time.Duration // dispatcher only: that request's offset
	// lastBegan is, for the dispatcher alone, when last's recorded
	// response began (see began), taken as last was dispatched: read
	// from last's exchange when the next request comes, it was a miss in
	// the cache or two, a tenth of the dispatcher's time.
	lastBegan int64
	busy      atomic.Int64 // its requests dispatched and not yet done

	mu sync.Mutex // guards its tasks' wrote and wroteC

	life *lineLife // its recorded open and close; nil without a record
}

// onLine puts t on its recorded connection's line, making the line on
// its first request, and orders it behind the line's previous request.
// t's session lock is not held.
func (d *dispatcher) onLine(t *task) {
	it := t.it
	if d.lines == nil {
		return // pooled
	}
	if it.ex.Conn.ID == 0 {
		d.r.unlined.Add(1) // the recording names no connection: the pool takes it
		return
	}
	k := lineKey{it.ex.Conn.ID, it.clone}
	ln := d.lines[k]
	if ln == nil {
		ln = d.newLine(it)
		d.lines[k] = ln
	}
	ln.lastOff = it.offset
	ln.busy.Add(1)
	ln.life.firstRequest()
	t.line = ln
	if ln.h2 != nil {
		// An HTTP/2 connection multiplexes: its streams wait for no
		// other stream of it, only for their due time and their
		// session's order rule.
		return
	}
	t.closeReq, t.closeAfter = closes(it.ex)
	prev, prevBegan := ln.last, ln.lastBegan
	ln.last, ln.lastBegan = t, began(t)
	switch {
	case prev == nil:
	case pipelined(prevBegan, it):
		t.pipe = prev
	case prev.ss == t.ss:
		t.ss.mu.Lock()
		if !slices.Contains(t.deps, &prev.pending) {
			t.deps = append(t.deps, &prev.pending)
		}
		t.ss.mu.Unlock()
	default:
		t.after = prev // a connection shared by two sessions
	}
}

// newLine makes the line of it's recorded connection: HTTP/2 when its
// exchanges go on streams (see useH2).
func (d *dispatcher) newLine(it *item) *line {
	ln := &line{}
	if d.r.useH2(it.ex) {
		ln.h2 = d.r.wire.h2.NewLine()
	} else {
		ln.wl = d.r.wire.NewLine()
	}
	if d.r.o.recConns != nil && !d.max {
		ln.life = d.lifeOf(it)
	}
	return ln
}

// open opens the line's connection ahead of its first request.
func (ln *line) open(ctx context.Context) error {
	if ln.h2 != nil {
		return ln.h2.Open(ctx)
	}
	return ln.wl.Open(ctx)
}

// close closes the line's connection.
func (ln *line) close() {
	ln.life.end()
	if ln.h2 != nil {
		ln.h2.Close()
		return
	}
	ln.wl.Close()
}

// pipelined reports whether it was sent behind the request before it on
// its connection, without waiting for its response: it started before
// that response began (prevBegan, see began). The response's start, not
// its end, is the test: a recording proxy may stamp a response's end
// after the client's next request has arrived.
func pipelined(prevBegan int64, it *item) bool {
	return prevBegan != 0 && it.start < prevBegan
}

// began is when t's recorded response began or, when the recording does
// not know, ended; 0 when it knows neither.
func began(t *task) int64 {
	if b := t.it.ex.Timing.ResponseStart; b != 0 {
		return b
	}
	return t.rec.End
}

// closes says whether the recorded exchange ended its connection: the
// client asked to (closeReq: Connection: close, or HTTP/1.0 without
// keep-alive), or the server did (closeAfter).
func closes(ex *session.Exchange) (closeReq, closeAfter bool) {
	ends := func(proto string, h session.Headers) bool {
		if http1.HasConnection(h) {
			for _, v := range h.Values("Connection") {
				for _, tok := range strings.Split(v, ",") {
					switch strings.ToLower(strings.TrimSpace(tok)) {
					case "close":
						return true
					case "keep-alive":
						return false
					}
				}
			}
		}
		return proto == "HTTP/1.0"
	}
	closeReq = ends(ex.Request.Proto, ex.Request.Header)
	closeAfter = ex.Flags&session.FlagNoResponse == 0 && ends(ex.Response.Proto, ex.Response.Header)
	return closeReq, closeAfter
}

// sendOn sends t's request on its line, reading its response after the
// response of the request it was pipelined behind, if any (do waited
// for that one to be written before taking an in-flight slot, so that a
// request holding a slot never waits for one that waits for a slot).
func (r *Replayer) sendOn(ctx context.Context, t *task, wr *wireRequest, w *worker) (*session.Response, int64, error) {
	ln := t.line
	prev := t.pipe
	t.pipe = nil // see do: a kept pointer would hold the line's history
	wr.Close = t.closeReq
	c, err := ln.wl.Write(ctx, wr)
	ln.written(t)
	if err != nil {
		return nil, 0, err
	}
	if prev != nil {
		wait(prev.ss, &prev.pending, w)
		wr.At = time.Now() // the read begins now, not as it was written (see wire.Request.At)
	}
	resp, n, err := ln.wl.Read(ctx, c, wr)
	if err == nil && t.closeAfter {
		ln.wl.Close() // the server closed it in the recording; this one may not have
	}
	return resp, n, err
}

// waitWritten waits until p is on the wire (or will never be).
func (ln *line) waitWritten(p *task) {
	ln.mu.Lock()
	if p.wrote {
		ln.mu.Unlock()
		return
	}
	if p.wroteC == nil {
		p.wroteC = make(chan struct{})
	}
	ch := p.wroteC
	ln.mu.Unlock()
	<-ch
}

// written marks t written (or given up), waking a request pipelined
// behind it.
func (ln *line) written(t *task) {
	ln.mu.Lock()
	if !t.wrote {
		t.wrote = true
		if t.wroteC != nil {
			close(t.wroteC)
		}
	}
	ln.mu.Unlock()
}

// done is called when t's goroutine is done with it.
func (ln *line) done(t *task) {
	ln.written(t)
	ln.busy.Add(-1)
	ln.requestDone()
}

// maxLines bounds the lines kept: past it, the lines idle longest (in
// recording time) are closed, so that a recording of many short
// connections does not hold a socket for each until the run ends.
const maxLines = 4096

// evictLines closes the lines idle, in recording time, for longer than
// the session idle limit, and the longest idle beyond maxLines: the
// recording gives no close time (see session.Conn), so a connection ends
// after its last exchange when the run ends, or when it has been idle
// that long.
func (d *dispatcher) evictLines(now time.Duration) {
	type idle struct {
		k   lineKey
		off time.Duration
	}
	var idles []idle
	for k, ln := range d.lines {
		if ln.busy.Load() != 0 {
			continue
		}
		if now-ln.lastOff > d.r.o.idle {
			ln.close()
			delete(d.lines, k)
			continue
		}
		if len(d.lines) > maxLines {
			idles = append(idles, idle{k, ln.lastOff})
		}
	}
	if over := len(d.lines) - maxLines; over > 0 {
		slices.SortFunc(idles, func(a, b idle) int { return cmp.Compare(a.off, b.off) })
		for _, i := range idles[:min(over, len(idles))] {
			d.lines[i.k].close()
			delete(d.lines, i.k)
		}
	}
}

// closeLines closes every line: the run is over. The connections still
// open are counted apart (ConnReport.ClosedAtEnd).
func (d *dispatcher) closeLines() {
	if len(d.lines) == 0 {
		return
	}
	before := d.r.clientCloses()
	for k, ln := range d.lines {
		ln.close()
		delete(d.lines, k)
	}
	d.r.lives.atEnd.Add(d.r.clientCloses() - before)
}

// clientCloses counts the connections the client side has closed so far.
func (r *Replayer) clientCloses() uint64 {
	return r.wire.Stats().ClosedByClient + r.wire.h2.Stats().ClosedByClient
}

// prepareWindow is how far into the run, on the run's clock, the lines
// that the first requests open are dialled before the clock starts.
const prepareWindow = 50 * time.Millisecond

// maxPrepared bounds the lines dialled before the clock starts.
const maxPrepared = 256

// prepare takes the first batch of the run before its clock starts
// (the look-ahead window's first fill) and opens the lines of the
// requests due in its first moments, so that the first request is as
// punctual as the thousandth.
func (d *dispatcher) prepare(items *handoff[*item]) (first []*item, more bool) {
	first, more = items.take(nil)
	// The feeder hands items over as it reads them: take until the
	// first moments are all here.
	for more && len(first) < maxPrepared && !d.max && d.r.o.pacer.Due(first[len(first)-1].offset) <= prepareWindow {
		var next []*item
		next, more = items.take(nil)
		first = append(first, next...)
	}
	if d.lines == nil {
		return first, more
	}
	var wg sync.WaitGroup
	seen := make(map[lineKey]bool)
	for _, it := range first {
		if len(seen) >= maxPrepared || (!d.max && d.r.o.pacer.Due(it.offset) > prepareWindow) {
			break
		}
		k := lineKey{it.ex.Conn.ID, it.clone}
		if k.id == 0 || seen[k] {
			continue
		}
		seen[k] = true
		ln := d.newLine(it)
		d.lines[k] = ln
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ln.open(d.ctx) // a failure shows on the first request, which dials again
		}()
	}
	wg.Wait()
	return first, more
}

// ConnReport says how the run used connections.
type ConnReport struct {
	// Mode is "recorded" or "pooled" (see WithConnections).
	Mode           string `json:"mode"`
	Opened         uint64 `json:"opened"`
	Reused         uint64 `json:"reused"` // requests sent on a connection that had carried one
	ClosedByClient uint64 `json:"closed_by_client"`
	ClosedByServer uint64 `json:"closed_by_server"`
	// ClosedAtEnd counts, among ClosedByClient, the recorded connections
	// still open when the run ended, which the replay closed then.
	ClosedAtEnd uint64 `json:"closed_at_end,omitempty"`
	// Connect is the time to open a connection (TCP connect, and the TLS
	// handshake for https).
	Connect Histogram `json:"connect"`
	// InFlightWaits counts the requests that found the --max-inflight cap
	// full and waited for a slot; their wait shows as lag.
	InFlightWaits uint64 `json:"inflight_waits"`
	MaxInFlight   int    `json:"max_inflight"`
	// Pooled counts the requests of a recorded-connections run that went
	// on the pool, their recording naming no connection.
	Pooled uint64 `json:"pooled,omitempty"`
	// HTTP2 counts the HTTP/2 connections among Opened, and StreamWaits
	// the streams that waited under a server's
	// SETTINGS_MAX_CONCURRENT_STREAMS (their wait shows as lag).
	HTTP2       uint64 `json:"http2,omitempty"`
	StreamWaits uint64 `json:"stream_waits,omitempty"`
	// TLS says what the handshakes of an https run cost; nil for http.
	TLS *TLSReport `json:"tls,omitempty"`
	// Life says how the recorded opens and closes were followed; nil
	// when the recording has no connection records (before format 1.2).
	Life *LifeReport `json:"life,omitempty"`
}

// connReport makes the run's ConnReport.
func (r *Replayer) connReport() *ConnReport {
	cr := &ConnReport{Mode: ConnectionsPooled, InFlightWaits: r.flightWaits.Load(), MaxInFlight: r.o.maxInFlight, Pooled: r.unlined.Load()}
	if r.recorded() {
		cr.Mode = ConnectionsRecorded
	}
	if r.wire == nil {
		return cr
	}
	s, s2 := r.wire.Stats(), r.wire.h2.Stats()
	cr.Opened, cr.Reused = s.Opened+s2.Opened, s.Reused
	cr.ClosedByClient, cr.ClosedByServer = s.ClosedByClient+s2.ClosedByClient, s.ClosedByServer+s2.ClosedByServer
	cr.HTTP2, cr.StreamWaits = s2.Opened, s2.ConcurrencyWaits
	h := newHist()
	for _, c := range append(s.Connect, s2.Connect...) {
		h.record(c)
	}
	cr.Connect = h.summary(false)
	cr.TLS = tlsReport(s.TLS, s2.TLS)
	cr.Life = r.lifeReport()
	cr.ClosedAtEnd = r.lives.atEnd.Load()
	return cr
}

// summary writes the connection lines of the summary.
func (c *ConnReport) summary(b *strings.Builder) {
	if c == nil {
		return
	}
	atEnd := ""
	if c.ClosedAtEnd > 0 {
		atEnd = fmt.Sprintf(" (%d as the run ended)", c.ClosedAtEnd)
	}
	fmt.Fprintf(b, "  connections  %s: %d opened, %d requests reused one, closed %d by the client%s and %d by the server; connect p50 %s p99 %s max %s\n",
		c.Mode, c.Opened, c.Reused, c.ClosedByClient, atEnd, c.ClosedByServer, FormatMS(c.Connect.P50), FormatMS(c.Connect.P99), FormatMS(c.Connect.Max))
	c.TLS.summary(b)
	c.Life.summary(b)
	if c.HTTP2 > 0 {
		fmt.Fprintf(b, "  connections  %d of them HTTP/2; %d streams waited for the server's concurrency limit\n", c.HTTP2, c.StreamWaits)
	}
	if c.Pooled > 0 {
		fmt.Fprintf(b, "  connections  %d requests went on the pool: their recording names no connection\n", c.Pooled)
	}
	if c.InFlightWaits > 0 {
		fmt.Fprintf(b, "  max-inflight %d bound: %d requests waited for a slot (counted in lag)\n", c.MaxInFlight, c.InFlightWaits)
	}
}

// mergeConnections sums the shards' connection figures for MergeReports:
// counts add up; the connect latency's percentiles are the highest
// shard's, an upper bound, as a shard keeps no full histogram of them.
func mergeConnections(reps []*Report) *ConnReport {
	var m *ConnReport
	for _, r := range reps {
		c := r.Connections
		if c == nil {
			continue
		}
		if m == nil {
			m = &ConnReport{Mode: c.Mode, MaxInFlight: c.MaxInFlight}
		}
		m.Opened += c.Opened
		m.Reused += c.Reused
		m.ClosedByClient += c.ClosedByClient
		m.ClosedByServer += c.ClosedByServer
		m.ClosedAtEnd += c.ClosedAtEnd
		m.InFlightWaits += c.InFlightWaits
		m.Pooled += c.Pooled
		m.HTTP2 += c.HTTP2
		m.StreamWaits += c.StreamWaits
		m.MaxInFlight = max(m.MaxInFlight, c.MaxInFlight)
		mergeUpper(&m.Connect, c.Connect)
		m.TLS = mergeTLS(m.TLS, c.TLS)
		m.Life = mergeLife(m.Life, c.Life)
	}
	return m
}

// mergeUpper adds s, one shard's histogram summary with no HDR, into h:
// counts add up, the mean is weighted, and the percentiles are the
// highest shard's, an upper bound.
func mergeUpper(h *Histogram, s Histogram) {
	if s.Count == 0 {
		return
	}
	if h.Count == 0 || s.Min < h.Min {
		h.Min = s.Min
	}
	h.Mean = (h.Mean*float64(h.Count) + s.Mean*float64(s.Count)) / float64(h.Count+s.Count)
	h.Count += s.Count
	h.P50, h.P90, h.P99, h.P999, h.Max = max(h.P50, s.P50), max(h.P90, s.P90), max(h.P99, s.P99), max(h.P999, s.P999), max(h.Max, s.Max)
}
