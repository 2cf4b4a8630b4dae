package gor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// ErrSeparatorInBody is returned by Writer.WriteExchange for an exchange
// whose bytes hold Separator: GoReplay would cut the payload there, so the
// exchange is not written (the rest of the file stays good).
var ErrSeparatorInBody = errors.New("gor: the exchange's bytes hold the GoReplay payload separator; not written")

// WriterStats counts what a Writer wrote.
type WriterStats struct {
	Exchanges int64 `json:"exchanges"` // exchanges written
	Payloads  int64 `json:"payloads"`  // payloads written (a request, and its response when there was one)
	// Truncated counts exchanges whose stored body was shorter than the
	// one sent (the recording's body cap): GoReplay replays the stored
	// bytes, so their Content-Length no longer matches.
	Truncated int64 `json:"truncated"`
	Skipped   int64 `json:"skipped"` // exchanges refused with ErrSeparatorInBody
}

// Writer writes exchanges as GoReplay payloads.
//
// Meta lines have four fields, "TYPE ID TIMESTAMP_NS LATENCY_NS": the
// timestamp is when the message's first byte was seen and the latency how
// long it took to its last, as GoReplay 1.3 and later write them. GoReplay
// since 1.0 reads four fields (it only needs three), and the fourth keeps
// the end of each message, so a round trip keeps all four timestamps.
//
// Each message is written as it crossed the wire except for the framing of
// a chunked body, which the recording keeps de-chunked: it is written as one
// chunk (trailers are not kept). Exchanges without a response are written as
// a request alone. IDs are 24 hex digits counted from 1, so the same
// recording always gives the same file.
type Writer struct {
	w     *bufio.Writer
	buf   []byte
	id    uint64
	stats WriterStats
}

// NewWriter returns a Writer to w. Compress with gzip around w when the file
// name ends in .gz: GoReplay decides by the name.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10)}
}

var _ session.Sink = (*Writer)(nil)

// WriteExchange writes x's request and, when it has one, its response.
func (w *Writer) WriteExchange(x *session.Exchange) error {
	w.id++
	id := fmt.Sprintf("%024x", w.id)
	t := x.Timing
	b, ok := appendPayload(w.buf[:0], TypeRequest, id, t.RequestStart, t.RequestEnd, func(b []byte) []byte {
		return appendRequest(b, &x.Request)
	})
	n := int64(1)
	if ok && x.Flags&session.FlagNoResponse == 0 && x.Response.Status != 0 {
		b, ok = appendPayload(b, TypeResponse, id, t.ResponseStart, t.ResponseEnd, func(b []byte) []byte {
			return appendResponse(b, &x.Response)
		})
		n++
	}
	w.buf = b
	if !ok {
		w.stats.Skipped++
		return ErrSeparatorInBody
	}
	if x.Flags&(session.FlagRequestTruncated|session.FlagResponseTruncated) != 0 {
		w.stats.Truncated++
	}
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	w.stats.Exchanges++
	w.stats.Payloads += n
	return nil
}

// appendPayload appends a meta line, the message msg appends, and the
// separator; ok is false when GoReplay would not read it back as one
// payload: the message's bytes hold a separator line (or end in the first
// part of one).
func appendPayload(b []byte, typ byte, id string, start, end int64, msg func([]byte) []byte) ([]byte, bool) {
	from := len(b)
	b = appendMeta(b, typ, id, start, end)
	b = msg(b)
	b = append(b, Separator...)
	return b, firstMarker(b[from:], 0) == len(b)-from-len(marker)
}

// Stats returns the counts so far.
func (w *Writer) Stats() WriterStats { return w.stats }

// Flush writes buffered payloads to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

// Close flushes; it does not close the underlying writer.
func (w *Writer) Close() error { return w.Flush() }

func appendMeta(b []byte, typ byte, id string, start, end int64) []byte {
	b = append(b, typ, ' ')
	b = append(b, id...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, start, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, max(0, end-start), 10)
	return append(b, '\n')
}

func appendRequest(b []byte, r *session.Request) []byte {
	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, ' ')
	b = append(b, proto...)
	b = append(b, '\r', '\n')
	return appendHeadAndBody(b, r.Header, r.Body)
}

func appendResponse(b []byte, r *session.Response) []byte {
	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	b = append(b, proto...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = append(b, r.Reason...)
	b = append(b, '\r', '\n')
	return appendHeadAndBody(b, r.Header, r.Body)
}

// appendHeadAndBody writes the header fields as recorded and the body,
// chunked again when the fields say the message was.
func appendHeadAndBody(b []byte, h session.Headers, body []byte) []byte {
	chunked := false
	for _, f := range h {
		b = append(b, f.Name...)
		b = append(b, ':', ' ')
		b = append(b, f.Value...)
		b = append(b, '\r', '\n')
		if strings.EqualFold(f.Name, "Transfer-Encoding") && strings.Contains(strings.ToLower(f.Value), "chunked") {
			chunked = true
		}
	}
	b = append(b, '\r', '\n')
	if !chunked {
		return append(b, body...)
	}
	if len(body) > 0 {
		b = strconv.AppendInt(b, int64(len(body)), 16)
		b = append(b, '\r', '\n')
		b = append(b, body...)
		b = append(b, '\r', '\n')
	}
	return append(b, '0', '\r', '\n', '\r', '\n')
}
