package http2

import (
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reprise-tool/reprise/session"
)

// stream is one stream under construction.
type stream struct {
	id     uint32
	x      *session.Exchange // nil until the request header block decoded
	half   [2]half
	grpc   bool
	reset  session.Abort
	goAway session.Abort
	pushes int
	bad    string // why the stream is not recorded, once known
	done   bool
}

// half is one direction of a stream.
type half struct {
	headers bool // the (final, for responses) header block was seen
	ended   bool // END_STREAM was seen
	msg     splitter
}

// stream returns the state of stream id, creating it for a client stream.
func (a *Assembler) stream(id uint32) *stream {
	if s := a.streams[id]; s != nil {
		return s
	}
	if id%2 == 0 {
		return nil // a pushed stream: counted by its PUSH_PROMISE only
	}
	if a.open >= maxOpenStreams {
		a.giveUpOldest()
	}
	s := &stream{id: id}
	a.streams[id] = s
	a.stats.Streams++
	a.open++
	a.stats.MaxConcurrent = max(a.stats.MaxConcurrent, a.open)
	return s
}

// giveUpOldest finishes the open stream with the lowest id, as the close
// of the connection would: a capture that misses streams' ends (or a
// hostile peer) cannot make the assembler hold more than maxOpenStreams.
func (a *Assembler) giveUpOldest() {
	var old *stream
	for _, s := range a.streams {
		if old == nil || s.id < old.id {
			old = s
		}
	}
	if old != nil {
		if old.x != nil {
			warn(old.x, "too many streams open: given up")
		}
		a.finish(old, a.last)
	}
}

// xstream returns the session.Stream of s's exchange.
func (a *Assembler) xstream(s *stream) *session.Stream {
	if s.x.Stream == nil {
		s.x.Stream = &session.Stream{ID: s.id}
	}
	return s.x.Stream
}

// upgraded makes an h2c upgrade's HTTP/1.1 request stream 1, its request
// half complete.
func (a *Assembler) upgraded(x *session.Exchange) {
	s := a.stream(1)
	s.x = x
	x.Conn = a.cfg.Conn
	a.index = x.Index + 1
	s.half[FromClient].headers, s.half[FromClient].ended = true, true
	s.grpc = isGRPC(x.Request.Header)
	a.xstream(s)
	if s.grpc {
		a.grpcOf(s)
	}
}

// headers takes a decoded header block of direction i on stream id; end is
// the HEADERS frame's END_STREAM flag, start and ts the times of the
// block's first and last bytes.
func (a *Assembler) headers(i int, id uint32, fields []hpack.HeaderField, end bool, start, ts int64) {
	s := a.stream(id)
	if s == nil || s.done {
		return
	}
	h := &s.half[i]
	switch {
	case i == FromClient && !h.headers && !hasField(fields, ":method"):
		// Not a request, whatever the roles say: never recorded as one.
		s.bad = firstOf(s.bad, ReasonBadHeaderBlock)
	case i == FromClient && !h.headers:
		h.headers = true
		x := &session.Exchange{Conn: a.cfg.Conn, Index: a.index}
		a.index++
		x.Request.Proto = "HTTP/2.0"
		x.Request.Header = toHeaders(fields)
		for _, f := range fields {
			switch f.Name {
			case ":method":
				x.Request.Method = f.Value
			case ":path":
				x.Request.Target = f.Value
			}
		}
		x.Timing.RequestStart = start
		s.x = x
		s.grpc = isGRPC(x.Request.Header)
		a.xstream(s).Pushes = s.pushes
		if s.grpc {
			a.grpcOf(s) // a call without messages or status is still gRPC
		}
		a.ev.Started(x)
	case s.x == nil:
		// Frames of a stream whose request was never seen (or did not
		// decode).
		s.bad = firstOf(s.bad, ReasonOpenedBeforeCapture)
	case i == FromClient:
		s.x.Request.Trailer = toHeaders(fields)
	case !h.headers && !hasField(fields, ":status"):
		s.bad = firstOf(s.bad, ReasonBadHeaderBlock)
	case !h.headers:
		status := statusOf(fields)
		if status >= 100 && status < 200 {
			st := a.xstream(s)
			st.Interim = append(st.Interim, session.Interim{Status: status, Header: toHeaders(fields)})
			if s.x.Timing.ResponseStart == 0 {
				s.x.Timing.ResponseStart = start
			}
			return
		}
		h.headers = true
		r := &s.x.Response
		r.Proto, r.Status, r.Header = "HTTP/2.0", status, toHeaders(fields)
		if s.x.Timing.ResponseStart == 0 {
			s.x.Timing.ResponseStart = start
		}
		if end && s.grpc {
			// A trailers-only response: the status is in the headers.
			a.grpcStatus(s, r.Header)
		}
	default:
		s.x.Response.Trailer = toHeaders(fields)
		if s.grpc {
			a.grpcStatus(s, s.x.Response.Trailer)
		}
	}
	if end {
		a.endHalf(s, i, ts)
	}
}

// toHeaders copies decoded fields into session headers. hpack's strings
// are fresh, so they are kept as they are.
func toHeaders(fields []hpack.HeaderField) session.Headers {
	h := make(session.Headers, len(fields))
	for k, f := range fields {
		h[k] = session.Header{Name: f.Name, Value: f.Value}
	}
	return h
}

func hasField(fields []hpack.HeaderField, name string) bool {
	for _, f := range fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

func statusOf(fields []hpack.HeaderField) int {
	for _, f := range fields {
		if f.Name == ":status" {
			n, err := strconv.Atoi(f.Value)
			if err == nil {
				return n
			}
		}
	}
	return 0
}

func isGRPC(h session.Headers) bool {
	return strings.HasPrefix(strings.ToLower(h.Get("content-type")), "application/grpc")
}

// grpcStatus takes grpc-status and grpc-message from fields.
func (a *Assembler) grpcStatus(s *stream, fields session.Headers) {
	v := fields.Get("grpc-status")
	if v == "" {
		return
	}
	g := a.grpcOf(s)
	n, err := strconv.Atoi(v)
	if err != nil {
		warn(s.x, "malformed grpc-status")
		return
	}
	g.Status, g.HasStatus, g.StatusMessage = n, true, fields.Get("grpc-message")
}

func (a *Assembler) grpcOf(s *stream) *session.GRPC {
	st := a.xstream(s)
	if st.GRPC == nil {
		st.GRPC = &session.GRPC{}
	}
	return st.GRPC
}

// data takes a DATA frame of direction i.
func (a *Assembler) data(i int, f *http2.DataFrame, start, end int64) {
	s := a.stream(f.StreamID)
	if s == nil || s.done {
		return
	}
	if s.x == nil {
		s.bad = firstOf(s.bad, ReasonOpenedBeforeCapture)
		if f.StreamEnded() {
			a.endHalf(s, i, end)
		}
		return
	}
	p := f.Data()
	x := s.x
	if i == FromServer && !s.half[i].headers {
		// DATA before the response's HEADERS breaks the protocol (RFC
		// 9113 8.1): there is no response to hold it.
		warn(x, "DATA before the response header block")
		if f.StreamEnded() {
			a.endHalf(s, i, end)
		}
		return
	}
	if i == FromServer && x.Timing.ResponseStart == 0 {
		x.Timing.ResponseStart = start
	}
	body, size, flag := &x.Request.Body, &x.Request.BodySize, session.FlagRequestTruncated
	if i == FromServer {
		body, size, flag = &x.Response.Body, &x.Response.BodySize, session.FlagResponseTruncated
	}
	*size += int64(len(p))
	if room := a.cfg.MaxBody - int64(len(*body)); room > 0 {
		*body = append(*body, p[:min(room, int64(len(p)))]...)
	}
	if *size > a.cfg.MaxBody {
		x.Flags |= flag
	}
	if s.grpc {
		s.half[i].msg.feed(p, func(compressed bool, n uint32) {
			g := a.grpcOf(s)
			g.Messages = append(g.Messages, session.Message{
				FromServer: i == FromServer, Compressed: compressed, Size: n, At: end - x.Timing.RequestStart,
			})
		})
	}
	if f.StreamEnded() {
		a.endHalf(s, i, end)
	}
}

// endHalf ends direction i of s at ts and finishes s when both ended.
func (a *Assembler) endHalf(s *stream, i int, ts int64) {
	h := &s.half[i]
	h.ended = true
	if s.x == nil {
		if s.half[0].ended && s.half[1].ended {
			a.finish(s, ts)
		}
		return
	}
	if i == FromClient {
		s.x.Timing.RequestEnd = ts
	} else {
		s.x.Timing.ResponseEnd = ts
	}
	if s.half[0].ended && s.half[1].ended {
		a.finish(s, ts)
	}
}

// finish emits s (or counts it as undecodable) and forgets it.
func (a *Assembler) finish(s *stream, ts int64) {
	if s.done {
		return
	}
	s.done = true
	a.open--
	delete(a.streams, s.id)
	if s.x == nil {
		a.stats.Undecodable++
		a.ev.Undecodable(firstOf(s.bad, ReasonOpenedBeforeCapture))
		return
	}
	x := s.x
	if s.bad != "" {
		a.stats.Undecodable++
		a.ev.Dropped(x)
		a.ev.Undecodable(s.bad)
		return
	}
	st := a.xstream(s)
	st.Reset, st.GoAway = s.reset, s.goAway
	if s.reset.By != session.PartyNone {
		warn(x, "stream reset by the "+partyName(s.reset.By)+": "+http2.ErrCode(s.reset.Code).String())
	}
	if !s.half[FromClient].ended {
		if s.reset.By == session.PartyNone {
			x.Flags |= session.FlagRequestGap
			warn(x, "connection ended before the request did")
		}
		x.Timing.RequestEnd = max(x.Timing.RequestEnd, ts)
	}
	switch {
	case !s.half[FromServer].headers:
		x.Flags |= session.FlagNoResponse
		x.Flags &^= session.FlagResponseTruncated
		x.Response = session.Response{}
	case !s.half[FromServer].ended:
		if s.reset.By == session.PartyNone {
			x.Flags |= session.FlagResponseGap
			warn(x, "connection ended before the response did")
		}
		x.Timing.ResponseEnd = ts
	}
	for i := range s.half {
		if s.half[i].msg.lost {
			warn(x, "gRPC messages after lost bytes not recorded")
		} else if s.half[i].msg.partial() {
			warn(x, "gRPC message cut short")
		}
	}
	a.ev.Exchange(x)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func partyName(p session.Party) string {
	if p == session.PartyClient {
		return "client"
	}
	return "server"
}

// undecodable marks stream id as not recordable for reason.
func (a *Assembler) undecodable(id uint32, reason string) {
	s := a.stream(id)
	if s == nil || s.done {
		return
	}
	if s.bad == "" {
		s.bad = reason
	}
}

// Close ends the connection: every stream still open is emitted, flagged
// where a half did not end (or counted, when undecodable). It is safe to
// call more than once.
func (a *Assembler) Close() {
	if a.closed {
		return
	}
	a.closed = true
	ids := make([]uint32, 0, len(a.streams))
	for id := range a.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := a.streams[id]
		ts := a.last
		if s.x != nil {
			ts = max(ts, s.x.Timing.RequestEnd, s.x.Timing.ResponseEnd, s.x.Timing.RequestStart)
		}
		a.finish(s, ts)
	}
}

// Upgraded puts x, an HTTP/1.1 request with Upgrade: h2c and the 101
// response that accepted it, in the shape Config.Upgrade takes, the shape
// packet capture records: the 101 becomes stream 1's interim response and
// the final response is left to the HTTP/2 frames that follow.
func Upgraded(x *session.Exchange) {
	resp := x.Response
	x.Response = session.Response{}
	x.Timing.ResponseStart = 0
	x.Stream = &session.Stream{ID: 1, Interim: []session.Interim{{Status: resp.Status, Header: resp.Header}}}
}
