package replay

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/replay/schedule"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
)

// item is one request to schedule: an exchange for one clone of a session.
type item struct {
	ex     *session.Exchange
	key    string // session key, "S" or "S#k"
	base   string // the recording's session key
	clone  int
	offset time.Duration // due position in the recording (clone shift included)
	route  string        // see Route
	start  int64         // recorded request start, Unix ns
	end    int64         // recorded response end, Unix ns; 0 when it never completed
	seq    uint64
	size   int64 // what it costs the look-ahead window (see itemSize)
}

// itemEx is an item and its exchange in one allocation, when the source
// decodes into an exchange the feeder allocates (see session.ReadInto):
// one allocation a request fewer, and the two side by side in memory for
// the goroutines that read them after the window.
type itemEx struct {
	it item
	ex session.Exchange
}

// spanInfo is what the feeder learned of the recording's extent.
type spanInfo struct {
	any         bool
	first, last time.Duration // offsets of the first and last base request
	lastClone   time.Duration // offset of the last request, clone shift included
	memory      MemoryReport  // what the window's bounds and the plan did
}

// itemHeap orders items by offset, then by the order they were read. Its
// push and pop are container/heap's algorithms without the interface
// calls, which cost the feeder a twentieth of a request at --speed max.
type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) less(i, j int) bool {
	if h[i].offset != h[j].offset {
		return h[i].offset < h[j].offset
	}
	return h[i].seq < h[j].seq
}

func (h *itemHeap) push(it *item) {
	*h = append(*h, it)
	s := *h
	for j := len(s) - 1; j > 0; {
		i := (j - 1) / 2
		if !s.less(j, i) {
			break
		}
		s[i], s[j] = s[j], s[i]
		j = i
	}
}

func (h *itemHeap) pop() *item {
	s := *h
	n := len(s) - 1
	top := s[0]
	s[0] = s[n]
	s[n] = nil
	s = s[:n]
	for i := 0; ; {
		j := 2*i + 1
		if j >= n {
			break
		}
		if k := j + 1; k < n && s.less(k, j) {
			j = k
		}
		if !s.less(j, i) {
			break
		}
		s[i], s[j] = s[j], s[i]
		i = j
	}
	*h = s
	return top
}

// feeder is the state of one feed: the look-ahead window, the clones
// waiting for their shifted offsets and what the filters have seen.
type feeder struct {
	r         *Replayer
	ctx       context.Context
	out       *handoff[*item]
	window    lookahead // base items by recorded start (offset holds start - origin0)
	winBytes  int64     // the window's items' sizes
	pastTo    int       // exchanges read that started after the range's end
	routes    routeCache
	connKeys  [256]connKey // see sessionKey
	clones    itemHeap     // items ready but for clones' shift
	seq       uint64
	lastRaw   int64 // latest start read
	origin    int64
	haveOrig  bool
	sampled   map[string]bool
	firstOff  map[string]time.Duration // under a scale ramp: each session's first offset
	start0    time.Duration            // offset of the first request kept
	scaleRamp schedule.ScaleRamp       // nil without a scale ramp
	span      spanInfo
}

// feed reads src, filters, sorts by start time through the look-ahead
// window, makes clones and sends items in offset order. It closes out.
func (r *Replayer) feed(ctx context.Context, src session.Source, out *handoff[*item]) (srcErr error, span spanInfo) {
	defer out.close()
	f := &feeder{r: r, ctx: ctx, out: out, origin: r.o.origin, haveOrig: r.o.origin != 0,
		sampled: make(map[string]bool), firstOff: make(map[string]time.Duration), routes: make(routeCache)}
	if r.o.scaleRamp != nil {
		f.scaleRamp = r.o.scaleRamp
	}
	if f.filterBodies(src) {
		defer session.FilterResponseBodies(src, nil)
	}
	readInto, direct := session.ReadInto(src)
	for {
		if ctx.Err() != nil || r.stopped() {
			return nil, f.span
		}
		var ex *session.Exchange
		var ie *itemEx
		var err error
		if direct {
			ie = new(itemEx)
			if err = readInto(&ie.ex); err == nil {
				ex = &ie.ex
			}
		} else {
			ex, err = src.Next()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			srcErr = err
			break
		}
		r.st.read.Add(1)
		if f.pastRange(ex) {
			break
		}
		if !r.keep(ex) {
			continue
		}
		if !f.read(ex, ie) {
			return nil, f.span
		}
	}
	for f.window.Len() > 0 {
		if !f.release(f.pop()) {
			return srcErr, f.span
		}
	}
	for f.clones.Len() > 0 {
		if !f.send(f.clones.pop()) {
			return srcErr, f.span
		}
	}
	return srcErr, f.span
}

// filterBodies asks src to leave out, as it reads them, the recorded
// response bodies that slim would drop, so that they are never copied
// out of the recording: at 30k requests a second of 5 KB bodies, that is
// 150 MB a second the collector no longer has to chase. It reports
// whether src does (a source that cannot leaves them to slim). keep runs
// inside src.Next, on the feeder's goroutine, and shares its route cache.
func (f *feeder) filterBodies(src session.Source) bool {
	x := f.r.planIndex()
	if x == nil {
		return false
	}
	return session.FilterResponseBodies(src, func(ex *session.Exchange) bool {
		if ex.Flags&session.FlagNoResponse != 0 || x.NeedsBody(f.routes.get(ex.Request.Method, ex.Request.Target)) {
			return true
		}
		f.span.memory.BodiesDropped++
		return false
	})
}

// read puts a kept exchange in the window and releases what the window
// has sorted, or what its bounds in exchanges and bytes no longer let it
// hold; ie, when not nil, holds ex and the item to use. It returns false
// when the replay stopped.
func (f *feeder) read(ex *session.Exchange, ie *itemEx) bool {
	var it *item
	if ie != nil {
		it = &ie.it
	} else {
		it = new(item)
	}
	*it = item{ex: ex, base: f.sessionKey(ex), start: ex.Timing.RequestStart, end: schedule.RecordedEnd(ex), seq: f.seq}
	f.seq++
	it.key = it.base
	it.route = f.routes.get(ex.Request.Method, ex.Request.Target)
	if f.r.slim(ex, it.route) {
		f.span.memory.BodiesDropped++
	}
	it.size = itemSize(ex)
	if it.start == 0 { // no timing: place it at the latest start read
		it.start = f.lastRaw
		if it.end == 0 && ex.Flags&session.FlagNoResponse == 0 {
			it.end = it.start
		}
	}
	if it.start > f.lastRaw {
		f.lastRaw = it.start
	}
	it.offset = time.Duration(it.start)
	f.window.push(it)
	f.winBytes += it.size
	o, mem := &f.r.o, &f.span.memory
	mem.PeakExchanges = max(mem.PeakExchanges, f.window.Len())
	mem.PeakBytes = max(mem.PeakBytes, f.winBytes)
	for f.window.Len() > 0 {
		switch {
		case time.Duration(f.lastRaw)-f.window.peek().offset > o.window:
		case f.window.Len() > o.windowExchanges:
			mem.ByExchanges++
		case f.winBytes > o.windowBytes && f.window.Len() > 1:
			mem.ByBytes++
		default:
			return true
		}
		if !f.release(f.pop()) {
			return false
		}
	}
	return true
}

// connKey is a connection's session key, as schedule.SessionKey spells
// it for an exchange without a session.
type connKey struct {
	id  uint64
	key string
}

// sessionKey is schedule.SessionKey, keeping the key of the latest
// connections in a small table indexed by connection ID: an exchange
// without a session (one session per connection) cost a string
// allocation each.
func (f *feeder) sessionKey(ex *session.Exchange) string {
	if ex.Session != "" {
		return ex.Session
	}
	e := &f.connKeys[ex.Conn.ID%uint64(len(f.connKeys))]
	if e.key == "" || e.id != ex.Conn.ID {
		e.id, e.key = ex.Conn.ID, schedule.SessionKey(ex)
	}
	return e.key
}

// pop takes the earliest item out of the window.
func (f *feeder) pop() *item {
	it := f.window.pop()
	f.winBytes -= it.size
	return it
}

// pastRange reports whether the recording has gone past the range's end
// (WithRange) by more than the window holds, in time or in exchanges:
// nothing read from there on can start within the range, so reading
// stops instead of decoding the rest of the recording to drop it.
func (f *feeder) pastRange(ex *session.Exchange) bool {
	o := &f.r.o
	if o.to == 0 || !f.haveOrig || time.Duration(ex.Timing.RequestStart-f.origin) <= o.to {
		return false
	}
	f.pastTo++
	return time.Duration(ex.Timing.RequestStart-f.origin) > o.to+o.window || f.pastTo > o.windowExchanges
}

// send hands an item to the dispatcher.
func (f *feeder) send(it *item) bool {
	if !f.out.put(it, f.r.stopCh, f.ctx.Done()) {
		return false
	}
	f.r.st.scheduled.Add(1)
	return true
}

// drop counts an exchange a filter left out.
func (f *feeder) drop(n *uint64) {
	f.r.st.mu.Lock()
	*n++
	f.r.st.mu.Unlock()
}

// release moves the earliest window item through the range and session
// filters into the clone heap, then sends what is due.
func (f *feeder) release(it *item) bool {
	o := &f.r.o
	if !f.haveOrig {
		f.origin, f.haveOrig = it.start, true
	}
	off := time.Duration(it.start - f.origin)
	if off < 0 { // came later than the window could sort: due at once
		off = 0
	}
	if off < o.from || (o.to != 0 && off > o.to) {
		f.drop(&f.r.st.filtered.ByRange)
		return true
	}
	if o.sessions > 0 && !f.sampled[it.base] {
		if len(f.sampled) >= o.sessions {
			f.drop(&f.r.st.filtered.BySessions)
			return true
		}
		f.sampled[it.base] = true
	}
	sp := &f.span
	if !sp.any || off < sp.first {
		sp.first = off
	}
	if !sp.any || off > sp.last {
		sp.last = off
	}
	if !sp.any {
		// The replay starts with the first request kept, not with the
		// recording's start: an idle lead-in is not waited out.
		f.start0 = off
	}
	sp.any = true
	off -= f.start0
	f.clone(it, off)
	for f.clones.Len() > 0 && f.clones[0].offset <= off {
		if !f.send(f.clones.pop()) {
			return false
		}
	}
	return true
}

// clone puts the clones of it that take part into the clone heap.
func (f *feeder) clone(it *item, off time.Duration) {
	o := &f.r.o
	first, seen := f.firstOff[it.base]
	if f.scaleRamp != nil && !seen {
		first = off
		f.firstOff[it.base] = off
	}
	for k := 0; k < o.scale; k++ {
		if !o.shard.Owns(cloneKey(it.base, k, o.scale)) { // issue 18: another shard's clone
			f.drop(&f.r.st.filtered.ByShard)
			continue
		}
		if !schedule.CloneActive(o.pacer, f.scaleRamp, first, k, o.stagger) {
			f.drop(&f.r.st.filtered.ByScaleRamp)
			continue
		}
		c := it // the window is done with it: clone 0 reuses it
		if k > 0 {
			cp := *it
			c = &cp
		}
		c.clone = k
		c.offset = schedule.CloneOffset(off, k, o.stagger)
		c.key = cloneKey(it.base, k, o.scale)
		c.seq = f.seq
		f.seq++
		f.clones.push(c)
		if c.offset > f.span.lastClone {
			f.span.lastClone = c.offset
		}
	}
}

// keep applies the method and path filters, counting what they drop.
func (r *Replayer) keep(ex *session.Exchange) bool {
	req := &ex.Request
	var drop *uint64
	switch {
	case req.Method == "" || req.Target == "" || req.Target == "*":
		drop = &r.st.filtered.Unsendable
	case http2.NeedsHTTP2(req) && !r.useH2(ex):
		drop = &r.st.filtered.NeedsHTTP2
	case r.o.methods != nil && !r.o.methods[strings.ToUpper(req.Method)]:
		drop = &r.st.filtered.ByMethod
	case !r.pathKept(req.Target):
		drop = &r.st.filtered.ByPath
	}
	if drop == nil {
		return true
	}
	r.st.mu.Lock()
	*drop++
	r.st.mu.Unlock()
	return false
}

func (r *Replayer) pathKept(target string) bool {
	for _, re := range r.o.exclude {
		if re.MatchString(target) {
			return false
		}
	}
	if len(r.o.include) == 0 {
		return true
	}
	for _, re := range r.o.include {
		if re.MatchString(target) {
			return true
		}
	}
	return false
}
