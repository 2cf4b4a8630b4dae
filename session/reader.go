package session

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// ReaderOption configures a Reader; options are checked by NewReader.
type ReaderOption func(*readerOptions) error

type readerOptions struct {
	path         string
	maxDamage    int
	maxTimelines int
	maxConns     int
	keepBody     func(*Exchange) bool // nil: every response body
}

// DefaultMaxTimelines is how many session timelines a Reader keeps unless
// told otherwise.
const DefaultMaxTimelines = 1 << 18

// MaxTimelines bounds how many session timelines a Reader keeps in memory
// (default DefaultMaxTimelines); later ones are counted in
// Stats.TimelinesNotKept, so a file of any length cannot grow the reader
// without end. Timelines can always be recomputed from the exchanges.
func MaxTimelines(n int) ReaderOption {
	return func(o *readerOptions) error {
		if n < 0 {
			return fmt.Errorf("max timelines %d: use 0 or more", n)
		}
		o.maxTimelines = n
		return nil
	}
}

// DefaultMaxConns is how many connection records a Reader keeps unless
// told otherwise.
const DefaultMaxConns = 1 << 20

// MaxConns bounds how many connection records (ConnInfo) a Reader keeps
// in memory (default DefaultMaxConns); later ones are counted in
// Stats.ConnsNotKept. A replay goes by the exchanges' connection ids for
// a connection without its record.
func MaxConns(n int) ReaderOption {
	return func(o *readerOptions) error {
		if n < 0 {
			return fmt.Errorf("max connections %d: use 0 or more", n)
		}
		o.maxConns = n
		return nil
	}
}

// ResponseBodies makes the Reader copy a recorded response body into the
// exchange only when keep says it is wanted; the others come with an
// empty Body and their recorded BodySize. keep is called for each
// exchange whose recorded response body is not empty, with everything
// else of it decoded, and is called by Next and Read, on their goroutine.
// A body left out is neither copied nor held: a replay whose plan learns
// nothing from a response reads it for its status and size alone (the
// block it is in is decompressed whole all the same). nil keeps every
// body, the default. Reader.FilterResponseBodies sets it on an open
// reader.
func ResponseBodies(keep func(*Exchange) bool) ReaderOption {
	return func(o *readerOptions) error { o.keepBody = keep; return nil }
}

// FilterResponseBodies sets ResponseBodies on an open reader, for the
// exchanges read from now on; it reports true (see BodyFilter).
func (r *Reader) FilterResponseBodies(keep func(*Exchange) bool) bool {
	r.o.keepBody = keep
	return true
}

// WithPath names the file in errors (Open sets it).
func WithPath(path string) ReaderOption {
	return func(o *readerOptions) error { o.path = path; return nil }
}

// MaxDamageKept bounds how many damage reports Damage keeps (default 1000);
// later ones are still counted in Stats.
func MaxDamageKept(n int) ReaderOption {
	return func(o *readerOptions) error {
		if n < 1 {
			return fmt.Errorf("max damage kept %d: use at least 1", n)
		}
		o.maxDamage = n
		return nil
	}
}

// Stats describes what a Reader has read and skipped so far.
type Stats struct {
	Blocks    int64 `json:"blocks"`    // good blocks read
	Records   int64 `json:"records"`   // records read from them
	Exchanges int64 `json:"exchanges"` // exchange records returned
	Timelines int64 `json:"timelines"` // timeline records read
	// TimelinesNotKept counts timelines read but not kept (MaxTimelines).
	TimelinesNotKept int64 `json:"timelines_not_kept"`
	// Conns counts connection records read, ConnsNotKept those read but
	// not kept (MaxConns).
	Conns          int64 `json:"conns,omitempty"`
	ConnsNotKept   int64 `json:"conns_not_kept,omitempty"`
	UnknownRecords int64 `json:"unknown_records"` // records of kinds this reader skips
	// Damaged counts the damaged regions found (each one is a
	// CorruptError); SkippedBytes and LostRecords add up what they cost.
	// LostRecords counts only records that damaged blocks' readable
	// headers claimed, so it can be an undercount.
	Damaged      int64 `json:"damaged"`
	SkippedBytes int64 `json:"skipped_bytes"`
	LostRecords  int64 `json:"lost_records"`
	// TornTail is set when the file ends inside a block (a writer killed
	// mid-write): the last partial block is among the damage.
	TornTail bool `json:"torn_tail"`
	// Finished is set when the footer written by Close was reached; a file
	// without one was cut short (or written WithoutIndex).
	Finished bool  `json:"finished"`
	Bytes    int64 `json:"bytes"` // bytes consumed from the file
}

// Reader reads a recording as a stream. It holds one block at a time, so
// its memory does not grow with the file's length.
//
// Damage: Next and Read return every record before a damaged region, then
// one *CorruptError naming the file and byte offset. The Reader has then
// already found the next good block: calling Next again continues with its
// records, and the error's Skipped and Records say what was passed over. A
// consumer that wants to stop at the first damage simply stops there. At the
// end, Next returns io.EOF; Damage lists every damage report and Stats
// counts what was lost. A file that ends inside a block or without its
// footer (a killed writer, or one still writing) reports a CorruptError
// wrapping ErrTruncated at its end, then io.EOF.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	o   readerOptions
	win window
	dec *zstd.Decoder

	raw  []byte // the current block's records (decoded)
	recs []byte // the part of raw not yet read
	blk  int64  // offset of the current block

	meta      Metadata
	haveMeta  bool
	metaFinal bool // meta came from the trailer; the header's copy is older
	timelines []Timeline
	conns     []ConnInfo
	index     *Index

	stats   Stats
	damage  []*CorruptError
	cur     *CorruptError // damage being measured, returned when a good block or the end is found
	pending error         // returned by the next Read
	err     error         // sticky: io.EOF or a read error
	ex      Exchange      // Next's scratch, never handed out
}

var _ Source = (*Reader)(nil)

// NewReader checks the file header, reads the first block (which holds the
// metadata) and returns a Reader positioned at the first exchange. It fails
// with ErrNotRecording or a *VersionError when the header is wrong; damage
// later on is reported by Next.
func NewReader(r io.Reader, opts ...ReaderOption) (*Reader, error) {
	o := readerOptions{maxDamage: 1000, maxTimelines: DefaultMaxTimelines, maxConns: DefaultMaxConns}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	rd := &Reader{o: o}
	if err := rd.begin(r); err != nil {
		return nil, err
	}
	return rd, nil
}

// checkHeader checks the 16-byte file header h.
func checkHeader(path string, h []byte, err error) error {
	name := path
	if name == "" {
		name = "recording"
	}
	if len(h) < 8 || [8]byte(h[:8]) != fileMagic {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fmt.Errorf("%s: %w", name, ErrNotRecording)
	}
	if len(h) < headerSize {
		return &CorruptError{Path: path, Offset: int64(len(h)), Err: ErrTruncated}
	}
	major, minor := binary.LittleEndian.Uint16(h[8:]), binary.LittleEndian.Uint16(h[10:])
	if major != FormatMajor {
		return &VersionError{Path: path, Major: major, Minor: minor}
	}
	return nil
}

// begin starts reading src: it checks the header and loads the first
// block, keeping any metadata and index already set (from a trailer).
func (r *Reader) begin(src io.Reader) error {
	r.win = window{r: src}
	h, err := r.win.peek(headerSize)
	if err := checkHeader(r.o.path, h, err); err != nil {
		return err
	}
	r.win.discard(headerSize)
	if r.dec, err = newDecoder(); err != nil {
		return err
	}
	// Load the first block so Metadata is known before the first Next.
	r.pending = r.nextBlock()
	r.readLeadingRecords()
	return nil
}

// release frees the buffers and decoder of a reader that reached the end,
// keeping what it learned (metadata, timelines, stats, damage).
func (r *Reader) release() {
	if r.win.r != nil {
		r.stats.Bytes = r.win.off
	}
	r.win = window{}
	r.raw, r.recs = nil, nil
	if r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
}

func (r *Reader) name() string {
	if r.o.path == "" {
		return "recording"
	}
	return r.o.path
}

func newDecoder() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxBlockSize),
		zstd.WithDecoderMaxWindow(MaxBlockSize),
	)
}

// readLeadingRecords consumes the non-exchange records at the front of the
// current block (the metadata), so Metadata works right after NewReader.
func (r *Reader) readLeadingRecords() {
	for r.pending == nil && len(r.recs) > 0 {
		kind, _, _, err := splitRecord(r.recs)
		if err != nil || kind == KindExchange {
			return
		}
		if err := r.readRecord(nil); err != nil {
			r.pending = err
			return
		}
	}
}

// Metadata returns the latest metadata record read: the header's copy at
// first, the final one (with complete counters) once the end is reached.
// Open loads the final one up front when the file has a trailer.
func (r *Reader) Metadata() Metadata { return r.meta }

// Timelines returns the session timelines read so far (all of them once
// Next has returned io.EOF, up to MaxTimelines).
func (r *Reader) Timelines() []Timeline { return r.timelines }

// Conns returns the connection records read so far (format 1.2; none in
// an older file). They follow their connections' exchanges in the file,
// so all are known only once Next has returned io.EOF.
func (r *Reader) Conns() []ConnInfo { return r.conns }

// Index returns the trailer index, or nil when it has not been read (it is
// read at the end of the stream, or up front by Open).
func (r *Reader) Index() *Index { return r.index }

// Stats returns what has been read and skipped so far.
func (r *Reader) Stats() Stats {
	s := r.stats
	if r.win.r != nil {
		s.Bytes = r.win.off
	}
	return s
}

// Damage returns the damage found so far, in file order.
func (r *Reader) Damage() []*CorruptError { return r.damage }

// Next returns the next exchange in a newly allocated Exchange, io.EOF at
// the end, or a *CorruptError after which reading may go on (see Reader).
func (r *Reader) Next() (*Exchange, error) {
	ex := new(Exchange)
	if err := r.Read(ex); err != nil {
		return nil, err
	}
	return ex, nil
}

// Read decodes the next exchange into ex, reusing ex's slices (headers,
// bodies, warnings, tokens) so a loop over a file allocates little. Strings
// in ex are fresh and may be kept; the slices are overwritten by the next
// Read into the same ex. Errors are as for Next.
func (r *Reader) Read(ex *Exchange) error {
	for {
		if r.pending != nil {
			err := r.pending
			r.pending = nil
			return err
		}
		if r.err != nil {
			return r.err
		}
		if len(r.recs) == 0 {
			if err := r.nextBlock(); err != nil {
				return err
			}
			continue
		}
		kind, _, _, _ := splitRecord(r.recs)
		if kind == KindExchange && ex != nil {
			if err := r.readRecord(ex); err != nil {
				return err
			}
			return nil
		}
		if err := r.readRecord(nil); err != nil {
			return err
		}
	}
}

// splitRecord returns the kind and body of the first record in b, and the
// record's whole length.
func splitRecord(b []byte) (RecordKind, []byte, int, error) {
	d := decoder{b: b}
	kind := d.uvarint()
	body := d.bytes(d.count(1))
	if d.err != nil {
		return 0, nil, 0, d.err
	}
	return RecordKind(kind), body, len(b) - len(d.b), nil
}

// readRecord consumes one record; ex receives it if it is an exchange.
func (r *Reader) readRecord(ex *Exchange) error {
	kind, body, n, err := splitRecord(r.recs)
	if err != nil {
		return r.badRecord(err)
	}
	r.recs = r.recs[n:]
	r.stats.Records++
	switch kind {
	case KindExchange:
		if ex == nil {
			return nil
		}
		if err := decodeExchangeKeep(body, ex, r.o.keepBody); err != nil {
			return r.badRecord(fmt.Errorf("exchange: %w", err))
		}
		r.stats.Exchanges++
	case KindMetadata:
		var m Metadata
		if err := json.Unmarshal(body, &m); err != nil {
			return r.badRecord(fmt.Errorf("metadata: %w", err))
		}
		if !r.metaFinal {
			r.meta = m
		}
		r.haveMeta = true
	case KindTimeline:
		if len(r.timelines) >= r.o.maxTimelines {
			// Not kept, so not decoded either: a reader that keeps none
			// (MaxTimelines(0)) pays nothing for them.
			r.stats.Timelines++
			r.stats.TimelinesNotKept++
			break
		}
		var t Timeline
		if err := json.Unmarshal(body, &t); err != nil {
			return r.badRecord(fmt.Errorf("timeline: %w", err))
		}
		r.stats.Timelines++
		r.timelines = append(r.timelines, t)
	case KindConn:
		var c ConnInfo
		if err := decodeConn(body, &c); err != nil {
			return r.badRecord(fmt.Errorf("connection: %w", err))
		}
		r.stats.Conns++
		if len(r.conns) < r.o.maxConns {
			r.conns = append(r.conns, c)
		} else {
			r.stats.ConnsNotKept++
		}
	case KindIndex:
		ix := new(Index)
		if err := json.Unmarshal(body, ix); err != nil {
			return r.badRecord(fmt.Errorf("index: %w", err))
		}
		r.index = ix
	default:
		r.stats.UnknownRecords++
	}
	return nil
}

// badRecord reports a record that failed to decode inside a good block and
// drops the rest of the block.
func (r *Reader) badRecord(err error) error {
	ce := &CorruptError{Path: r.o.path, Offset: r.blk, Err: fmt.Errorf("%w: %w", ErrBadRecord, err)}
	r.stats.LostRecords += int64(countRecords(r.recs))
	r.recs = nil
	r.report(ce)
	return ce
}

// countRecords counts the records framed in b, stopping at bad framing.
func countRecords(b []byte) int {
	n := 0
	for len(b) > 0 {
		_, _, m, err := splitRecord(b)
		if err != nil {
			return n + 1
		}
		b = b[m:]
		n++
	}
	return n
}

func (r *Reader) report(ce *CorruptError) {
	r.stats.Damaged++
	r.stats.SkippedBytes += ce.Skipped
	if len(r.damage) < r.o.maxDamage {
		r.damage = append(r.damage, ce)
	}
}

// nextBlock loads the next good block into r.recs. It returns nil, io.EOF,
// a read error, or a *CorruptError describing damage passed over on the
// way (in which case the good block after it, if any, is already loaded).
func (r *Reader) nextBlock() error {
	r.recs = nil
	for {
		start := r.win.off
		b, err := r.win.peek(8)
		if len(b) == 0 && errors.Is(err, io.EOF) {
			// A clean end of blocks, but no footer: the writer never
			// finished (killed, or still writing). Its last records, the
			// final metadata and the index are missing.
			r.damaged(start, errUnfinished, 0)
			return r.end(false)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return r.fatal(err)
		}
		switch {
		case len(b) == 8 && [8]byte(b) == footerMagic:
			if fb, _ := r.win.peek(footerSize); len(fb) == footerSize {
				if _, ok := parseFooter(fb); ok {
					r.win.discard(footerSize)
					return r.end(true)
				}
			}
			r.damaged(start, fmt.Errorf("%w: bad footer", ErrBadBlock), 0)
			r.resync()
			continue
		case len(b) < 8 || [8]byte(b) != blockMagic:
			if len(b) < 8 {
				r.damaged(start, ErrTruncated, 0)
				r.win.discard(len(b))
				return r.end(false)
			}
			r.damaged(start, fmt.Errorf("%w: no sync marker", ErrBadBlock), 0)
			r.resync()
			continue
		}
		hb, err := r.win.peek(blockHeaderSize)
		if len(hb) < blockHeaderSize {
			if err != nil && !errors.Is(err, io.EOF) {
				return r.fatal(err)
			}
			r.damaged(start, ErrTruncated, 0)
			r.win.discard(len(hb))
			return r.end(false)
		}
		var h blockHeader
		if err := h.parse(hb); err != nil {
			r.damaged(start, err, 0)
			r.resync()
			continue
		}
		total := blockHeaderSize + int(h.payloadLen)
		blk, err := r.win.peek(total)
		if len(blk) < total {
			if err != nil && !errors.Is(err, io.EOF) {
				return r.fatal(err)
			}
			r.damaged(start, ErrTruncated, int(h.records))
			r.win.discard(len(blk))
			return r.end(false)
		}
		payload := blk[blockHeaderSize:]
		if crcOf(payload) != h.payloadCRC {
			r.damaged(start, ErrChecksum, int(h.records))
			r.resync()
			continue
		}
		if err := r.decode(&h, payload); err != nil {
			r.damaged(start, fmt.Errorf("%w: %w", ErrBadBlock, err), int(h.records))
			r.resync()
			continue
		}
		r.win.discard(total)
		r.blk = start
		r.stats.Blocks++
		if r.cur != nil {
			return r.closeDamage(start)
		}
		return nil
	}
}

func (r *Reader) decode(h *blockHeader, payload []byte) error {
	if h.codec == codecStored {
		// The window is not touched again until the block is read.
		r.recs = payload
		return nil
	}
	// The decoder sizes its output from the zstd frame, bounded by
	// MaxBlockSize and by what the payload can really decode to, so a
	// forged rawLen allocates no more than that.
	r.growRaw(int(h.rawLen), len(payload))
	raw, err := r.dec.DecodeAll(payload, r.raw[:0])
	if err != nil {
		return err
	}
	if len(raw) != int(h.rawLen) {
		return fmt.Errorf("decoded %d bytes, header says %d", len(raw), h.rawLen)
	}
	r.raw = raw
	r.recs = raw
	return nil
}

// growRaw makes room in r.raw for a block of rawLen bytes decoded from
// payloadLen, with room to spare. A recording's first blocks grow (a
// writer flushes partial blocks until traffic fills them), and the
// decoder allocates each exact: one 4 MiB buffer after another for the
// collector, six in the first 25 MB. Half again, up to a little over a
// default block, is room for the blocks that follow. It never allocates
// more than the payload could decode to (a zstd block of 4 bytes at
// least yields at most 128 KiB), as the decoder itself does not.
func (r *Reader) growRaw(rawLen, payloadLen int) {
	if rawLen <= cap(r.raw) || rawLen > MaxBlockSize || rawLen/(32<<10) > payloadLen {
		return
	}
	r.raw = make([]byte, 0, max(rawLen, min(rawLen+rawLen/2, DefaultBlockSize+DefaultBlockSize/8)))
}

// damaged notes damage at off; consecutive bad spots merge into one report.
func (r *Reader) damaged(off int64, err error, records int) {
	if r.cur == nil {
		r.cur = &CorruptError{Path: r.o.path, Offset: off, Err: err}
	}
	r.cur.Records += records
	r.stats.LostRecords += int64(records)
	if errors.Is(err, ErrTruncated) {
		r.stats.TornTail = true
	}
}

// closeDamage ends the damaged region at off and returns its report.
func (r *Reader) closeDamage(off int64) error {
	ce := r.cur
	r.cur = nil
	ce.Skipped = off - ce.Offset
	r.report(ce)
	return ce
}

// resync passes over the byte at the current position and then everything
// up to the next sync marker (or footer marker), or to the end.
func (r *Reader) resync() {
	r.win.discard(1)
	const scan = 64 << 10
	for {
		b, err := r.win.peek(scan)
		if len(b) < 8 {
			r.win.discard(len(b))
			return
		}
		i := bytes.Index(b, blockMagic[:4]) // "\xc3RPZ" starts both markers
		switch {
		case i < 0:
			r.win.discard(len(b) - 3)
		case i+8 > len(b):
			if err != nil { // the end: no room for a marker
				r.win.discard(len(b))
				return
			}
			r.win.discard(i) // the candidate straddles the window: look again
		default:
			if m := [8]byte(b[i : i+8]); m == blockMagic || m == footerMagic {
				r.win.discard(i)
				return
			}
			r.win.discard(i + 1)
		}
	}
}

// end finishes the stream: any open damage is reported first.
func (r *Reader) end(finished bool) error {
	r.stats.Finished = finished
	r.err = io.EOF
	if r.cur != nil {
		return r.closeDamage(r.win.off)
	}
	return io.EOF
}

func (r *Reader) fatal(err error) error {
	r.err = fmt.Errorf("%s: read at byte %d: %w", r.name(), r.win.off, err)
	return r.err
}

var errUnfinished = fmt.Errorf("%w: no footer, the writer did not finish (killed, or still recording)", ErrTruncated)

// window is a growable look-ahead buffer over the file: a block is peeked
// whole and decoded in place, and when it is damaged the bytes are still
// there to search for the next sync marker.
type window struct {
	r     io.Reader
	buf   []byte
	start int   // first unread byte in buf
	off   int64 // file offset of buf[start]
	err   error
}

const minWindow = 256 << 10

// peek returns the next n bytes without consuming them, or fewer with the
// error that stopped the read (io.EOF at the end). The slice is valid until
// the next peek.
func (w *window) peek(n int) ([]byte, error) {
	if len(w.buf)-w.start >= n {
		return w.buf[w.start : w.start+n], nil
	}
	if w.err != nil {
		return w.buf[w.start:], w.err
	}
	// Move the unread bytes to the front. The buffer grows only as bytes
	// actually arrive (doubling, up to n rounded up), so a forged length
	// costs at most twice the bytes the file really has.
	if w.start > 0 {
		w.buf = append(w.buf[:0], w.buf[w.start:]...)
		w.start = 0
	}
	for len(w.buf) < n && w.err == nil {
		if len(w.buf) == cap(w.buf) {
			size := min(max(2*cap(w.buf), minWindow), (n+minWindow-1)/minWindow*minWindow)
			w.buf = append(make([]byte, 0, size), w.buf...)
		}
		m, err := w.r.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+m]
		if err != nil {
			w.err = err
		} else if m == 0 {
			w.err = io.ErrNoProgress
		}
	}
	if len(w.buf) >= n {
		return w.buf[:n], nil
	}
	return w.buf, w.err
}

func (w *window) discard(n int) {
	n = min(n, len(w.buf)-w.start)
	w.start += n
	w.off += int64(n)
}

// Close releases the decoder and buffers. It does not close the
// underlying io.Reader.
func (r *Reader) Close() error {
	r.release()
	if r.err == nil {
		r.err = errReaderClosed
	}
	return nil
}

var errReaderClosed = errors.New("recording reader is closed")
