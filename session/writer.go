package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// WriterOption configures a Writer; options are checked by NewWriter.
type WriterOption func(*writerOptions) error

type writerOptions struct {
	bodyCap   int
	blockSize int
	interval  time.Duration
	level     zstd.EncoderLevel
	index     bool

	rotateSize  int64 // used by Create
	rotateEvery time.Duration
}

// BodyCap sets the per-body byte cap (default DefaultBodyCap, 1 MiB). A
// longer body is cut to n bytes, its truncation flag is set and BodySize
// keeps the full length. n must be between 0 and MaxBodyCap.
func BodyCap(n int) WriterOption {
	return func(o *writerOptions) error {
		if n < 0 || n > MaxBodyCap {
			return fmt.Errorf("body cap %d out of range: use 0 to %d bytes", n, MaxBodyCap)
		}
		o.bodyCap = n
		return nil
	}
}

// BlockSize sets the raw size at which a block is compressed and written
// (default DefaultBlockSize). Bigger blocks compress better; smaller ones
// lose less to damage and use less memory when read.
func BlockSize(n int) WriterOption {
	return func(o *writerOptions) error {
		if n < 4<<10 || n > 16<<20 {
			return fmt.Errorf("block size %d out of range: use 4 KiB to 16 MiB", n)
		}
		o.blockSize = n
		return nil
	}
}

// FlushInterval makes the Writer write any buffered records at least every
// d, even when traffic is slow, so that a crash or kill -9 loses at most the
// last d of traffic. Live capture uses one second. 0 (the default) flushes
// only when a block fills, on Flush and on Close.
func FlushInterval(d time.Duration) WriterOption {
	return func(o *writerOptions) error {
		if d < 0 || (d > 0 && d < time.Millisecond) {
			return fmt.Errorf("flush interval %v out of range: use 0 or at least 1ms", d)
		}
		o.interval = d
		return nil
	}
}

// Compression sets the zstd level: 1 fastest, 2 default, 3 better, 4 best.
func Compression(level int) WriterOption {
	return func(o *writerOptions) error {
		if level < 1 || level > 4 {
			return fmt.Errorf("compression level %d out of range: use 1 (fastest) to 4 (best)", level)
		}
		o.level = zstd.EncoderLevel(level)
		return nil
	}
}

// WithoutIndex leaves out the trailer index. Readers never need it; it only
// lets tools summarise a file without reading it all.
func WithoutIndex() WriterOption {
	return func(o *writerOptions) error { o.index = false; return nil }
}

// Writer writes a recording to an io.Writer: a header, a metadata record,
// then exchanges and timelines in zstd blocks, and at Close the final
// metadata, an index and a footer. Blocks are written whole with one Write
// call each, so a reader of a file still being written sees whole blocks
// or a torn last one.
//
// A Writer is safe for concurrent use. Memory is bounded by the block size:
// buffers and the encoder are reused from block to block.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer // closed by Close when the Writer owns the file
	o      writerOptions
	meta   Metadata
	enc    *zstd.Encoder

	raw     []byte // records of the block being filled
	records int
	scratch []byte // one encoded record
	out     []byte // block header and payload
	offset  int64  // bytes written
	err     error  // first write error; sticky
	closed  bool

	idx      indexBuilder
	blkFirst int64
	blkLast  int64

	stop chan struct{}
	done chan struct{}
}

// NewWriter writes the file header and meta to w and returns a Writer for
// the records that follow. The Writer does not close w.
func NewWriter(w io.Writer, meta Metadata, opts ...WriterOption) (*Writer, error) {
	o := writerOptions{bodyCap: DefaultBodyCap, blockSize: DefaultBlockSize, level: zstd.SpeedDefault, index: true}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(o.level),
		zstd.WithEncoderCRC(false), // each block has its own CRC-32C
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, err
	}
	if o.rotateSize > 0 || o.rotateEvery > 0 {
		return nil, errors.New("rotation needs a file: use Create, not NewWriter")
	}
	wr := &Writer{o: o, enc: enc}
	if err := wr.start(w, meta); err != nil {
		return nil, err
	}
	return wr, nil
}

// Reset makes a closed Writer write a new recording to w, with meta and
// the same options, reusing its buffers and encoder (as the rotating file
// writer does for every part). It returns an error if the Writer has not
// been closed.
func (w *Writer) Reset(dst io.Writer, meta Metadata) error {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if !closed {
		return errors.New("reset of a writer still open: close it first")
	}
	return w.start(dst, meta)
}

// start writes the header and first metadata and starts the flush loop.
func (w *Writer) start(dst io.Writer, meta Metadata) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if meta.MaxBody == 0 {
		meta.MaxBody = int64(w.o.bodyCap)
	}
	w.w, w.meta, w.closer = dst, meta, nil
	w.idx = newIndexBuilder()
	w.raw, w.records, w.offset, w.err, w.closed = w.raw[:0], 0, 0, nil, false
	w.out = appendFileHeader(w.out[:0])
	if err := w.writeOut(); err != nil {
		return err
	}
	// The first metadata goes out at once in its own block, so that even a
	// file cut short a moment later says where its traffic came from.
	if err := w.appendJSON(KindMetadata, &w.meta); err != nil {
		return err
	}
	if err := w.flushBlock(); err != nil {
		return err
	}
	if w.o.interval > 0 {
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		go w.flushLoop(w.stop)
	}
	return nil
}

func (w *Writer) flushLoop(stop <-chan struct{}) {
	defer close(w.done)
	// Tick at half the interval, so a record waits at most one interval
	// even when the tick lands just before it.
	t := time.NewTicker(w.o.interval / 2)
	defer t.Stop()
	for {
		select {
		case <-stop: // not w.stop: Close sets that to nil under w.mu
			return
		case <-t.C:
			w.mu.Lock()
			if !w.closed && w.err == nil {
				w.flushBlock() //nolint:errcheck // sticky in w.err, returned by the next call
			}
			w.mu.Unlock()
		}
	}
}

// WriteExchange appends ex to the recording, cutting bodies to the body cap.
// It does not keep ex.
func (w *Writer) WriteExchange(ex *Exchange) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.appendExchange(ex); err != nil {
		return err
	}
	ts := ex.Timing.RequestStart
	if w.records == 1 || ts < w.blkFirst {
		w.blkFirst = ts
	}
	w.blkLast = max(w.blkLast, ts)
	w.idx.add(ex, w.o.bodyCap)
	if len(w.raw) >= w.o.blockSize {
		return w.flushBlock()
	}
	return nil
}

// WriteTimeline appends one session's timeline (stored as JSON).
func (w *Writer) WriteTimeline(t *Timeline) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.appendJSON(KindTimeline, t); err != nil {
		return err
	}
	w.idx.Timelines++
	if len(w.raw) >= w.o.blockSize {
		return w.flushBlock()
	}
	return nil
}

// WriteConn appends what is known of one connection as a whole (format
// 1.2); a capture writes it when the connection ends.
func (w *Writer) WriteConn(c *ConnInfo) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.scratch = encodeConn(w.scratch[:0], c)
	if err := w.appendRecord(KindConn, w.scratch); err != nil {
		return err
	}
	if len(w.raw) >= w.o.blockSize {
		return w.flushBlock()
	}
	return nil
}

// SetMetadata replaces the metadata that Close writes at the end of the
// file (the header's copy, written by NewWriter, stays as it was).
func (w *Writer) SetMetadata(m Metadata) {
	w.mu.Lock()
	w.meta = m
	w.mu.Unlock()
}

// UpdateCounters sets the counters that Close writes with the final
// metadata. Capture calls it as it goes, so the counters are final at Close.
func (w *Writer) UpdateCounters(c Counters) {
	w.mu.Lock()
	w.meta.Counters = c
	w.mu.Unlock()
}

// Metadata returns the metadata as it stands.
func (w *Writer) Metadata() Metadata {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.meta
}

// Offset returns the number of bytes written to the underlying writer so
// far. Records still buffered in the current block are not counted.
func (w *Writer) Offset() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.offset
}

// Flush compresses and writes the records buffered so far as one block,
// then flushes the underlying writer if it has a Flush method.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.flushBlock(); err != nil {
		return err
	}
	if f, ok := w.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// Close writes any buffered records, the final metadata (with End, the
// counters and BytesWritten filled in) and the trailer index, then the
// footer. It closes the file when the Writer came from Create. Calling
// Close again returns nil.
func (w *Writer) Close() error {
	// Stop the flush loop first, outside the lock it takes.
	w.mu.Lock()
	stop, done := w.stop, w.done
	w.stop = nil
	w.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.finish()
	if w.closer != nil {
		if cerr := w.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (w *Writer) finish() error {
	if w.err != nil {
		return w.err
	}
	if err := w.flushBlock(); err != nil {
		return err
	}
	m := w.meta
	if m.Start == 0 {
		m.Start = w.idx.First
	}
	if m.End == 0 {
		m.End = w.idx.end
	}
	m.Counters.BytesWritten = uint64(w.offset)
	indexOffset := w.offset
	if err := w.appendJSON(KindMetadata, &m); err != nil {
		return err
	}
	if w.o.index {
		ix := w.idx.index()
		if err := w.appendJSON(KindIndex, ix); err != nil {
			return err
		}
	}
	if err := w.flushBlock(); err != nil {
		return err
	}
	if !w.o.index {
		indexOffset = 0 // the footer still marks a finished file
	}
	w.out = appendFooter(w.out[:0], indexOffset)
	return w.writeOut()
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

func (w *Writer) appendJSON(kind RecordKind, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.appendRecord(kind, b)
}

func (w *Writer) appendRecord(kind RecordKind, rec []byte) error {
	if err := w.startRecord(kind, len(rec)); err != nil {
		return err
	}
	w.raw = append(w.raw, rec...)
	return nil
}

// appendExchange encodes ex straight into the block: the head and the
// extension go through scratch, and the bodies, most of the bytes, are
// copied once, from ex into the block. The record is encodeExchange's.
func (w *Writer) appendExchange(ex *Exchange) error {
	b, reqBody, respBody := encodeHead(w.scratch[:0], ex, w.o.bodyCap)
	head := len(b)
	if hasExt(ex) {
		b = appendExt(b, ex)
	}
	w.scratch = b
	if err := w.startRecord(KindExchange, len(b)+bodiesLen(reqBody, respBody)); err != nil {
		return err
	}
	w.raw = append(w.raw, b[:head]...)
	w.raw = appendBodies(w.raw, reqBody, respBody)
	w.raw = append(w.raw, b[head:]...)
	return nil
}

// startRecord appends the kind and length of a record of n bytes, after
// flushing the block when the record would not fit, and makes room for
// the record: the block buffer is sized once for a whole block and the
// record, rather than grown by doubling.
func (w *Writer) startRecord(kind RecordKind, n int) error {
	if n > MaxBlockSize-32 {
		return fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, n)
	}
	if len(w.raw)+n+32 > MaxBlockSize {
		if err := w.flushBlock(); err != nil {
			return err
		}
	}
	if need := n + 2*binary.MaxVarintLen64; cap(w.raw)-len(w.raw) < need {
		w.raw = slices.Grow(w.raw, max(need, w.o.blockSize+need-len(w.raw)))
	}
	w.raw = binary.AppendUvarint(w.raw, uint64(kind))
	w.raw = binary.AppendUvarint(w.raw, uint64(n))
	w.records++
	return nil
}

// flushBlock compresses the pending records into one block and writes it.
func (w *Writer) flushBlock() error {
	if w.err != nil {
		return w.err
	}
	if w.records == 0 {
		return nil
	}
	h := blockHeader{rawLen: uint32(len(w.raw)), records: uint32(w.records), codec: codecZstd}
	w.out = slices.Grow(w.out[:0], blockHeaderSize+len(w.raw)/2)[:blockHeaderSize]
	w.out = w.enc.EncodeAll(w.raw, w.out)
	if len(w.out)-blockHeaderSize >= len(w.raw) {
		// Incompressible (already compressed bodies): store as is.
		w.out = append(w.out[:blockHeaderSize], w.raw...)
		h.codec = codecStored
	}
	payload := w.out[blockHeaderSize:]
	h.payloadLen = uint32(len(payload))
	h.payloadCRC = crcOf(payload)
	h.put(w.out[:blockHeaderSize])
	off := w.offset
	if err := w.writeOut(); err != nil {
		return err
	}
	w.idx.block(BlockRef{Offset: off, Records: w.records, First: w.blkFirst, Last: w.blkLast})
	w.raw = w.raw[:0]
	w.records = 0
	w.blkFirst, w.blkLast = 0, 0
	return nil
}

func (w *Writer) writeOut() error {
	n, err := w.w.Write(w.out)
	w.offset += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write recording: %w", err)
		return w.err
	}
	return nil
}
