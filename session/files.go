package session

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// RotateSize makes Create start a new part once the current one holds n
// bytes (a part may exceed n by up to one block). Capture's --rotate-size.
func RotateSize(n int64) WriterOption {
	return func(o *writerOptions) error {
		if n < 64<<10 {
			return fmt.Errorf("rotate size %d too small: use at least 64 KiB", n)
		}
		o.rotateSize = n
		return nil
	}
}

// RotateEvery makes Create start a new part every d. Capture's
// --rotate-every.
func RotateEvery(d time.Duration) WriterOption {
	return func(o *writerOptions) error {
		if d < time.Second {
			return fmt.Errorf("rotate interval %v too short: use at least 1s", d)
		}
		o.rotateEvery = d
		return nil
	}
}

// FileWriter writes a recording to a file, or to a series of parts when
// RotateSize or RotateEvery is given. Without rotation the file is path
// itself; with it, parts are named path's stem plus a part number:
// traffic.rpz becomes traffic.0001.rpz, traffic.0002.rpz, ... Each part is
// a whole recording with its own header and metadata, readable alone, and
// its counters are the part's own share, so the parts' counters add up to
// the run's. Open("traffic.*.rpz") reads the parts back as one.
//
// A FileWriter is safe for concurrent use.
type FileWriter struct {
	mu      sync.Mutex
	path    string
	meta    Metadata
	opts    []WriterOption
	o       writerOptions
	cur     *Writer
	started time.Time
	part    int
	paths   []string
	base    Counters // cumulative counters when the current part began
	total   Counters // latest cumulative counters
	now     func() time.Time
	closed  bool
}

// Create creates the recording file at path (or its first part) and writes
// the header and meta. It fails rather than overwrite an existing file.
func Create(path string, meta Metadata, opts ...WriterOption) (*FileWriter, error) {
	var o writerOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	fw := &FileWriter{path: path, meta: meta, opts: opts, o: o, now: time.Now}
	if err := fw.openPart(); err != nil {
		return nil, err
	}
	return fw, nil
}

func (fw *FileWriter) rotating() bool { return fw.o.rotateSize > 0 || fw.o.rotateEvery > 0 }

// partPath names part n (from 1).
func (fw *FileWriter) partPath(n int) string {
	if !fw.rotating() {
		return fw.path
	}
	ext := filepath.Ext(fw.path)
	if ext == "" {
		ext = Ext
	}
	return fmt.Sprintf("%s.%04d%s", strings.TrimSuffix(fw.path, filepath.Ext(fw.path)), n, ext)
}

func (fw *FileWriter) openPart() error {
	fw.part++
	p := fw.partPath(fw.part)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create recording: %w (choose another name or remove the file)", err)
	}
	meta := fw.meta
	meta.Counters = Counters{}
	if fw.part > 1 {
		meta.Start, meta.End = fw.now().UnixNano(), 0
	}
	// Each part is a plain Writer (the rotation happens here), and the
	// next part reuses the last one's buffers and encoder.
	w := fw.cur
	if w == nil {
		noRotate := func(o *writerOptions) error { o.rotateSize, o.rotateEvery = 0, 0; return nil }
		w, err = NewWriter(f, meta, append(fw.opts[:len(fw.opts):len(fw.opts)], noRotate)...)
	} else {
		err = w.Reset(f, meta)
	}
	if err != nil {
		f.Close()
		os.Remove(p)
		return err
	}
	w.mu.Lock()
	w.closer = f
	w.mu.Unlock()
	fw.cur, fw.started = w, fw.now()
	fw.paths = append(fw.paths, p)
	return nil
}

// rotate closes the current part (with its share of the counters) and
// opens the next.
func (fw *FileWriter) rotate() error {
	fw.cur.UpdateCounters(subCounters(fw.total, fw.base))
	if fw.o.rotateEvery > 0 {
		m := fw.cur.Metadata()
		if m.End == 0 {
			m.End = fw.now().UnixNano()
		}
		fw.cur.SetMetadata(m)
	}
	err := fw.cur.Close()
	fw.base = cloneCounters(fw.total)
	if err != nil {
		return err
	}
	return fw.openPart()
}

func (fw *FileWriter) maybeRotate() error {
	if !fw.rotating() {
		return nil
	}
	if (fw.o.rotateSize > 0 && fw.cur.Offset() >= fw.o.rotateSize) ||
		(fw.o.rotateEvery > 0 && fw.now().Sub(fw.started) >= fw.o.rotateEvery) {
		return fw.rotate()
	}
	return nil
}

// WriteExchange writes ex to the current part, starting a new part first
// when the current one is full or old enough.
func (fw *FileWriter) WriteExchange(ex *Exchange) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed {
		return ErrClosed
	}
	if err := fw.maybeRotate(); err != nil {
		return err
	}
	return fw.cur.WriteExchange(ex)
}

// WriteTimeline writes a session timeline to the current part.
func (fw *FileWriter) WriteTimeline(t *Timeline) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed {
		return ErrClosed
	}
	return fw.cur.WriteTimeline(t)
}

// SetMetadata replaces the metadata of the current and later parts.
func (fw *FileWriter) SetMetadata(m Metadata) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.meta = m
	m.Counters = subCounters(fw.total, fw.base)
	fw.cur.SetMetadata(m)
}

// UpdateCounters takes the run's cumulative counters; each part records
// its own share.
func (fw *FileWriter) UpdateCounters(c Counters) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.total = cloneCounters(c)
	fw.cur.UpdateCounters(subCounters(fw.total, fw.base))
}

// Flush writes buffered records of the current part.
func (fw *FileWriter) Flush() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed {
		return ErrClosed
	}
	return fw.cur.Flush()
}

// Paths returns the files written so far, in order.
func (fw *FileWriter) Paths() []string {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return append([]string(nil), fw.paths...)
}

// Close finishes the current part and closes its file.
func (fw *FileWriter) Close() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed {
		return nil
	}
	fw.closed = true
	return fw.cur.Close()
}

func cloneCounters(c Counters) Counters {
	c.Unsupported = cloneCounts(c.Unsupported)
	c.TLS = cloneCounts(c.TLS)
	return c
}

func cloneCounts(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return nil
	}
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// subCounters returns a-b, field by field (never below zero).
func subCounters(a, b Counters) Counters {
	sub := func(x, y uint64) uint64 {
		if x < y {
			return 0
		}
		return x - y
	}
	out := Counters{
		PacketsSeen:      sub(a.PacketsSeen, b.PacketsSeen),
		PacketsDropped:   sub(a.PacketsDropped, b.PacketsDropped),
		PacketsDuplicate: sub(a.PacketsDuplicate, b.PacketsDuplicate),
		PacketsMalformed: sub(a.PacketsMalformed, b.PacketsMalformed),
		Connections:      sub(a.Connections, b.Connections),
		Exchanges:        sub(a.Exchanges, b.Exchanges),
		Incomplete:       sub(a.Incomplete, b.Incomplete),
	}
	subCounts := func(a, b map[string]uint64) map[string]uint64 {
		var out map[string]uint64
		for k, v := range a {
			if d := sub(v, b[k]); d > 0 {
				if out == nil {
					out = map[string]uint64{}
				}
				out[k] = d
			}
		}
		return out
	}
	out.Unsupported = subCounts(a.Unsupported, b.Unsupported)
	out.TLS = subCounts(a.TLS, b.TLS)
	return out
}

// ReadIndex reads the trailer of the recording at path: its final metadata
// and index, without reading the records. It returns an error wrapping
// ErrNoIndex when the file has no trailer (cut short, or written
// WithoutIndex); the file is still readable with Open.
func ReadIndex(path string) (*Index, Metadata, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Metadata{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, Metadata{}, err
	}
	ix, m, err := readTrailer(f, st.Size())
	if err != nil {
		return nil, Metadata{}, fmt.Errorf("%s: %w", path, err)
	}
	return ix, m, nil
}

// ErrNoIndex means a recording has no readable trailer index; read it in
// full instead.
var ErrNoIndex = errors.New("no trailer index")

func readTrailer(f io.ReaderAt, size int64) (*Index, Metadata, error) {
	var m Metadata
	if size < headerSize+blockHeaderSize+footerSize {
		return nil, m, ErrNoIndex
	}
	var fb [footerSize]byte
	if _, err := f.ReadAt(fb[:], size-footerSize); err != nil {
		return nil, m, err
	}
	off, ok := parseFooter(fb[:])
	// The trailer block is bounded like any block, so a forged offset
	// cannot make this read the whole file into memory.
	if !ok || off < headerSize || off > size-footerSize-blockHeaderSize || size-footerSize-off > MaxBlockSize+blockHeaderSize {
		return nil, m, ErrNoIndex
	}
	blk := make([]byte, size-footerSize-off)
	if _, err := f.ReadAt(blk, off); err != nil {
		return nil, m, err
	}
	r := &Reader{win: window{r: bytes.NewReader(blk)}}
	var err error
	if r.dec, err = newDecoder(); err != nil {
		return nil, m, err
	}
	defer r.dec.Close()
	if err := r.nextBlock(); err != nil {
		return nil, m, fmt.Errorf("%w: %w", ErrNoIndex, err)
	}
	for len(r.recs) > 0 {
		if err := r.readRecord(nil); err != nil {
			return nil, m, fmt.Errorf("%w: %w", ErrNoIndex, err)
		}
	}
	if r.index == nil || !r.haveMeta {
		return nil, m, ErrNoIndex
	}
	return r.index, r.meta, nil
}

// part is one file of a MultiReader.
type part struct {
	path  string
	f     *os.File // open while the part is being read
	r     *Reader  // set up front; reads once the part is activated
	head  Exchange // the part's next exchange, valid when in the heap
	seq   int
	first int64 // earliest exchange time, from the trailer index
}

// MultiReader reads one or more recordings as one stream, merging their
// exchanges by Timing.RequestStart (ties keep file order). Within a file,
// exchanges come in the order they were written.
//
// Memory stays bounded however many files there are: a file whose trailer
// gives its time range is opened only when the merge reaches that time,
// and a file is closed and its buffers freed as soon as it is read to the
// end, so rotated parts are read one or two at a time. Files without a
// trailer are opened at once.
//
// Damage is reported as by Reader: a *CorruptError naming the file and
// offset, after which reading goes on; io.EOF at the end of all files.
type MultiReader struct {
	parts   []*part
	lazy    []*part // not yet opened, by first exchange time
	h       partHeap
	pending []error
	err     error
	o       readerOptions // every part's, but its path
}

var _ Source = (*MultiReader)(nil)

// Open opens the recordings named by paths, each a file name or a glob
// pattern (e.g. "traffic.*.rpz"), for reading as one stream in timestamp
// order. A pattern that matches nothing, a missing file, or a file that is
// not a recording (or has an unsupported version) is an error. When a file
// has a trailer, its final metadata and index are loaded up front.
func Open(paths ...string) (*MultiReader, error) {
	return OpenWith(paths)
}

// OpenWith is Open with reader options, applied to every file: a replay,
// which never looks at the stored session timelines, reads with
// MaxTimelines(0) so that a long recording's timelines (one per login,
// behind a proxy) are neither decoded nor held.
func OpenWith(paths []string, opts ...ReaderOption) (*MultiReader, error) {
	o := readerOptions{maxDamage: 1000, maxTimelines: DefaultMaxTimelines, maxConns: DefaultMaxConns}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	files, err := expand(paths)
	if err != nil {
		return nil, err
	}
	m := &MultiReader{o: o}
	for i, p := range files {
		pt, err := m.openPart(p)
		if err != nil {
			m.Close()
			return nil, err
		}
		pt.seq = i
		m.parts = append(m.parts, pt)
	}
	sort.SliceStable(m.lazy, func(i, j int) bool { return m.lazy[i].first < m.lazy[j].first })
	for _, pt := range m.parts {
		if pt.f != nil {
			m.fill(pt)
		}
	}
	return m, nil
}

// openPart checks a file's header and reads its trailer; a file without a
// trailer (or without exchanges) starts reading at once, the others wait.
func (m *MultiReader) openPart(path string) (*part, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	o := m.o
	o.path = path
	pt := &part{path: path, r: &Reader{o: o}}
	h := make([]byte, headerSize)
	n, err := f.ReadAt(h, 0)
	if err := checkHeader(path, h[:n], err); err != nil {
		f.Close()
		return nil, err
	}
	var ix *Index
	if st, err := f.Stat(); err == nil {
		var final Metadata
		if ix, final, _ = readTrailer(f, st.Size()); ix != nil {
			pt.r.index, pt.r.meta, pt.r.metaFinal, pt.r.haveMeta = ix, final, true, true
		}
	}
	if ix != nil && ix.Exchanges > 0 {
		f.Close()
		pt.first = ix.First
		m.lazy = append(m.lazy, pt)
		return pt, nil
	}
	if err := pt.r.begin(f); err != nil {
		f.Close()
		return nil, err
	}
	pt.f = f
	return pt, nil
}

// activate opens a waiting part and reads its first exchange.
func (m *MultiReader) activate(pt *part) {
	f, err := os.Open(pt.path)
	if err == nil {
		if err = pt.r.begin(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		m.err = err
		m.pending = append(m.pending, err)
		return
	}
	pt.f = f
	m.fill(pt)
}

// fill reads pt's next exchange into its head, queueing damage reports;
// at the end of the part it closes the file and frees the buffers.
func (m *MultiReader) fill(pt *part) {
	for {
		err := pt.r.Read(&pt.head)
		if err == nil {
			heap.Push(&m.h, pt)
			return
		}
		var ce *CorruptError
		if errors.As(err, &ce) {
			m.pending = append(m.pending, err)
			continue
		}
		if err != io.EOF {
			m.pending = append(m.pending, err)
			m.err = err
		}
		pt.r.release()
		if pt.f != nil {
			pt.f.Close()
			pt.f = nil
		}
		return
	}
}

// Read decodes the next exchange into ex, reusing its slices (as
// Reader.Read does).
func (m *MultiReader) Read(ex *Exchange) error {
	if len(m.pending) > 0 {
		err := m.pending[0]
		m.pending = m.pending[1:]
		return err
	}
	if m.err != nil {
		return m.err
	}
	// Open the waiting parts that may hold the next exchange.
	for len(m.lazy) > 0 && (m.h.Len() == 0 || m.lazy[0].first <= m.h[0].head.Timing.RequestStart) {
		pt := m.lazy[0]
		m.lazy = m.lazy[1:]
		m.activate(pt)
	}
	if len(m.pending) > 0 || m.err != nil {
		return m.Read(ex)
	}
	if m.h.Len() == 0 {
		return io.EOF
	}
	pt := heap.Pop(&m.h).(*part)
	// Swap, so the caller gets the head and the part reuses the caller's
	// buffers for its next exchange.
	*ex, pt.head = pt.head, *ex
	m.fill(pt)
	return nil
}

// Next returns the next exchange in timestamp order, newly allocated.
func (m *MultiReader) Next() (*Exchange, error) {
	ex := new(Exchange)
	if err := m.Read(ex); err != nil {
		return nil, err
	}
	return ex, nil
}

// FilterResponseBodies sets ResponseBodies on every file's reader, for
// the exchanges decoded from now on (each file's next exchange is already
// decoded, with its body); it reports true (see BodyFilter).
func (m *MultiReader) FilterResponseBodies(keep func(*Exchange) bool) bool {
	m.o.keepBody = keep
	for _, pt := range m.parts {
		pt.r.o.keepBody = keep
	}
	return true
}

// Paths returns the files being read, in the order given (globs expanded).
func (m *MultiReader) Paths() []string {
	out := make([]string, len(m.parts))
	for i, pt := range m.parts {
		out[i] = pt.path
	}
	return out
}

// Readers returns the per-file readers, in Paths order, for their
// Metadata, Index, Stats and Damage.
func (m *MultiReader) Readers() []*Reader {
	out := make([]*Reader, len(m.parts))
	for i, pt := range m.parts {
		out[i] = pt.r
	}
	return out
}

// Conns returns the connection records of every file, in Paths order,
// as Reader.Conns does for one: complete once the files are read to
// their ends.
func (m *MultiReader) Conns() []ConnInfo {
	var out []ConnInfo
	for _, pt := range m.parts {
		out = append(out, pt.r.conns...)
	}
	return out
}

// Metadata returns each file's metadata, in Paths order.
func (m *MultiReader) Metadata() []Metadata {
	out := make([]Metadata, len(m.parts))
	for i, pt := range m.parts {
		out[i] = pt.r.Metadata()
	}
	return out
}

// Timelines returns the timelines read so far from all files.
func (m *MultiReader) Timelines() []Timeline {
	var out []Timeline
	for _, pt := range m.parts {
		out = append(out, pt.r.Timelines()...)
	}
	return out
}

// Damage returns every damage report so far, file by file.
func (m *MultiReader) Damage() []*CorruptError {
	var out []*CorruptError
	for _, pt := range m.parts {
		out = append(out, pt.r.Damage()...)
	}
	return out
}

// Stats returns the files' reading statistics added up; Finished and
// TornTail are set when any file's are.
func (m *MultiReader) Stats() Stats {
	var s Stats
	for i, pt := range m.parts {
		p := pt.r.Stats()
		s.Blocks += p.Blocks
		s.Records += p.Records
		s.Exchanges += p.Exchanges
		s.Timelines += p.Timelines
		s.TimelinesNotKept += p.TimelinesNotKept
		s.UnknownRecords += p.UnknownRecords
		s.Damaged += p.Damaged
		s.SkippedBytes += p.SkippedBytes
		s.LostRecords += p.LostRecords
		s.TornTail = s.TornTail || p.TornTail
		s.Finished = (i == 0 || s.Finished) && p.Finished
		s.Bytes += p.Bytes
	}
	return s
}

// Close closes the files still open.
func (m *MultiReader) Close() error {
	var errs []error
	for _, pt := range m.parts {
		pt.r.Close()
		if pt.f != nil {
			errs = append(errs, pt.f.Close())
			pt.f = nil
		}
	}
	m.lazy = nil
	return errors.Join(errs...)
}

type partHeap []*part

func (h partHeap) Len() int { return len(h) }
func (h partHeap) Less(i, j int) bool {
	a, b := h[i].head.Timing.RequestStart, h[j].head.Timing.RequestStart
	if a != b {
		return a < b
	}
	return h[i].seq < h[j].seq
}
func (h partHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *partHeap) Push(x any)   { *h = append(*h, x.(*part)) }
func (h *partHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// TimelineWriter is implemented by sinks that store session timelines (a
// Writer, a FileWriter).
type TimelineWriter interface {
	WriteTimeline(*Timeline) error
}

// Copy writes every exchange of src to dst and returns how many it wrote.
// Damage reported by src (a *CorruptError) does not stop the copy: the
// reports are joined into the returned error, so a caller can keep what
// was saved and still say the source was damaged. Any other error stops
// the copy. When src has timelines (a Reader, a MultiReader) and dst can
// store them, they are copied after the exchanges.
func Copy(dst Sink, src Source) (int64, error) {
	var n int64
	var damage []error
	for {
		ex, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				damage = append(damage, err)
				continue
			}
			return n, err
		}
		if err := dst.WriteExchange(ex); err != nil {
			return n, err
		}
		n++
	}
	if ts, ok := src.(interface{ Timelines() []Timeline }); ok {
		if tw, ok := dst.(TimelineWriter); ok {
			for _, t := range ts.Timelines() {
				if err := tw.WriteTimeline(&t); err != nil {
					return n, err
				}
			}
		}
	}
	if err := copyConns(dst, src); err != nil {
		return n, err
	}
	return n, errors.Join(damage...)
}
