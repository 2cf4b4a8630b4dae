package har

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// WriterStats counts what a Writer wrote.
type WriterStats struct {
	Entries int64 `json:"entries"`
	// Decoded counts responses whose gzip or deflate body was written
	// decoded in content.text (the bytes as sent are in _encodedText).
	Decoded int64 `json:"decoded"`
}

// WriterOption configures a Writer.
type WriterOption func(*Writer)

// Creator sets log.creator's version (the name is "reprise").
func Creator(version string) WriterOption { return func(w *Writer) { w.version = version } }

// Title sets the title of the one page the entries belong to.
func Title(title string) WriterOption { return func(w *Writer) { w.title = title } }

// Scheme sets the scheme of the URLs written (default "http"): a recording
// holds the request-target and Host field, not the scheme the client used.
func Scheme(s string) WriterOption { return func(w *Writer) { w.scheme = s } }

// Writer writes exchanges as a HAR 1.2 file, one entry at a time: entries
// are streamed out, so memory does not grow with the recording.
//
// What it writes is what Chromium's devtools (Network panel, Import HAR)
// and Playwright's routeFromHAR read: every required field, empty cookies
// and queryString arrays rather than missing ones, mimeType always set,
// -1 for sizes and timings not known, response bodies decoded from gzip or
// deflate (route.fulfill ignores Content-Encoding), binary bodies base64,
// and one page that every entry refers to. Times are written in
// milliseconds: startedDateTime to the millisecond, timings to the
// nanosecond as fractions.
type Writer struct {
	w       *bufio.Writer
	enc     *json.Encoder
	buf     bytes.Buffer
	version string
	title   string
	scheme  string
	first   int64
	stats   WriterStats
	closed  bool
	err     error
}

var _ session.Sink = (*Writer)(nil)

// NewWriter returns a Writer to w. Call Close to finish the file.
func NewWriter(w io.Writer, opts ...WriterOption) *Writer {
	hw := &Writer{w: bufio.NewWriterSize(w, 64<<10), version: "dev", title: "reprise recording", scheme: "http"}
	for _, o := range opts {
		o(hw)
	}
	hw.enc = json.NewEncoder(&hw.buf)
	hw.enc.SetEscapeHTML(false)
	return hw
}

// WriteExchange writes x as one entry.
func (w *Writer) WriteExchange(x *session.Exchange) error {
	if w.err != nil {
		return w.err
	}
	e := toEntry(x, w.scheme)
	e.Pageref = "page_1"
	if e.Response.Content.EncodedText != "" {
		w.stats.Decoded++
	}
	w.buf.Reset()
	if w.stats.Entries == 0 {
		w.first = x.Timing.RequestStart
		w.head()
	} else {
		w.buf.WriteString(",\n")
	}
	if err := w.enc.Encode(&e); err != nil {
		w.err = err
		return err
	}
	w.buf.Truncate(w.buf.Len() - 1) // the Encoder's newline
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		w.err = err
		return err
	}
	w.stats.Entries++
	return nil
}

func (w *Writer) head() {
	w.buf.WriteString(`{"log":{"version":"1.2","creator":`)
	w.enc.Encode(nameVer{Name: "reprise", Version: w.version})
	w.buf.Truncate(w.buf.Len() - 1)
	w.buf.WriteString(`,"entries":[` + "\n")
}

// Stats returns the counts so far.
func (w *Writer) Stats() WriterStats { return w.stats }

// Close ends the entries, writes the page and flushes. It does not close
// the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	w.buf.Reset()
	if w.stats.Entries == 0 {
		w.head()
	}
	w.buf.WriteString("\n],\"pages\":[")
	if w.stats.Entries > 0 {
		w.enc.Encode(page{
			StartedDateTime: time.Unix(0, w.first).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			ID:              "page_1",
			Title:           w.title,
			PageTimings:     pageTimings{OnContentLoad: -1, OnLoad: -1},
		})
		w.buf.Truncate(w.buf.Len() - 1)
	}
	w.buf.WriteString("]}}\n")
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		w.err = err
		return err
	}
	w.err = w.w.Flush()
	return w.err
}
