// Package gor reads and writes GoReplay's file format (.gor, .gor.gz), so
// months of GoReplay captures become Reprise exchanges and a recording can
// be handed back to GoReplay's --input-file.
//
// A GoReplay file is a series of payloads. Each payload is a meta line
//
//	TYPE ID TIMESTAMP_NS LATENCY_NS
//
// (type 1 a request, 2 its original response, 3 a response GoReplay got when
// replaying; files written before GoReplay 1.0 have no latency field), then
// the raw HTTP/1 bytes of one message, then Separator. A request and its
// responses share the ID.
//
// The raw bytes are parsed by capture/httpstream, the project's one HTTP/1
// parser, exactly as bytes reassembled from packets are: the request as the
// client side of a connection, its response as the server side. So a .gor
// import and a pcap import can never disagree about where a message ends.
package gor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/capture/internal/infile"
	"github.com/reprise-tool/reprise/session"
)

// Separator ends every payload. GoReplay's reader splits a file on lines
// equal to Separator without its first byte, so a payload's raw bytes are
// followed by "\n" and that line.
const Separator = "\n\U0001F435\U0001F648\U0001F649\n"

// Payload types, the first field of a meta line.
const (
	TypeRequest  = '1' // a request as captured
	TypeResponse = '2' // the original response, as captured
	TypeReplayed = '3' // the response GoReplay got when it replayed the request
)

// Defaults for options left unset.
const (
	DefaultMaxPayload = 64 << 20
	DefaultMaxPending = 4096
	DefaultMaxBody    = 1 << 20
	// DefaultPairWindow is how long after a request (by the file's
	// timestamps) its response may still come.
	DefaultPairWindow = 2 * time.Minute
)

// Sentinel errors. A *PayloadError wraps one of them; test with errors.Is.
var (
	// ErrBadMeta means a payload does not start with a valid meta line.
	// After a good payload it usually means that payload's body held the
	// separator, so GoReplay's writer cut it in two: the first part is kept
	// (flagged by the parser when its body came out short), this one is not.
	ErrBadMeta = errors.New("payload without a valid meta line (a body holding the separator cuts a payload in two)")
	// ErrPartial means the file ends inside a payload: GoReplay was killed
	// or the copy was cut. What the payload held is kept when it parses,
	// flagged as incomplete.
	ErrPartial = errors.New("partial payload at the end of the file")
	// ErrTooLarge means a payload exceeded the MaxPayload option; it was
	// skipped up to the next separator.
	ErrTooLarge = errors.New("payload larger than the limit")
	// ErrNotHTTP means a payload's bytes held no HTTP/1 request the parser
	// could read (TLS, HTTP/2, junk, or a head cut off).
	ErrNotHTTP = errors.New("payload holds no HTTP/1 request")
)

// PayloadError reports one damaged or unusable payload.
type PayloadError struct {
	Path string // the file, or "" for an unnamed stream
	// Offset is the payload's byte offset in the file's uncompressed
	// stream (for a .gor.gz: after gunzip).
	Offset int64
	ID     string // the payload's ID when its meta line was readable
	Err    error  // one of the sentinel errors, possibly wrapped
}

func (e *PayloadError) Error() string {
	name := e.Path
	if name == "" {
		name = "goreplay file"
	}
	msg := fmt.Sprintf("%s: payload at byte %d", name, e.Offset)
	if e.ID != "" {
		msg += " (id " + e.ID + ")"
	}
	return msg + ": " + e.Err.Error()
}

func (e *PayloadError) Unwrap() error { return e.Err }

// Stats counts what a Reader read.
type Stats struct {
	Bytes     int64 `json:"bytes"`     // uncompressed bytes consumed
	Payloads  int64 `json:"payloads"`  // payloads with a readable meta line
	Requests  int64 `json:"requests"`  // type 1 payloads
	Responses int64 `json:"responses"` // type 2 payloads
	// Replayed counts type 3 payloads. The exchange model holds one
	// response per request, the original, so replayed responses are
	// counted and not kept.
	Replayed   int64 `json:"replayed"`
	Exchanges  int64 `json:"exchanges"`  // exchanges returned
	Unanswered int64 `json:"unanswered"` // requests whose response never came (FlagNoResponse)
	Orphans    int64 `json:"orphans"`    // responses whose request never came
	Damaged    int64 `json:"damaged"`    // payloads reported as a *PayloadError
	// Unsupported counts requests the parser refused (TLS, HTTP/2,
	// upgrades, CONNECT), by kind.
	Unsupported map[string]int64 `json:"unsupported,omitempty"`
}

// Option configures a Reader.
type Option func(*options) error

type options struct {
	infile.Settings
	maxPayload int
	maxPending int
	window     time.Duration
}

// Name sets the file name used in errors.
func Name(path string) Option { return infile.Name[options](path) }

// MaxPayload bounds one payload's bytes (default DefaultMaxPayload); a
// longer one is skipped and reported with ErrTooLarge.
func MaxPayload(n int) Option {
	return func(o *options) error {
		if n < 64 {
			return fmt.Errorf("gor: MaxPayload %d: give at least 64 bytes", n)
		}
		o.maxPayload = n
		return nil
	}
}

// MaxPending bounds the requests held while waiting for their responses
// (default DefaultMaxPending). Beyond it the oldest is returned without a
// response. GoReplay writes a response soon after its request, so the bound
// only matters for requests that never got one.
func MaxPending(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("gor: MaxPending %d: give at least 1", n)
		}
		o.maxPending = n
		return nil
	}
}

// PairWindow sets how long after a request, by the timestamps of the
// payloads read since, its response may still come (default
// DefaultPairWindow). A request waiting longer is returned without one, so
// a request never answered does not hold back the exchanges after it.
func PairWindow(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("gor: PairWindow %v: give a positive duration", d)
		}
		o.window = d
		return nil
	}
}

// MaxBody caps the body bytes kept per message (default DefaultMaxBody),
// as capture's body cap does; longer bodies are truncated and flagged.
func MaxBody(n int64) Option { return infile.MaxBody[options]("gor", n) }

// FirstConnID sets the Conn.ID of the first exchange (default 1). GoReplay
// files do not say which connection a request used, so every exchange gets
// a connection of its own; importing several files into one recording
// needs distinct ranges.
func FirstConnID(id uint64) Option { return infile.FirstConnID[options](id) }

// pend is a request waiting for its response.
type pend struct {
	id        string
	off       int64
	req, resp []byte
	reqMeta   meta
	respMeta  meta
	hasResp   bool
	closed    bool // no response can come any more (its ID was reused)
	respOff   int64
}

// Reader reads exchanges from a GoReplay file as a stream: it holds one
// payload being read plus the requests still waiting for their responses
// (bounded by MaxPending), never the whole file.
//
// Exchanges come in the order their requests appear in the file. Damage is
// reported as session.Reader reports it: Next returns the exchanges before
// a bad payload, then one *PayloadError naming its offset; calling Next
// again goes on with the payloads after it. At the end Next returns io.EOF;
// Damage lists every report and Stats counts everything.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	o  options
	sc scanner
	infile.Closer

	queue   []*pend
	byID    map[string]*pend
	early   map[string]*pend // responses that came before their requests
	out     []*session.Exchange
	errs    []*PayloadError
	damage  []*PayloadError
	stats   Stats
	nextID  uint64
	latest  int64 // the latest payload timestamp seen
	ended   bool
	err     error // sticky read error
	collect collector
}

var _ session.Source = (*Reader)(nil)

// NewReader returns a Reader of the GoReplay stream r, gzip'd or not: the
// compression is detected from the content (gzip's magic bytes), not from
// a name.
func NewReader(r io.Reader, opts ...Option) (*Reader, error) {
	o := options{Settings: infile.Settings{MaxBody: DefaultMaxBody, FirstConn: 1},
		maxPayload: DefaultMaxPayload, maxPending: DefaultMaxPending, window: DefaultPairWindow}
	if err := infile.Apply(&o, opts); err != nil {
		return nil, err
	}
	src, err := infile.Reader(r)
	if err != nil {
		return nil, fmt.Errorf("gor: %s: %w", o.Path, err)
	}
	rd := &Reader{o: o, byID: map[string]*pend{}, early: map[string]*pend{}, nextID: o.FirstConn}
	rd.sc.r = src
	return rd, nil
}

// Open opens the GoReplay file at path; Close (of the embedded
// infile.Closer) closes it. For NewReader, Close does nothing.
func Open(path string, opts ...Option) (*Reader, error) {
	return infile.Open(path, func(f io.Reader) (*Reader, error) {
		return NewReader(f, append([]Option{Name(path)}, opts...)...)
	})
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats {
	s := r.stats
	s.Bytes = r.sc.off
	return s
}

// Damage returns every payload reported so far, in file order.
func (r *Reader) Damage() []*PayloadError { return r.damage }

// NextConnID returns the Conn.ID the next exchange would get, for a caller
// that reads several files into one recording (see FirstConnID).
func (r *Reader) NextConnID() uint64 { return r.nextID }

// Next returns the next exchange, a *PayloadError after which reading may
// go on, io.EOF at the end, or a read error.
func (r *Reader) Next() (*session.Exchange, error) {
	for {
		if len(r.out) > 0 {
			x := r.out[0]
			r.out[0] = nil
			r.out = r.out[1:]
			r.stats.Exchanges++
			return x, nil
		}
		if len(r.errs) > 0 {
			e := r.errs[0]
			r.errs = r.errs[1:]
			return nil, e
		}
		if r.ended {
			if r.err != nil {
				return nil, r.err
			}
			return nil, io.EOF
		}
		r.step()
	}
}

// step reads one payload and emits what became ready.
func (r *Reader) step() {
	p, off, res, err := r.sc.next(r.o.maxPayload)
	switch res {
	case scanEnd:
		if err != nil {
			r.err = fmt.Errorf("gor: %s: %w", r.o.Path, err)
		}
		r.finish()
		return
	case scanTooLarge:
		r.report(off, "", ErrTooLarge)
		return
	case scanPartial:
		r.report(off, "", ErrPartial)
	}
	if len(bytes.TrimSpace(p)) == 0 {
		return // an empty payload holds nothing
	}
	m, body, ok := parseMeta(p)
	if !ok {
		if res != scanPartial {
			r.report(off, "", ErrBadMeta)
		}
		return
	}
	r.stats.Payloads++
	if m.ts > r.latest {
		r.latest = m.ts
	}
	switch m.typ {
	case TypeRequest:
		r.stats.Requests++
		r.addRequest(m, body, off)
	case TypeResponse:
		r.stats.Responses++
		r.addResponse(m, body, off)
	default:
		r.stats.Replayed++
	}
	r.emitReady(false)
}

func (r *Reader) report(off int64, id string, err error) {
	e := &PayloadError{Path: r.o.Path, Offset: off, ID: id, Err: err}
	r.stats.Damaged++
	r.errs = append(r.errs, e)
	if len(r.damage) < 1000 {
		r.damage = append(r.damage, e)
	}
}

func (r *Reader) addRequest(m meta, body []byte, off int64) {
	p := &pend{id: m.id, off: off, req: bytes.Clone(body), reqMeta: m}
	if old := r.byID[m.id]; old != nil && !old.hasResp {
		// A second request with the same ID: a response from now on is
		// this one's, so the first will never get one.
		old.closed = true
	}
	if e := r.early[m.id]; e != nil {
		delete(r.early, m.id)
		p.resp, p.respMeta, p.hasResp, p.respOff = e.resp, e.respMeta, true, e.respOff
	}
	r.byID[m.id] = p
	r.queue = append(r.queue, p)
}

func (r *Reader) addResponse(m meta, body []byte, off int64) {
	if p := r.byID[m.id]; p != nil && !p.hasResp && !p.closed {
		p.resp, p.respMeta, p.hasResp, p.respOff = bytes.Clone(body), m, true, off
		return
	}
	if len(r.early) >= r.o.maxPending {
		r.stats.Orphans++
		return
	}
	r.early[m.id] = &pend{id: m.id, resp: bytes.Clone(body), respMeta: m, hasResp: true, respOff: off}
}

// emitReady turns answered requests at the head of the queue into
// exchanges; all is set at the end of the file.
func (r *Reader) emitReady(all bool) {
	n := 0
	for n < len(r.queue) {
		p := r.queue[n]
		waited := time.Duration(r.latest - p.reqMeta.ts)
		if !p.hasResp && !p.closed && !all && len(r.queue)-n <= r.o.maxPending && waited <= r.o.window {
			break
		}
		if r.byID[p.id] == p {
			delete(r.byID, p.id)
		}
		if !p.hasResp {
			r.stats.Unanswered++
		}
		r.build(p)
		r.queue[n] = nil
		n++
	}
	r.queue = r.queue[n:]
	if len(r.queue) == 0 {
		r.queue = r.queue[:0:0]
	}
}

func (r *Reader) finish() {
	r.emitReady(true)
	r.stats.Orphans += int64(len(r.early))
	r.early = nil
	r.ended = true
}

// build parses a request and its response (if any) through httpstream and
// queues the exchanges it yields.
func (r *Reader) build(p *pend) {
	t := timing(p.reqMeta, p.respMeta, p.hasResp)
	r.collect.out = r.collect.out[:0]
	r.collect.kind = ""
	c := httpstream.New(httpstream.Config{
		ID:        r.nextID,
		Client:    httpstream.Side0,
		StartSeen: true,
		MaxBody:   r.o.MaxBody,
	}, &r.collect)
	c.Feed(httpstream.Side0, p.req, t.RequestStart)
	c.End(httpstream.Side0, t.RequestEnd, true)
	if p.hasResp {
		c.Feed(httpstream.Side1, p.resp, t.ResponseStart)
		c.End(httpstream.Side1, t.ResponseEnd, true)
	}
	c.Close()
	if r.collect.kind != "" && r.collect.kind != httpstream.KindOther {
		if r.stats.Unsupported == nil {
			r.stats.Unsupported = map[string]int64{}
		}
		r.stats.Unsupported[r.collect.kind]++
		return
	}
	if len(r.collect.out) == 0 || r.collect.kind == httpstream.KindOther {
		r.report(p.off, p.id, ErrNotHTTP)
		return
	}
	r.nextID++
	for _, x := range r.collect.out {
		x.Timing = t
		if !p.hasResp {
			x.Timing.ResponseStart, x.Timing.ResponseEnd = 0, 0
		}
		r.out = append(r.out, x)
	}
}

// timing derives the four timestamps. GoReplay 1.3 and later write, for
// each message, when its first packet was seen and how long it took to
// its last; that is what Writer writes too, so a round trip is exact.
// Files from before 1.0 have no latency field, and in the oldest a
// response's third field is the round trip in nanoseconds, not a time:
// such a small value is added to the request's start.
func timing(req, resp meta, hasResp bool) session.Timing {
	t := session.Timing{RequestStart: req.ts, RequestEnd: req.ts}
	if req.lat > 0 {
		t.RequestEnd = req.ts + req.lat
	}
	if !hasResp {
		return t
	}
	if !resp.hasLat && resp.ts < req.ts/2 && resp.ts >= 0 {
		t.ResponseEnd = req.ts + resp.ts
		t.ResponseStart = t.ResponseEnd
		return t
	}
	t.ResponseStart, t.ResponseEnd = resp.ts, resp.ts
	if resp.lat > 0 {
		t.ResponseEnd = resp.ts + resp.lat
	}
	return t
}

// meta is a parsed meta line.
type meta struct {
	typ    byte
	id     string
	ts     int64
	lat    int64
	hasLat bool
}

// parseMeta splits a payload into its meta line and raw bytes. Fields after
// the fourth (later GoReplay versions may add some) are ignored.
func parseMeta(p []byte) (meta, []byte, bool) {
	nl := bytes.IndexByte(p, '\n')
	if nl < 0 {
		return meta{}, nil, false
	}
	line := bytes.TrimSuffix(p[:nl], []byte{'\r'})
	f := bytes.Fields(line)
	if len(f) < 3 || len(f[0]) != 1 || f[0][0] < TypeRequest || f[0][0] > TypeReplayed {
		return meta{}, nil, false
	}
	ts, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return meta{}, nil, false
	}
	m := meta{typ: f[0][0], id: string(f[1]), ts: ts}
	if len(f) >= 4 {
		lat, err := strconv.ParseInt(string(f[3]), 10, 64)
		if err != nil {
			return meta{}, nil, false
		}
		m.lat, m.hasLat = lat, true
	}
	return m, p[nl+1:], true
}

// collector gathers what httpstream emits for one payload pair.
type collector struct {
	out  []*session.Exchange
	kind string
}

func (c *collector) RequestStarted(*session.Exchange) {}
func (c *collector) Exchange(x *session.Exchange)     { c.out = append(c.out, x) }
func (c *collector) Dropped(*session.Exchange)        {}
func (c *collector) Unsupported(kind string)          { c.kind = kind }
func (c *collector) Orphan()                          {}
