package httpstream

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/reprise-tool/reprise/session"
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
		c.unsupported(KindHTTP2)
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
		if _, _, _, ok := parseStatusLine(string(line)); ok {
			return startResponse
		}
		return startNone
	}
	if string(line) == "PRI * HTTP/2.0" {
		return startHTTP2
	}
	if _, _, _, ok := parseRequestLine(string(line)); ok {
		return startRequest
	}
	return startNone
}

// isTLS reports whether b starts with a TLS record header: a content type
// of 20 to 23 (a ClientHello is 22) and protocol version 3.x.
func isTLS(b []byte) bool {
	return len(b) >= 3 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 3 && b[2] <= 4
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// parseRequestLine splits "METHOD target HTTP/1.x".
func parseRequestLine(l string) (method, target, proto string, ok bool) {
	sp1 := strings.IndexByte(l, ' ')
	if sp1 <= 0 || sp1 > 32 {
		return "", "", "", false
	}
	method = l[:sp1]
	rest := l[sp1+1:]
	sp2 := strings.LastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return "", "", "", false
	}
	target, proto = rest[:sp2], rest[sp2+1:]
	if !isToken(method) || !validProto(proto) {
		return "", "", "", false
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] == 0x7f {
			return "", "", "", false
		}
	}
	return method, target, proto, true
}

// parseStatusLine splits "HTTP/1.x 200 Reason".
func parseStatusLine(l string) (proto string, status int, reason string, ok bool) {
	if len(l) < 12 || l[8] != ' ' {
		return "", 0, "", false
	}
	proto = l[:8]
	if !validProto(proto) {
		return "", 0, "", false
	}
	code := l[9:12]
	for i := 0; i < 3; i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", 0, "", false
		}
	}
	status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if status < 100 {
		return "", 0, "", false
	}
	if len(l) > 12 {
		if l[12] != ' ' {
			return "", 0, "", false
		}
		reason = l[13:]
	}
	return proto, status, reason, true
}

func validProto(p string) bool {
	return len(p) == 8 && p[:7] == "HTTP/1." && p[7] >= '0' && p[7] <= '9'
}

// parseHead parses a whole head (ending in an empty line) into its start
// line and fields. Field strings share one allocation with the start line.
func parseHead(head []byte) (start string, hdr session.Headers, warnings []string) {
	s := string(head)
	nl := strings.IndexByte(s, '\n')
	start = strings.TrimSuffix(s[:nl], "\r")
	s = s[nl+1:]
	hdr = make(session.Headers, 0, strings.Count(s, "\n"))
	for len(s) > 0 {
		nl = strings.IndexByte(s, '\n')
		if nl < 0 {
			nl = len(s)
		}
		line := strings.TrimSuffix(s[:nl], "\r")
		s = s[min(nl+1, len(s)):]
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold: a continuation of the previous field.
			if len(hdr) > 0 {
				hdr[len(hdr)-1].Value += " " + strings.TrimSpace(line)
			}
			warnings = append(warnings, "obsolete line folding in header field")
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			warnings = append(warnings, "malformed header line skipped")
			continue
		}
		hdr = append(hdr, session.Header{Name: line[:colon], Value: strings.Trim(line[colon+1:], " \t")})
	}
	return start, hdr, warnings
}

// framing is what the header fields say about the body.
type framing struct {
	chunked   bool  // Transfer-Encoding ends in chunked
	otherTE   bool  // Transfer-Encoding without chunked last
	length    int64 // Content-Length, -1 if absent
	badLength bool
	close     bool   // Connection: close
	keepAlive bool   // Connection: keep-alive
	upgrade   string // lower-cased Upgrade field
	hasUpConn bool   // Connection includes upgrade
}

func framingOf(hdr session.Headers) framing {
	f := framing{length: -1}
	for _, fld := range hdr {
		switch {
		case strings.EqualFold(fld.Name, "Content-Length"):
			n, err := strconv.ParseInt(strings.TrimSpace(fld.Value), 10, 64)
			if err != nil || n < 0 || (f.length >= 0 && f.length != n) {
				f.badLength = true
				continue
			}
			f.length = n
		case strings.EqualFold(fld.Name, "Transfer-Encoding"):
			v := strings.ToLower(strings.TrimSpace(fld.Value))
			last := v
			if k := strings.LastIndexByte(v, ','); k >= 0 {
				last = strings.TrimSpace(v[k+1:])
			}
			if last == "chunked" {
				f.chunked, f.otherTE = true, false
			} else if v != "" {
				f.chunked, f.otherTE = false, true
			}
		case strings.EqualFold(fld.Name, "Connection"):
			for _, tok := range strings.Split(fld.Value, ",") {
				switch strings.ToLower(strings.TrimSpace(tok)) {
				case "close":
					f.close = true
				case "keep-alive":
					f.keepAlive = true
				case "upgrade":
					f.hasUpConn = true
				}
			}
		case strings.EqualFold(fld.Name, "Upgrade"):
			f.upgrade = strings.ToLower(fld.Value)
		}
	}
	return f
}

// onHead handles a complete head on direction i that began at startTs and
// ended at endTs.
func (c *Conn) onHead(i int, head []byte, startTs, endTs int64) {
	start, hdr, warns := parseHead(head)
	if i == 0 {
		c.onRequestHead(head, start, hdr, warns, startTs, endTs)
	} else {
		c.onResponseHead(head, start, hdr, warns, startTs, endTs)
	}
}

func (c *Conn) onRequestHead(head []byte, start string, hdr session.Headers, warns []string, startTs, endTs int64) {
	h := &c.d[0]
	if start == "PRI * HTTP/2.0" {
		c.unsupported(KindHTTP2)
		return
	}
	method, target, proto, ok := parseRequestLine(start)
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
	f := framingOf(hdr)
	t := &txn{x: x, head: method == "HEAD", connect: method == "CONNECT"}
	if f.hasUpConn || f.upgrade != "" {
		t.upgrade = f.upgrade
	}
	c.queue = append(c.queue, t)
	c.ev.RequestStarted(x)
	h.t = t
	switch {
	case f.chunked:
		h.st = stChunkLine
	case f.otherTE:
		// A request body must be chunked or counted (RFC 9112 6.3); the
		// server would refuse it, so its length is unknown.
		warn(x, "request with a transfer coding other than chunked")
		c.endMessage(0, endTs)
	case f.length > 0:
		if f.badLength {
			warn(x, "conflicting Content-Length fields")
		}
		h.st, h.remain = stBody, f.length
		if f.length <= c.cfg.MaxBody {
			x.Request.Body = make([]byte, 0, f.length)
		}
	default:
		if f.badLength {
			warn(x, "invalid Content-Length field")
		}
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
	proto, status, reason, ok := parseStatusLine(start)
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
	f := framingOf(hdr)
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
				kind = KindHTTP2
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
	noBody := status == 204 || status == 304 || (t != nil && t.head)
	switch {
	case noBody:
		c.endMessage(1, endTs)
	case f.chunked:
		h.st = stChunkLine
	case f.otherTE:
		h.st = stCloseBody
	case f.length >= 0:
		if f.badLength && t != nil {
			warn(t.x, "conflicting Content-Length fields")
		}
		if f.length == 0 {
			c.endMessage(1, endTs)
			return
		}
		h.st, h.remain = stBody, f.length
		if t != nil && f.length <= c.cfg.MaxBody {
			t.x.Response.Body = make([]byte, 0, f.length)
		}
	default:
		if t != nil && proto == "HTTP/1.1" && !f.close {
			warn(t.x, "response without Content-Length on keep-alive connection")
		}
		h.st = stCloseBody
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
		size, ok := parseChunkSize(line)
		if !ok {
			h.buf = h.buf[:0]
			c.lostSync(i, "bad chunk size")
			return consumed
		}
		if size == 0 {
			h.st = stTrailer
		} else {
			h.st, h.remain = stChunkData, size
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
	colon := strings.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		warn(t.x, "malformed trailer line skipped")
		return
	}
	f := session.Header{Name: line[:colon], Value: strings.Trim(line[colon+1:], " \t")}
	if i == 0 {
		t.x.Request.Header = append(t.x.Request.Header, f)
	} else {
		t.x.Response.Header = append(t.x.Response.Header, f)
	}
	warn(t.x, "trailer fields appended to the header fields")
}

// parseChunkSize parses "1a3f" or "1a3f;ext=1".
func parseChunkSize(line []byte) (int64, bool) {
	if k := bytes.IndexByte(line, ';'); k >= 0 {
		line = line[:k]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, b := range line {
		var v byte
		switch {
		case b >= '0' && b <= '9':
			v = b - '0'
		case b >= 'a' && b <= 'f':
			v = b - 'a' + 10
		case b >= 'A' && b <= 'F':
			v = b - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(v)
	}
	return n, true
}
