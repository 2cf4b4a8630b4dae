package har

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/reprise-tool/reprise/capture/internal/infile"
	"github.com/reprise-tool/reprise/session"
)

// Sentinel errors. An *EntryError wraps one of them; test with errors.Is.
var (
	// ErrNotHAR means the input is not a JSON object with log.entries: not
	// a HAR file, or one cut before its entries.
	ErrNotHAR = errors.New("not a HAR file (no log.entries)")
	// ErrSyntax means the JSON is broken (a cut file, a stray byte): the
	// entries before it were returned, nothing after it can be.
	ErrSyntax = errors.New("broken JSON")
	// ErrBadEntry means one entry is well-formed JSON but not a usable HAR
	// entry (a field missing or of the wrong type, a value out of range);
	// it is skipped and reading goes on.
	ErrBadEntry = errors.New("bad HAR entry")
)

// EntryError reports one entry that could not be read, or where the file
// broke.
type EntryError struct {
	Path string // the file, or "" for an unnamed stream
	// Index is the entry's position in log.entries, from 0 (-1: outside
	// the entries).
	Index int
	// Offset is the byte offset in the (uncompressed) input where the
	// reader was when it found the problem.
	Offset int64
	Err    error
}

func (e *EntryError) Error() string {
	name := e.Path
	if name == "" {
		name = "HAR file"
	}
	if e.Index < 0 {
		return fmt.Sprintf("%s: at byte %d: %v", name, e.Offset, e.Err)
	}
	return fmt.Sprintf("%s: entry %d (byte %d): %v", name, e.Index, e.Offset, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Stats counts what a Reader read.
type Stats struct {
	Entries   int64 `json:"entries"`   // entries read, good or bad
	Exchanges int64 `json:"exchanges"` // exchanges returned
	Filtered  int64 `json:"filtered"`  // entries left out by the Host option
	// Unsupported counts entries left out because Reprise cannot replay
	// them, by kind: "websocket" (a browser HAR keeps its socket as an
	// entry with status 101), or "scheme:NAME" for URLs that are not
	// http or https (data:, blob:, an extension's).
	Unsupported map[string]int64 `json:"unsupported,omitempty"`
	Damaged     int64            `json:"damaged"` // entries reported as *EntryError
	// Hosts counts entries by the host of their URL, before filtering:
	// a browser HAR holds requests to many hosts.
	Hosts map[string]int64 `json:"hosts,omitempty"`
}

// Option configures a Reader.
type Option func(*options) error

type options struct {
	infile.Settings
	hosts []string
}

// DefaultMaxBody is the body cap when MaxBody is not given.
const DefaultMaxBody = 1 << 20

// Name sets the file name used in errors.
func Name(path string) Option { return infile.Name[options](path) }

// Host keeps only entries whose URL host (without port, compared without
// regard to case) is one of hosts.
func Host(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			if h == "" {
				return errors.New("har: Host: empty host name")
			}
			o.hosts = append(o.hosts, strings.ToLower(h))
		}
		return nil
	}
}

// MaxBody caps the body bytes kept per message (default DefaultMaxBody);
// longer bodies are truncated and flagged, as capture's body cap does.
func MaxBody(n int64) Option { return infile.MaxBody[options]("har", n) }

// FirstConnID sets the first Conn.ID given out (default 1), for a caller
// that reads several files into one recording.
func FirstConnID(id uint64) Option { return infile.FirstConnID[options](id) }

// Reader reads exchanges from a HAR file, one entry at a time: it walks
// the JSON tokens down to log.entries and decodes one entry at a time, so
// a large HAR is never held in memory as a whole.
//
// Damage is reported as session.Reader reports it: a bad entry gives one
// *EntryError (wrapping ErrBadEntry, with its index) and Next goes on with
// the next entry; broken JSON gives one *EntryError wrapping ErrSyntax, and
// then io.EOF, since nothing after it can be trusted. Damage lists every
// report. A Reader is not safe for concurrent use.
type Reader struct {
	o   options
	dec *json.Decoder
	infile.Closer

	started bool // positioned inside log.entries
	done    bool
	index   int
	stats   Stats
	damage  []*EntryError
	conns   map[string]uint64 // HAR connection -> Conn.ID
	next    map[uint64]int    // Conn.ID -> next Index
	nextID  uint64
}

var _ session.Source = (*Reader)(nil)

// NewReader returns a Reader of the HAR stream r, gzip'd or not (detected
// from the content).
func NewReader(r io.Reader, opts ...Option) (*Reader, error) {
	o := options{Settings: infile.Settings{MaxBody: DefaultMaxBody, FirstConn: 1}}
	if err := infile.Apply(&o, opts); err != nil {
		return nil, err
	}
	src, err := infile.Reader(r)
	if err != nil {
		return nil, fmt.Errorf("har: %s: %w", o.Path, err)
	}
	rd := &Reader{o: o, conns: map[string]uint64{}, next: map[uint64]int{}, nextID: o.FirstConn}
	rd.dec = json.NewDecoder(src)
	return rd, nil
}

// Open opens the HAR file at path; Close (of the embedded
// infile.Closer) closes it. For NewReader, Close does nothing.
func Open(path string, opts ...Option) (*Reader, error) {
	return infile.Open(path, func(f io.Reader) (*Reader, error) {
		return NewReader(f, append([]Option{Name(path)}, opts...)...)
	})
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Damage returns every report so far, in file order.
func (r *Reader) Damage() []*EntryError { return r.damage }

// NextConnID returns the Conn.ID the next new connection would get.
func (r *Reader) NextConnID() uint64 { return r.nextID }

// Next returns the next exchange, an *EntryError, io.EOF at the end, or a
// read error.
func (r *Reader) Next() (*session.Exchange, error) {
	if r.done {
		return nil, io.EOF
	}
	if !r.started {
		if err := r.seekEntries(); err != nil {
			r.done = true
			return nil, r.fail(-1, err)
		}
		r.started = true
	}
	for {
		if !r.dec.More() {
			r.done = true
			if _, err := r.dec.Token(); err != nil {
				return nil, r.fail(-1, err)
			}
			return nil, io.EOF
		}
		i := r.index
		r.index++
		r.stats.Entries++
		var raw json.RawMessage
		if err := r.dec.Decode(&raw); err != nil {
			r.done = true
			return nil, r.fail(i, err)
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, r.report(i, fmt.Errorf("%w: %v", ErrBadEntry, err))
		}
		if kind := unsupported(&e); kind != "" {
			if r.stats.Unsupported == nil {
				r.stats.Unsupported = map[string]int64{}
			}
			r.stats.Unsupported[kind]++
			continue
		}
		x, host, err := r.exchange(&e)
		if host != "" {
			if r.stats.Hosts == nil {
				r.stats.Hosts = map[string]int64{}
			}
			r.stats.Hosts[host]++
		}
		if err != nil {
			return nil, r.report(i, fmt.Errorf("%w: %v", ErrBadEntry, err))
		}
		if !r.keep(host) {
			r.stats.Filtered++
			continue
		}
		r.assignConn(x, &e)
		r.stats.Exchanges++
		return x, nil
	}
}

// unsupported returns the kind of an entry Reprise cannot replay, or "".
func unsupported(e *entry) string {
	scheme, _, ok := strings.Cut(e.Request.URL, ":")
	scheme = strings.ToLower(scheme)
	switch {
	case !ok:
		return "" // reported as a bad URL
	case scheme == "ws" || scheme == "wss" || e.Response.Status == 101:
		return "websocket"
	case scheme != "http" && scheme != "https":
		return "scheme:" + clip(scheme)
	}
	return ""
}

func (r *Reader) keep(host string) bool {
	if len(r.o.hosts) == 0 {
		return true
	}
	for _, h := range r.o.hosts {
		if h == host {
			return true
		}
	}
	return false
}

// assignConn gives x the connection its entry names, or one of its own.
func (r *Reader) assignConn(x *session.Exchange, e *entry) {
	key := e.Connection
	if key != "" {
		key = x.Conn.Server.String() + "|" + key
	}
	id, ok := r.conns[key]
	if !ok || key == "" {
		id = r.nextID
		r.nextID++
		if key != "" {
			r.conns[key] = id
		}
	}
	x.Conn.ID = id
	x.Index = r.next[id]
	r.next[id]++
}

// seekEntries walks the tokens to the first entry of log.entries.
func (r *Reader) seekEntries() error {
	if err := r.expectDelim('{'); err != nil {
		return err
	}
	if !r.findKey("log") {
		return ErrNotHAR
	}
	if err := r.expectDelim('{'); err != nil {
		return err
	}
	if !r.findKey("entries") {
		return ErrNotHAR
	}
	return r.expectDelim('[')
}

func (r *Reader) expectDelim(d json.Delim) error {
	t, err := r.dec.Token()
	if err != nil {
		return err
	}
	if t != d {
		return ErrNotHAR
	}
	return nil
}

// findKey skips the members of the current object up to key.
func (r *Reader) findKey(key string) bool {
	for r.dec.More() {
		t, err := r.dec.Token()
		if err != nil {
			return false
		}
		if k, ok := t.(string); ok && k == key {
			return true
		}
		var skip json.RawMessage
		if err := r.dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

func (r *Reader) fail(i int, err error) error {
	if !errors.Is(err, ErrNotHAR) {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		err = fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return r.report(i, err)
}

func (r *Reader) report(i int, err error) error {
	e := &EntryError{Path: r.o.Path, Index: i, Offset: r.dec.InputOffset(), Err: err}
	r.stats.Damaged++
	if len(r.damage) < 1000 {
		r.damage = append(r.damage, e)
	}
	return e
}

// BytesRead returns the (uncompressed) bytes of the input read so far.
func (r *Reader) BytesRead() int64 { return r.dec.InputOffset() }
