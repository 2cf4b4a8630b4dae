package httpstream

import (
	"bytes"
	"errors"
	"strings"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
	"github.com/reprise-tool/reprise/session/http2"
)

// Message start kinds found by findStart.
const (
	startNone     = 0
	startRequest  = 1
	startResponse = 2
	startHTTP2    = 4 // the HTTP/2 connection preface, looked for with requests
)

// readHead reads a message head on direction i and returns the bytes of
// data consumed.
func (c *Conn) readHead(i int, data []byte, ts int64) int {
	h := &c.d[i]
	if len(h.buf) == 0 {
		// Empty lines between messages are ignored (RFC 9112 section 2.2).
		n := 0
		for n < len(data) && (data[n] == '\r' || data[n] == '\n') {
			n++
		}
		if n > 0 {
			return n
		}
		h.bufTs = ts
		if end := headEnd(data, 0); end > 0 {
			c.onHead(i, data[:end], ts, ts)
			return end
		}
		if len(data) > c.cfg.MaxHead {
			c.badHead(i, data, "message head too long")
			return len(data)
		}
		h.buf = append(h.buf, data...)
		return len(data)
	}
	old := len(h.buf)
	h.buf = append(h.buf, data...)
	end := headEnd(h.buf, max(0, old-3))
	if end < 0 {
		if len(h.buf) > c.cfg.MaxHead {
			c.badHead(i, h.buf, "message head too long")
		}
		return len(data)
	}
	head := h.buf[:end]
	h.buf = h.buf[:0]
	c.onHead(i, head, h.bufTs, ts)
	return end - old
}

// headEnd returns the index just past the empty line ending a head in b,
// searching from from, or -1. Bare LF line ends are accepted.
func headEnd(b []byte, from int) int {
	for {
		j := bytes.IndexByte(b[from:], '\n')
		if j < 0 {
			return -1
		}
		j += from
		// j is a line end; is the next line empty?
		k := j + 1
		if k < len(b) && b[k] == '\r' {
			k++
		}
		if k < len(b) && b[k] == '\n' {
			return k + 1
		}
		if k >= len(b) {
			return -1
		}
		from = j + 1
	}
}

// badHead gives up on a head that is not HTTP/1: the direction resyncs on
// the next message start after its first byte.
func (c *Conn) badHead(i int, head []byte, why string) {
	h := &c.d[i]
	rest := append([]byte(nil), head[min(1, len(head)):]...)
	c.lostSync(i, why)
	h.buf = append(h.buf[:0], rest...)
	h.lineStart = false
	c.resync(i, nil, h.lastTs)
}

// resync scans direction i for the start of a message, keeping at most a
// partial line between calls. While the roles are unknown it also decides
// them: the side that sends a request line is the client.
func (c *Conn) resync(i int, data []byte, ts int64) {
	h := &c.d[i]
	if len(h.buf) == 0 {
		h.bufTs = ts
	}
	if len(data) > 0 {
		// Segments often begin at a message boundary even when the bytes
		// before did not end a line (the end of a body): the start of each
		// chunk is a candidate too.
		h.cand = len(h.buf)
		if h.cand == 0 && h.lineStart {
			h.cand = -1
		}
	}
	h.buf = append(h.buf, data...)
	want := startRequest
	if c.client == Unknown {
		want = startRequest | startResponse
	} else if i == 1 {
		want = startResponse
	}
	pos, kind := findStart(h.buf, h.lineStart, want)
	if h.cand >= 0 && (pos < 0 || h.cand < pos) {
		if j := bytes.IndexByte(h.buf[h.cand:], '\n'); j >= 0 {
			if k := startKind(h.buf[h.cand : h.cand+j]); k != startNone && (k&want != 0 || (k == startHTTP2 && want&startRequest != 0)) {
				pos, kind = h.cand, k
			}
		}
	}
	if pos < 0 {
		// Keep only the last, partial line: nothing before it can start a
		// message (but a chunk start inside it still may).
		if j := bytes.LastIndexByte(h.buf, '\n'); j >= 0 {
			n := copy(h.buf, h.buf[j+1:])
			h.buf = h.buf[:n]
			h.lineStart = true
			h.bufTs = ts
			if h.cand -= j + 1; h.cand <= 0 {
				h.cand = -1
			}
		}
		if len(h.buf) > c.cfg.MaxHead {
			h.buf, h.lineStart, h.cand = h.buf[:0], false, -1
		}
		return
	}
	rest := append([]byte(nil), h.buf[pos:]...)
	h.buf = h.buf[:0]
	h.lineStart = true
	h.cand = -1
	if kind == startHTTP2 {
		s := Side(i) // before the roles are known dirs are indexed by side
		if c.client != Unknown {
			s = c.client
		}
		c.switchH2(s, true, nil)
		c.h2.Feed(http2.FromClient, rest, ts)
		return
	}
	if c.client == Unknown {
		s := Side(i) // dirs are still indexed by side
		if kind == startResponse {
			s = 1 - s
		}
		other := 1 - i
		c.setClient(s)
		if c.client == Side1 {
			c.d[0], c.d[1] = c.d[1], c.d[0]
		}
		ni := c.dirOf(Side(i))
		c.d[ni].st = stHead
		c.d[1-ni].st = stResync
		c.feed(ni, rest, ts)
		// What the other side said before the roles were known is scanned
		// again with the right expectation.
		od := c.dirOf(Side(other))
		if !c.closed && c.d[od].st == stResync {
			c.resync(od, nil, c.d[od].bufTs)
		}
		return
	}
	h.st = stHead
	c.feed(i, rest, ts)
}

// findStart returns the position and kind of the first line of b that is
// a complete request line or status line of a kind in want, or -1. A
// position 0 counts only when lineStart is set.
func findStart(b []byte, lineStart bool, want int) (int, int) {
	i := 0
	if !lineStart {
		j := bytes.IndexByte(b, '\n')
		if j < 0 {
			return -1, startNone
		}
		i = j + 1
	}
	for i < len(b) {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, startNone
		}
		if k := startKind(b[i : i+j]); k != startNone && (k&want != 0 || (k == startHTTP2 && want&startRequest != 0)) {
			return i, k
		}
		i += j + 1
	}
	return -1, startNone
}

// startKind says whether line (without its LF) is a request line, a status
// line or the HTTP/2 preface.
func startKind(line []byte) int {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) < 12 {
		return startNone
	}
	if bytes.HasPrefix(line, []byte("HTTP/1.")) {
		if _, _, _, ok := http1.ParseStatusLine(line); ok {
			return startResponse
		}
		return startNone
	}
	if string(line) == "PRI * HTTP/2.0" {
		return startHTTP2
	}
	if _, _, _, ok := http1.ParseRequestLine(line); ok {
		return startRequest
	}
	return startNone
}

// isTLS reports whether b starts with a TLS record header: a content type
// of 20 to 23 (a ClientHello is 22) and protocol version 3.x.
func isTLS(b []byte) bool {
	return len(b) >= 3 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 3 && b[2] <= 4
}

// parseHead parses a whole head (ending in an empty line) into its start
// line, fields and framing. Field strings share one allocation with the
// start line.
func parseHead(head []byte, f *http1.Framing) (start string, hdr session.Headers, warnings []string) {
	start, hdr = http1.ParseHead(string(head), f, func(kind int, _ string) {
		if kind == http1.FoldLine {
			warnings = append(warnings, "obsolete line folding in header field")
		} else {
			warnings = append(warnings, "malformed header line skipped")
		}
	})
	return start, hdr, warnings
}

// framingWarnings warns about what a message's framing tolerated.
func framingWarnings(x *session.Exchange, f *http1.Framing) {
	for _, w := range f.Warnings(nil) {
		warn(x, w)
	}
}

// upgradeOf is the lower-cased Upgrade field of a message whose fields
// ask to switch protocols, or "".
func upgradeOf(hdr session.Headers, f *http1.Framing) string {
	if !f.UpgradeConn && !f.Upgrade {
		return ""
	}
	return strings.ToLower(hdr.Get("Upgrade"))
}

// onHead handles a complete head on direction i that began at startTs and
// ended at endTs.
func (c *Conn) onHead(i int, head []byte, startTs, endTs int64) {
	start, hdr, warns := parseHead(head, &c.framing)
	if i == 0 {
		c.onRequestHead(head, start, hdr, warns, startTs, endTs)
	} else {
		c.onResponseHead(head, start, hdr, warns, startTs, endTs)
	}
}

func (c *Conn) onRequestHead(head []byte, start string, hdr session.Headers, warns []string, startTs, endTs int64) {
	h := &c.d[0]
	if start == "PRI * HTTP/2.0" {
		c.h2FromHead(head, endTs)
		return
	}
	method, target, proto, ok := http1.ParseRequestLine(start)
	if !ok {
		c.badHead(0, head, "not an HTTP/1 request")
		return
	}
	h.resynced = false
	c.started = true
	x := &session.Exchange{
		Conn:    c.info,
		Index:   c.index,
		Request: session.Request{Method: method, Target: target, Proto: proto, Header: hdr},
	}
	c.index++
	x.Timing.RequestStart = startTs
	for _, w := range warns {
		warn(x, w)
	}
	f := &c.framing
	f.HTTP10 = proto == "HTTP/1.0"
	t := &txn{x: x, head: method == "HEAD", connect: method == "CONNECT", upgrade: upgradeOf(hdr, f)}
	c.queue = append(c.queue, t)
	c.ev.RequestStarted(x)
	h.t = t
	b, err := f.RequestBody()
	framingWarnings(x, f)
	switch {
	case errors.Is(err, http1.ErrBadEncoding):
		// A request body must be chunked or counted (RFC 9112 6.3); the
		// server would refuse it, so its length is unknown.
		warn(x, "request with a transfer coding other than chunked")
		c.endMessage(0, endTs)
	case err != nil:
		// Conflicting or malformed: the server would refuse it too.
		warn(x, "invalid or conflicting Content-Length fields")
		c.endMessage(0, endTs)
	case b.Kind == http1.ChunkedBody:
		h.st = stChunkLine
	case b.Kind == http1.LengthBody:
		h.st, h.remain = stBody, b.Length
		if b.Length <= c.cfg.MaxBody {
			x.Request.Body = make([]byte, 0, b.Length)
		}
	default:
		c.endMessage(0, endTs)
	}
	// Bound the requests waiting for responses.
	if len(c.queue)-c.respNext > c.cfg.MaxPending {
		old := c.queue[c.respNext]
		c.respNext++
		c.skipResp++
		old.x.Flags |= session.FlagNoResponse
		warn(old.x, "too many pipelined requests waiting: response not matched")
		old.respDone = true
		c.emitReady()
	}
}

func (c *Conn) onResponseHead(head []byte, start string, hdr session.Headers, warns []string, startTs, endTs int64) {
	h := &c.d[1]
	proto, status, reason, ok := http1.ParseStatusLine(start)
	if !ok {
		c.badHead(1, head, "not an HTTP/1 response")
		return
	}
	if status >= 100 && status < 200 && status != 101 {
		// Interim response (100 Continue, 103 Early Hints): skipped, the
		// final response follows.
		return
	}
	if h.resynced {
		// After lost bytes, a request whose successor started before this
		// response cannot be the one answered: its response was lost.
		for c.respNext+1 < len(c.queue) && c.queue[c.respNext+1].x.Timing.RequestStart <= startTs {
			c.markRespGap()
		}
		h.resynced = false
	}
	var t *txn
	switch {
	case c.skipResp > 0:
		c.skipResp--
	case c.respNext < len(c.queue):
		t = c.queue[c.respNext]
		c.respNext++
	default:
		c.ev.Orphan()
	}
	f := &c.framing
	f.HTTP10 = proto == "HTTP/1.0"
	if t != nil {
		t.respStarted = true
		x := t.x
		x.Response = session.Response{Proto: proto, Status: status, Reason: reason, Header: hdr}
		x.Timing.ResponseStart = startTs
		for _, w := range warns {
			warn(x, w)
		}
		if status == 101 {
			kind := KindUpgrade
			switch {
			case strings.Contains(t.upgrade, "websocket"):
				kind = KindWebSocket
			case strings.Contains(t.upgrade, "h2c"):
				c.upgradeH2(t)
				return
			}
			c.unsupported(kind)
			return
		}
		if t.connect && status >= 200 && status < 300 {
			c.unsupported(KindConnect)
			return
		}
	} else if status == 101 {
		c.unsupported(KindUpgrade)
		return
	}
	h.t = t
	method := ""
	if t != nil {
		method = t.x.Request.Method
	}
	b, err := f.ResponseBody(method, status)
	if t != nil {
		framingWarnings(t.x, f)
		if err != nil {
			warn(t.x, "invalid or conflicting Content-Length fields: read to the close")
		} else if b.Kind == http1.CloseBody && !f.Encoded() && proto == "HTTP/1.1" && !f.Close {
			warn(t.x, "response without Content-Length on keep-alive connection")
		}
	}
	switch {
	case err != nil:
		h.st = stCloseBody
	case b.Kind == http1.ChunkedBody:
		h.st = stChunkLine
	case b.Kind == http1.LengthBody:
		h.st, h.remain = stBody, b.Length
		if t != nil && b.Length <= c.cfg.MaxBody {
			t.x.Response.Body = make([]byte, 0, b.Length)
		}
	case b.Kind == http1.CloseBody:
		h.st = stCloseBody
	default:
		c.endMessage(1, endTs)
	}
}

// readChunkLine reads a chunk-size line, the CRLF after chunk data, or a
// trailer line, and returns the bytes of data consumed.
func (c *Conn) readChunkLine(i int, data []byte, ts int64) int {
	h := &c.d[i]
	j := bytes.IndexByte(data, '\n')
	if j < 0 {
		h.buf = append(h.buf, data...)
		if len(h.buf) > maxLine {
			c.lostSync(i, "chunk framing line too long")
		}
		return len(data)
	}
	line := data[:j]
	if len(h.buf) > 0 {
		h.buf = append(h.buf, line...)
		line = h.buf
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	consumed := j + 1
	switch h.st {
	case stChunkEnd:
		if len(line) != 0 {
			h.buf = h.buf[:0]
			c.lostSync(i, "bad chunked framing")
			return consumed
		}
		h.st = stChunkLine
	case stChunkLine:
		size, err := http1.ParseChunkSize(line)
		if err != nil {
			h.buf = h.buf[:0]
			c.lostSync(i, "bad chunk size")
			return consumed
		}
		if size == 0 {
			h.st = stTrailer
		} else {
			h.st, h.remain = stChunkData, size
			if t := h.t; t != nil {
				// The chunk's bytes come next: room for all of them at
				// once, not an append per segment.
				b, _, _ := c.bodyOf(i, t)
				c.reserve(b, size)
			}
		}
	case stTrailer:
		if len(line) == 0 {
			h.buf = h.buf[:0]
			c.endMessage(i, ts)
			return consumed
		}
		if t := h.t; t != nil {
			c.trailer(i, t, string(line))
		}
	}
	h.buf = h.buf[:0]
	return consumed
}

// trailer keeps a trailer field. The data model has no trailer section, so
// trailer fields are appended after the header fields, with a warning that
// says so: replay may then send them as header fields.
func (c *Conn) trailer(i int, t *txn, line string) {
	name, value, kind := http1.SplitField(line)
	if kind != http1.FieldLine {
		warn(t.x, "malformed trailer line skipped")
		return
	}
	f := session.Header{Name: name, Value: value}
	if i == 0 {
		t.x.Request.Header = append(t.x.Request.Header, f)
	} else {
		t.x.Response.Header = append(t.x.Response.Header, f)
	}
	warn(t.x, "trailer fields appended to the header fields")
}
