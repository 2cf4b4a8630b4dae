package replay

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-tool/reprise/session"
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
}

// spanInfo is what the feeder learned of the recording's extent.
type spanInfo struct {
	any         bool
	first, last time.Duration // offsets of the first and last base request
	lastClone   time.Duration // offset of the last request, clone shift included
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

// feed reads src, filters, sorts by start time through the look-ahead
// window, makes clones and sends items in offset order. It closes out.
func (r *Replayer) feed(ctx context.Context, src session.Source, out *handoff[*item]) (srcErr error, span spanInfo) {
	defer out.close()
	var (
		window   lookahead // base items by recorded start (offset holds start - origin0)
		clones   itemHeap  // items ready but for clones' shift
		seq      uint64
		lastRaw  int64 // latest start read
		origin   = r.o.origin
		haveOrig = origin != 0
		sampled  = make(map[string]bool)
		firstOff = make(map[string]time.Duration) // under a scale ramp: each session's first offset
		start0   time.Duration                    // offset of the first request kept
		eof      bool
	)
	send := func(it *item) bool {
		if !out.put(it, r.stopCh, ctx.Done()) {
			return false
		}
		r.st.scheduled.Add(1)
		return true
	}
	// release moves the earliest window item through the range and
	// session filters into the clone heap, then sends what is due.
	release := func(it *item) bool {
		if !haveOrig {
			origin, haveOrig = it.start, true
		}
		off := time.Duration(it.start - origin)
		if off < 0 { // came later than the window could sort: due at once
			off = 0
		}
		if off < r.o.from || (r.o.to != 0 && off > r.o.to) {
			r.st.mu.Lock()
			r.st.filtered.ByRange++
			r.st.mu.Unlock()
			return true
		}
		if r.o.sessions > 0 && !sampled[it.base] {
			if len(sampled) >= r.o.sessions {
				r.st.mu.Lock()
				r.st.filtered.BySessions++
				r.st.mu.Unlock()
				return true
			}
			sampled[it.base] = true
		}
		if !span.any || off < span.first {
			span.first = off
		}
		if !span.any || off > span.last {
			span.last = off
		}
		if !span.any {
			// The replay starts with the first request kept, not with the
			// recording's start: an idle lead-in is not waited out.
			start0 = off
		}
		span.any = true
		off -= start0
		first, seen := firstOff[it.base]
		if r.o.scaleRamp != nil && !seen {
			first = off
			firstOff[it.base] = off
		}
		for k := 0; k < r.o.scale; k++ {
			if k > 0 && r.o.scaleRamp != nil {
				// Clone k takes part only if its session begins once the
				// ramp has reached it: whole sessions, never cut.
				from, ok := r.o.scaleRamp.ActiveFrom(k)
				if !ok || r.o.pacer.Due(first+time.Duration(k)*r.o.stagger) < from {
					r.st.mu.Lock()
					r.st.filtered.ByScaleRamp++
					r.st.mu.Unlock()
					continue
				}
			}
			c := it // the window is done with it: clone 0 reuses it
			if k > 0 {
				cp := *it
				c = &cp
			}
			c.clone = k
			c.offset = off + time.Duration(k)*r.o.stagger
			if r.o.scale > 1 {
				c.key = fmt.Sprintf("%s#%d", it.base, k)
			}
			c.seq = seq
			seq++
			clones.push(c)
			if c.offset > span.lastClone {
				span.lastClone = c.offset
			}
		}
		for clones.Len() > 0 && clones[0].offset <= off {
			if !send(clones.pop()) {
				return false
			}
		}
		return true
	}

	for !eof {
		if ctx.Err() != nil || r.stopped() {
			return nil, span
		}
		ex, err := src.Next()
		if err == io.EOF {
			eof = true
			break
		}
		if err != nil {
			srcErr = err
			break
		}
		r.st.read.Add(1)
		if !r.keep(ex) {
			continue
		}
		it := &item{ex: ex, base: sessionKey(ex), start: ex.Timing.RequestStart, end: recordedEnd(ex), seq: seq}
		seq++
		it.key = it.base
		if it.start == 0 { // no timing: place it at the latest start read
			it.start = lastRaw
			if it.end == 0 && ex.Flags&session.FlagNoResponse == 0 {
				it.end = it.start
			}
		}
		if it.start > lastRaw {
			lastRaw = it.start
		}
		it.offset = time.Duration(it.start)
		window.push(it)
		for window.Len() > 0 && (time.Duration(lastRaw)-window.peek().offset > r.o.window || window.Len() > maxWindowItems) {
			if !release(window.pop()) {
				return nil, span
			}
		}
	}
	for window.Len() > 0 {
		if !release(window.pop()) {
			return srcErr, span
		}
	}
	for clones.Len() > 0 {
		if !send(clones.pop()) {
			return srcErr, span
		}
	}
	return srcErr, span
}

// keep applies the method and path filters, counting what they drop.
func (r *Replayer) keep(ex *session.Exchange) bool {
	req := &ex.Request
	var drop *uint64
	switch {
	case req.Method == "" || req.Target == "" || req.Target == "*":
		drop = &r.st.filtered.Unsendable
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

// sessionKey is the exchange's session, or its connection when the
// identity tracker left none.
func sessionKey(ex *session.Exchange) string {
	if ex.Session != "" {
		return ex.Session
	}
	return "conn:" + strconv.FormatUint(ex.Conn.ID, 10)
}

// recordedEnd is when the recorded exchange completed, 0 if it never did.
func recordedEnd(ex *session.Exchange) int64 {
	if ex.Flags&session.FlagNoResponse != 0 {
		return 0
	}
	t := ex.Timing
	for _, v := range []int64{t.ResponseEnd, t.ResponseStart, t.RequestEnd, t.RequestStart} {
		if v != 0 {
			return v
		}
	}
	return 0
}
