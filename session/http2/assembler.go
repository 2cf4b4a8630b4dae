package http2

import (
	"bytes"
	"encoding/binary"
	"errors"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reprise-tool/reprise/session"
)

// Preface is the client connection preface (RFC 9113 section 3.4).
const Preface = http2.ClientPreface

// Directions: the index of what the client sent and what the server sent.
const (
	FromClient = 0
	FromServer = 1
)

// Reasons a stream is counted as undecodable instead of recorded, passed to
// Events.Undecodable.
const (
	// ReasonTableBeforeCapture: a header block refers to an HPACK dynamic
	// table entry added before the capture began (or before lost bytes).
	ReasonTableBeforeCapture = "hpack-table-unknown"
	// ReasonBadHeaderBlock: a header block does not decode at all.
	ReasonBadHeaderBlock = "bad-header-block"
	// ReasonOpenedBeforeCapture: frames of a stream whose request header
	// block was never seen (sent before the capture began or lost).
	ReasonOpenedBeforeCapture = "stream-headers-not-seen"
)

// Defaults and limits.
const (
	maxFrameSize     = 1<<24 - 1 // the largest frame HTTP/2 allows
	plausibleFrame   = 1 << 20   // a larger length is not a frame start when resynchronising
	maxPending       = 4 << 20   // bytes of one incomplete frame held
	maxHeaderBlock   = 1 << 20   // bytes of one header block (with CONTINUATION) kept
	maxStringLength  = 256 << 10 // one decoded header field name or value
	maxOpenStreams   = 4096      // streams held open; beyond, the oldest is given up
	joinedTableSize  = 1<<32 - 1 // the table size assumed after joining mid-connection
	defaultTableSize = 4096
)

// Config describes one connection.
type Config struct {
	// Conn is stamped on every exchange; its Protocol should be h2c or h2.
	Conn session.Conn
	// MaxBody caps the bytes of each body kept; zero keeps none.
	MaxBody int64
	// Start says the connection is seen from its first byte: the client's
	// bytes begin with the preface (or, after an h2c upgrade, the preface
	// follows the upgrade request) and both HPACK tables start empty with
	// the default size. Without it the assembler joins mid-connection.
	Start bool
	// Upgrade is the HTTP/1.1 request of an h2c upgrade, which becomes
	// stream 1 with its request half complete; the server's bytes after
	// the 101 response are HTTP/2 frames. Nil otherwise.
	Upgrade *session.Exchange
	// GuessedRoles says the caller guessed which direction is the
	// client's (no SYN, no port to tell): the first header block that
	// decodes confirms the guess (a request's :method) or reverses it (a
	// response's :status) before any stream is recorded.
	GuessedRoles bool
}

// Events receives what an Assembler finds, synchronously from Feed, Gap
// and Close.
type Events interface {
	// Started is called when a stream's request header block decoded; the
	// exchange is later passed to exactly one of Exchange or Dropped.
	Started(x *session.Exchange)
	// Exchange is called with each finished stream. The receiver owns x.
	Exchange(x *session.Exchange)
	// Dropped is called for a started stream that will not be emitted
	// because one of its later header blocks could not be decoded.
	Dropped(x *session.Exchange)
	// Undecodable is called once per stream that is not recorded, with
	// one of the Reason constants.
	Undecodable(reason string)
}

// Stats counts what one connection carried.
type Stats struct {
	Streams       int // client streams seen, recorded or not
	MaxConcurrent int // most streams open at once
	Pushes        int // PUSH_PROMISE frames
	GoAways       int
	Resets        int
	Undecodable   int
	BadFrames     int // frames the Framer refused, skipped
}

// Assembler reassembles one HTTP/2 connection. It is not safe for
// concurrent use. Bytes passed to Feed are copied where kept.
type Assembler struct {
	cfg     Config
	ev      Events
	dir     [2]direction
	streams map[uint32]*stream
	open    int
	index   int
	closed  bool
	swapped bool  // the guessed roles were reversed: direction i is role 1-i
	guessed bool  // the roles are still a guess
	last    int64 // the latest timestamp fed
	stats   Stats
	fields  []hpack.HeaderField // the decoded block, reused
}

// direction is the read state of the bytes one side sent.
type direction struct {
	buf      []byte // an incomplete frame, or bytes scanned for a frame start
	bufTs    int64  // when buf's first byte arrived
	preface  int    // bytes of the client preface still to skip
	synced   bool   // buf begins at a frame boundary
	dec      *hpack.Decoder
	joined   bool   // the decoder's table may lack entries from before
	block    []byte // a header block collected across CONTINUATION frames
	blockFor uint32 // its stream (0: none in progress)
	blockEnd bool   // the HEADERS frame had END_STREAM
	blockTs  int64
	push     bool // the block is a PUSH_PROMISE's
	skip     bool // the block's start was not seen: drop it
	rd       bytes.Reader
	fr       *http2.Framer
}

// New returns an assembler for one connection reporting to ev.
func New(cfg Config, ev Events) *Assembler {
	if cfg.MaxBody < 0 {
		cfg.MaxBody = 0
	}
	a := &Assembler{cfg: cfg, ev: ev, streams: make(map[uint32]*stream), guessed: cfg.GuessedRoles && !cfg.Start}
	for i := range a.dir {
		d := &a.dir[i]
		d.fr = http2.NewFramer(nil, &d.rd)
		d.fr.SetMaxReadFrameSize(maxFrameSize)
		d.fr.AllowIllegalReads = true // a passive reader judges order itself
		d.synced = cfg.Start
		a.resetDecoder(i, !cfg.Start)
	}
	if cfg.Start {
		a.dir[FromClient].preface = len(Preface)
	}
	if x := cfg.Upgrade; x != nil {
		a.upgraded(x)
	}
	return a
}

// Stats returns what the connection carried so far.
func (a *Assembler) Stats() Stats { return a.stats }

// resetDecoder starts direction i's HPACK decoder from an empty table:
// with the default size at the start of a connection, or unbounded after
// joining mid-connection (package doc).
func (a *Assembler) resetDecoder(i int, joined bool) {
	d := &a.dir[i]
	size := uint32(defaultTableSize)
	if joined {
		size = joinedTableSize
	}
	d.dec = hpack.NewDecoder(size, func(f hpack.HeaderField) { a.fields = append(a.fields, f) })
	d.dec.SetAllowedMaxDynamicTableSize(joinedTableSize)
	d.dec.SetMaxStringLength(maxStringLength)
	d.joined = joined
}

// Feed passes bytes sent in direction i (FromClient or FromServer),
// captured at ts (Unix nanoseconds).
func (a *Assembler) Feed(i int, data []byte, ts int64) {
	if a.closed || len(data) == 0 || (i != FromClient && i != FromServer) {
		return
	}
	d := &a.dir[i]
	a.last = max(a.last, ts)
	if d.preface > 0 {
		n := min(d.preface, len(data))
		off := len(Preface) - d.preface
		if string(data[:n]) != Preface[off:off+n] {
			// Not the preface after all: look for frames instead.
			d.preface, d.synced = 0, false
		} else {
			d.preface -= n
			data = data[n:]
		}
	}
	for len(data) > 0 && !a.closed {
		if !d.synced {
			if len(d.buf) == 0 {
				d.bufTs = ts
			}
			d.buf = append(d.buf, data...)
			if !a.resync(i) {
				return
			}
			data = bytes.Clone(d.buf)
			d.buf = d.buf[:0]
			continue
		}
		if len(d.buf) > 0 {
			// Complete the pending frame from data.
			if len(d.buf) < 9 {
				n := min(9-len(d.buf), len(data))
				d.buf = append(d.buf, data[:n]...)
				data = data[n:]
				if len(d.buf) < 9 {
					return
				}
			}
			need := 9 + frameLen(d.buf)
			if need > maxPending {
				a.lost(i, ts)
				continue
			}
			n := min(need-len(d.buf), len(data))
			d.buf = append(d.buf, data[:n]...)
			data = data[n:]
			if len(d.buf) < need {
				return
			}
			a.frame(i, d.buf, d.bufTs, ts)
			d.buf = d.buf[:0]
			continue
		}
		if len(data) < 9 || len(data) < 9+frameLen(data) {
			if len(data) >= 9 && 9+frameLen(data) > maxPending {
				a.lost(i, ts)
				continue
			}
			d.buf = append(d.buf, data...)
			d.bufTs = ts
			return
		}
		n := 9 + frameLen(data)
		a.frame(i, data[:n], ts, ts)
		data = data[n:]
	}
}

func frameLen(h []byte) int { return int(h[0])<<16 | int(h[1])<<8 | int(h[2]) }

// Gap says n bytes sent in direction i were lost (n < 0: an unknown
// number). Bytes lost inside the payload of a DATA frame whose header was
// seen cost only that payload: they are kept as zeros, the stream is
// flagged, and framing and HPACK go on. Any other loss leaves the frame
// boundary and the HPACK table of that direction unknown: the assembler
// resynchronises on the next frames, and the streams the direction was
// sending are flagged.
func (a *Assembler) Gap(i, n int, ts int64) {
	if a.closed || (i != FromClient && i != FromServer) {
		return
	}
	d := &a.dir[i]
	if d.synced && n >= 0 && len(d.buf) >= 9 && http2.FrameType(d.buf[3]) == http2.FrameData {
		need := 9 + frameLen(d.buf)
		if len(d.buf)+n <= need && d.buf[4]&0x08 == 0 { // unpadded: the lost bytes are data
			if s := a.streams[binary.BigEndian.Uint32(d.buf[5:9])&(1<<31-1)]; s != nil && s.x != nil {
				r := a.role(i)
				a.flagGap(s.x, r)
				if s.grpc {
					// The zeros stand for payload bytes only if the loss
					// lies inside one message; otherwise its prefixes
					// are gone and splitting stops.
					m := s.half[r].msg
					m.feed(d.buf[9:], func(bool, uint32) {})
					if m.have < 5 || uint64(n) > uint64(m.remain) {
						s.half[r].msg.lost = true
					}
				}
			}
			d.buf = append(d.buf, make([]byte, n)...)
			if len(d.buf) == need {
				a.frame(i, d.buf, d.bufTs, ts)
				d.buf = d.buf[:0]
			}
			return
		}
	}
	a.lost(i, ts)
}

// role is FromClient or FromServer for the bytes of direction i.
func (a *Assembler) role(i int) int {
	if a.swapped {
		return 1 - i
	}
	return i
}

// flagGap marks x's half sent by role r as missing bytes.
func (a *Assembler) flagGap(x *session.Exchange, r int) {
	if r == FromClient {
		x.Flags |= session.FlagRequestGap
	} else {
		x.Flags |= session.FlagResponseGap
	}
	warn(x, "bytes lost in reassembly")
}

func (a *Assembler) lost(i int, ts int64) {
	d := &a.dir[i]
	d.buf, d.synced, d.preface = d.buf[:0], false, 0
	d.blockFor, d.block, d.skip = 0, d.block[:0], false
	a.resetDecoder(i, true)
	r := a.role(i)
	for _, s := range a.streams {
		if !s.half[r].ended && s.x != nil {
			a.flagGap(s.x, r)
		}
	}
}

// resync looks in direction i's buffer for a frame start: a plausible
// frame header followed by another, or ending exactly at the buffer's end.
// It reports whether it found one (the buffer then starts there).
func (a *Assembler) resync(i int) bool {
	d := &a.dir[i]
	b := d.buf
	for off := 0; off+9 <= len(b); off++ {
		if !plausible(b[off:]) {
			continue
		}
		next := off + 9 + frameLen(b[off:])
		switch {
		case next == len(b):
		case next+9 <= len(b) && plausible(b[next:]):
		case next+9 > len(b):
			// Cannot confirm yet: keep from here and wait for more bytes.
			d.buf = append(d.buf[:0], b[off:]...)
			if len(d.buf) > maxPending {
				d.buf = d.buf[:0]
			}
			return false
		default:
			continue
		}
		d.buf = append(d.buf[:0], b[off:]...)
		d.synced = true
		return true
	}
	if len(b) > 8 {
		d.buf = append(d.buf[:0], b[len(b)-8:]...)
	}
	return false
}

// plausible reports whether b starts with a frame header a peer could have
// sent: a known type, the lengths and stream ids its type requires, and no
// flags its type does not define.
func plausible(b []byte) bool {
	n := frameLen(b)
	t, flags := http2.FrameType(b[3]), b[4]
	id := binary.BigEndian.Uint32(b[5:9])
	if n > plausibleFrame || id&(1<<31) != 0 {
		return false
	}
	switch t {
	case http2.FrameData:
		return id != 0 && flags&^0x09 == 0
	case http2.FrameHeaders:
		return id != 0 && flags&^0x2d == 0
	case http2.FramePriority:
		return id != 0 && n == 5 && flags == 0
	case http2.FrameRSTStream:
		return id != 0 && n == 4 && flags == 0
	case http2.FrameSettings:
		return id == 0 && n%6 == 0 && flags&^0x01 == 0 && (flags == 0 || n == 0)
	case http2.FramePushPromise:
		return id != 0 && n >= 4 && flags&^0x0c == 0
	case http2.FramePing:
		return id == 0 && n == 8 && flags&^0x01 == 0
	case http2.FrameGoAway:
		return id == 0 && n >= 8 && flags == 0
	case http2.FrameWindowUpdate:
		return n == 4 && flags == 0
	case http2.FrameContinuation:
		return id != 0 && flags&^0x04 == 0
	}
	return false
}

// frame handles one whole frame of direction i whose first byte arrived
// at start and last at end.
func (a *Assembler) frame(i int, b []byte, start, end int64) {
	d := &a.dir[i]
	d.rd.Reset(b)
	f, err := d.fr.ReadFrame()
	if err != nil {
		a.stats.BadFrames++
		var se http2.StreamError
		if errors.As(err, &se) {
			return
		}
		if f == nil {
			return
		}
	}
	if d.blockFor != 0 {
		if c, ok := f.(*http2.ContinuationFrame); ok && c.StreamID == d.blockFor {
			a.fragment(i, c.HeaderBlockFragment(), c.HeadersEnded(), end)
			return
		}
		// The block was cut short: whatever it held is lost.
		a.blockLost(i)
	}
	switch f := f.(type) {
	case *http2.HeadersFrame:
		d.blockFor, d.blockEnd, d.blockTs, d.push, d.skip = f.StreamID, f.StreamEnded(), start, false, false
		d.block = d.block[:0]
		a.fragment(i, f.HeaderBlockFragment(), f.HeadersEnded(), end)
	case *http2.PushPromiseFrame:
		a.stats.Pushes++
		if s := a.streams[f.StreamID]; s != nil && s.x != nil {
			a.xstream(s).Pushes++
		}
		d.blockFor, d.blockEnd, d.blockTs, d.push, d.skip = f.StreamID, false, start, true, false
		d.block = d.block[:0]
		a.fragment(i, f.HeaderBlockFragment(), f.HeadersEnded(), end)
	case *http2.ContinuationFrame:
		// A CONTINUATION whose HEADERS came before the capture: the rest
		// of that block cannot be decoded, and it may add table entries.
		if !f.HeadersEnded() {
			d.blockFor, d.skip = f.StreamID, true
		} else {
			a.resetDecoder(i, true)
		}
	case *http2.DataFrame:
		a.data(a.role(i), f, start, end)
	case *http2.RSTStreamFrame:
		a.stats.Resets++
		if s := a.streams[f.StreamID]; s != nil {
			s.reset = session.Abort{By: party(a.role(i)), Code: uint32(f.ErrCode)}
			a.finish(s, end)
		}
	case *http2.GoAwayFrame:
		a.stats.GoAways++
		for _, s := range a.streams {
			s.goAway = session.Abort{By: party(a.role(i)), Code: uint32(f.ErrCode)}
		}
	}
}

func party(i int) session.Party {
	if i == FromClient {
		return session.PartyClient
	}
	return session.PartyServer
}

// fragment adds a piece of the header block in progress on direction i and
// decodes the block when it ends.
func (a *Assembler) fragment(i int, p []byte, ended bool, ts int64) {
	d := &a.dir[i]
	if !d.skip {
		if len(d.block)+len(p) > maxHeaderBlock {
			d.skip = true
		} else {
			d.block = append(d.block, p...)
		}
	}
	if !ended {
		return
	}
	id, skip := d.blockFor, d.skip
	d.blockFor, d.skip = 0, false
	if skip {
		a.blockLost(i)
		a.undecodable(id, ReasonBadHeaderBlock)
		return
	}
	a.fields = a.fields[:0]
	_, err := d.dec.Write(d.block)
	if err == nil {
		err = d.dec.Close()
	}
	if err != nil {
		reason := ReasonBadHeaderBlock
		if d.joined && invalidIndex(err) {
			reason = ReasonTableBeforeCapture
		}
		d.dec.Close()
		// The block may have added entries the decoder did not: start
		// again from empty, as if joining here.
		a.resetDecoder(i, true)
		if !d.push {
			a.undecodable(id, reason)
		}
		return
	}
	if d.push {
		return // decoded to keep the table; pushed streams are counted only
	}
	r := a.role(i)
	if a.guessed {
		r = a.settleRoles(r, a.fields)
	}
	a.headers(r, id, a.fields, d.blockEnd, d.blockTs, ts)
}

// settleRoles checks the guessed roles against a decoded header block that
// role r sent: a :method comes from a client, a :status from a server. A
// block with neither (trailers) settles nothing. It returns the block's
// role after the check.
func (a *Assembler) settleRoles(r int, fields []hpack.HeaderField) int {
	method, status := false, false
	for _, f := range fields {
		method = method || f.Name == ":method"
		status = status || f.Name == ":status"
	}
	if method == status {
		return r
	}
	a.guessed = false
	if method == (r == FromClient) {
		return r
	}
	// Reversed: nothing was recorded yet (a stream is recorded from a
	// request block), so the streams' halves and the addresses swap.
	a.swapped = !a.swapped
	c := &a.cfg.Conn
	c.Client, c.Server = c.Server, c.Client
	for _, s := range a.streams {
		s.half[0], s.half[1] = s.half[1], s.half[0]
	}
	return 1 - r
}

// invalidIndex reports whether err is hpack's error for an index past the
// end of the table (hpack wraps it in a DecodingError without Unwrap).
func invalidIndex(err error) bool {
	var ie hpack.InvalidIndexError
	var de hpack.DecodingError
	return errors.As(err, &ie) || (errors.As(err, &de) && errors.As(de.Err, &ie))
}

// blockLost drops the header block in progress on direction i: its
// entries are unknown, so the table starts again from empty.
func (a *Assembler) blockLost(i int) {
	d := &a.dir[i]
	d.blockFor, d.skip = 0, false
	d.block = d.block[:0]
	a.resetDecoder(i, true)
}

func warn(x *session.Exchange, w string) { x.Warn(w) }

// LooksLikeFrames reports whether b, the first bytes seen of one direction
// of a connection joined mid-way, begins with HTTP/2 frames: two plausible
// frame headers in a row, or one frame that ends exactly at the end of b.
// HTTP/1 text never passes (its first bytes read as a length over 1 MiB).
func LooksLikeFrames(b []byte) bool {
	if len(b) < 9 || !plausible(b) {
		return false
	}
	next := 9 + frameLen(b)
	return next == len(b) || (next+9 <= len(b) && plausible(b[next:]))
}
