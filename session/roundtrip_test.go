package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

// expected returns what reading ex back should give: bodies cut to bodyCap
// with flags and sizes set, and empty slices as nil.
func expected(ex *Exchange, bodyCap int) *Exchange {
	e := *ex
	if len(e.Request.Body) > bodyCap {
		e.Request.BodySize = max(e.Request.BodySize, int64(len(e.Request.Body)))
		e.Request.Body = e.Request.Body[:bodyCap]
		e.Flags |= FlagRequestTruncated
	}
	if len(e.Response.Body) > bodyCap {
		e.Response.BodySize = max(e.Response.BodySize, int64(len(e.Response.Body)))
		e.Response.Body = e.Response.Body[:bodyCap]
		e.Flags |= FlagResponseTruncated
	}
	return canonical(&e)
}

// canonical makes empty slices nil, since a reader may return either.
func canonical(ex *Exchange) *Exchange {
	e := *ex
	if len(e.Request.Body) == 0 {
		e.Request.Body = nil
	}
	if len(e.Response.Body) == 0 {
		e.Response.Body = nil
	}
	if len(e.Request.Header) == 0 {
		e.Request.Header = nil
	}
	if len(e.Response.Header) == 0 {
		e.Response.Header = nil
	}
	if len(e.Warnings) == 0 {
		e.Warnings = nil
	}
	if len(e.Tokens) == 0 {
		e.Tokens = nil
	}
	return &e
}

func binaryBody(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func manyHeaders(n int) Headers {
	h := make(Headers, n)
	for i := range h {
		h[i] = Header{Name: fmt.Sprintf("X-Custom-%d", i), Value: strings.Repeat("v", i%50)}
	}
	return h
}

func TestRoundTrip(t *testing.T) {
	base := func() *Exchange { return newCorpus(7).next() }
	c := newCorpus(9)
	thousands := make([]*Exchange, 5000)
	for i := range thousands {
		thousands[i] = c.next()
	}
	tests := []struct {
		name string
		opts []WriterOption
		exs  []*Exchange
		cap  int
	}{
		// Bodies of every byte value, including NUL and invalid UTF-8.
		{name: "binary bodies", exs: []*Exchange{func() *Exchange {
			e := base()
			e.Request.Body, e.Request.BodySize = binaryBody(5000), 5000
			e.Response.Body, e.Response.BodySize = binaryBody(70000), 70000
			return e
		}()}},
		// No bodies, no headers, zero timing, no addresses: the zero exchange.
		{name: "empty exchange", exs: []*Exchange{{}}},
		// Empty but non-nil bodies come back empty.
		{name: "empty bodies", exs: []*Exchange{func() *Exchange {
			e := base()
			e.Request.Body, e.Response.Body = []byte{}, []byte{}
			return e
		}()}},
		// A thousand header fields, repeated names and original case kept.
		{name: "many headers", exs: []*Exchange{func() *Exchange {
			e := base()
			e.Request.Header = append(manyHeaders(1000), Header{"set-COOKIE", "a=1"}, Header{"Set-Cookie", "b=2"})
			e.Response.Header = manyHeaders(500)
			return e
		}()}},
		// One header value of 1 MiB.
		{name: "huge header", exs: []*Exchange{func() *Exchange {
			e := base()
			e.Request.Header = append(e.Request.Header, Header{"X-Huge", strings.Repeat("h", 1<<20)})
			return e
		}()}},
		// Bodies over the cap are cut, flagged, and keep their full size.
		{name: "body over cap", opts: []WriterOption{BodyCap(1000)}, cap: 1000, exs: []*Exchange{func() *Exchange {
			e := base()
			e.Request.Body, e.Request.BodySize = binaryBody(1500), 1500
			e.Response.Body, e.Response.BodySize = binaryBody(100000), 0 // size left unset by the producer
			return e
		}()}},
		// A zero cap keeps no body bytes at all.
		{name: "zero cap", opts: []WriterOption{BodyCap(0)}, cap: 0, exs: []*Exchange{base()}},
		// The default cap is 1 MiB.
		{name: "default cap", cap: DefaultBodyCap, exs: []*Exchange{func() *Exchange {
			e := base()
			e.Response.Body, e.Response.BodySize = binaryBody(DefaultBodyCap+1), DefaultBodyCap+1
			return e
		}()}},
		// Unicode and odd bytes in targets, methods and header values.
		{name: "unicode targets", exs: []*Exchange{func() *Exchange {
			e := base()
			e.Request.Target = "/café/日本語/😀?q=Ünïcödé&x=%E2%82%AC"
			e.Request.Header = append(e.Request.Header, Header{"X-Name", "Zoë \x00\xff"})
			e.Response.Reason = "Très Bien"
			return e
		}()}},
		// IPv6 with a zone, session key, tokens, warnings and every flag.
		{name: "identity and flags", exs: []*Exchange{func() *Exchange {
			e := base()
			e.Conn.Client = netip.MustParseAddrPort("[fe80::1%eth0]:5555")
			e.Conn.Server = netip.MustParseAddrPort("[::1]:8080")
			e.Session = "cookie:sid=abc"
			e.Flags = FlagNoResponse | FlagRequestGap | FlagResponseGap | FlagRedacted
			e.Warnings = []string{"response without Content-Length", "duplicate Host"}
			e.Tokens = []TokenEvent{
				{Kind: TokenLogin, Name: "access_token", Value: "tok1", ExpiresAt: 1767229200000000000},
				{Kind: TokenRefresh, Name: "access_token", Value: "tok2", Prev: "tok1", Proactive: true, Lead: -5e9},
			}
			e.Timing = Timing{RequestStart: 5, RequestEnd: 3, ResponseStart: 0, ResponseEnd: -1} // odd but kept
			return e
		}()}},
		// Thousands of exchanges over many blocks (small blocks).
		{name: "thousands", opts: []WriterOption{BlockSize(64 << 10)}, exs: thousands},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bodyCap := tt.cap
			if bodyCap == 0 && !strings.Contains(tt.name, "zero") {
				bodyCap = DefaultBodyCap
			}
			meta := Metadata{Source: "pcap:test.pcap", Filter: "tcp port 8080", Host: "h", Tool: "reprise test",
				Redaction: []string{"header:Authorization"}, SessionRules: []string{"cookie:sid"}}
			var buf bytes.Buffer
			w, err := NewWriter(&buf, meta, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			for _, ex := range tt.exs {
				if err := w.WriteExchange(ex); err != nil {
					t.Fatal(err)
				}
			}
			tl := Timeline{Key: "cookie:sid=abc", Start: 1, End: 2, Exchanges: 3, Refreshes: 1,
				Events: []TimelineEvent{{At: 1, Index: 0, Event: TokenEvent{Kind: TokenLogin, Name: "access_token"}}}}
			if err := w.WriteTimeline(&tl); err != nil {
				t.Fatal(err)
			}
			w.UpdateCounters(Counters{PacketsSeen: 10, PacketsDropped: 1, Exchanges: uint64(len(tt.exs)), Unsupported: map[string]uint64{"tls": 2}})
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			// Both Next and Read (reusing one Exchange) give back what was written.
			for _, mode := range []string{"Next", "Read"} {
				r, err := NewReader(bytes.NewReader(buf.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				if got := r.Metadata(); got.Source != meta.Source || got.Counters.PacketsSeen != 0 {
					t.Errorf("header metadata = %+v", got)
				}
				var reused Exchange
				for i := 0; ; i++ {
					var got *Exchange
					if mode == "Next" {
						got, err = r.Next()
					} else {
						err = r.Read(&reused)
						got = &reused
					}
					if err == io.EOF {
						if i != len(tt.exs) {
							t.Fatalf("%s: read %d exchanges, wrote %d", mode, i, len(tt.exs))
						}
						break
					}
					if err != nil {
						t.Fatalf("%s: exchange %d: %v", mode, i, err)
					}
					if want := expected(tt.exs[i], bodyCap); !reflect.DeepEqual(canonical(got), want) {
						t.Fatalf("%s: exchange %d differs:\n got %+v\nwant %+v", mode, i, canonical(got), want)
					}
				}
				m := r.Metadata()
				if m.Counters.PacketsSeen != 10 || m.Counters.Unsupported["tls"] != 2 || m.Counters.BytesWritten == 0 || m.MaxBody != int64(bodyCap) && bodyCap != 0 {
					t.Errorf("final metadata = %+v", m)
				}
				if m.Filter != meta.Filter || !reflect.DeepEqual(m.Redaction, meta.Redaction) {
					t.Errorf("final metadata lost fields: %+v", m)
				}
				if tls := r.Timelines(); len(tls) != 1 || !reflect.DeepEqual(tls[0], tl) {
					t.Errorf("timelines = %+v", tls)
				}
				if ix := r.Index(); ix == nil || ix.Exchanges != uint64(len(tt.exs)) {
					t.Errorf("index = %+v", ix)
				}
				if st := r.Stats(); !st.Finished || st.Damaged != 0 || len(r.Damage()) != 0 {
					t.Errorf("stats = %+v, damage %v", st, r.Damage())
				}
			}
		})
	}
}

func TestWriterOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opt  WriterOption
	}{
		{"negative body cap", BodyCap(-1)},                     // a cap below zero means nothing
		{"body cap over the maximum", BodyCap(MaxBodyCap + 1)}, // a record must fit in a block
		{"tiny block", BlockSize(10)},                          // blocks that small waste their framing
		{"sub-millisecond flush", FlushInterval(time.Microsecond)},
		{"compression level 9", Compression(9)},
		{"rotation on a stream", RotateSize(1 << 20)}, // only Create can rotate
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewWriter(io.Discard, Metadata{}, tt.opt); err == nil {
				t.Fatal("NewWriter accepted a bad option")
			}
		})
	}
}

func TestWriterAfterClose(t *testing.T) {
	w, err := NewWriter(io.Discard, Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteExchange(&Exchange{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteExchange after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestFlushInterval checks that a live writer puts records on disk within
// the interval without being asked.
func TestFlushInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.rpz")
	fw, err := Create(path, Metadata{Source: "test"}, FlushInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	ex := newCorpus(1).next()
	if err := fw.WriteExchange(ex); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second) // a generous bound
	for {
		n := countExchanges(t, path)
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exchange was not flushed within 5s (read %d)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closeAndRead closes w, which wrote a recording into buf, and opens a
// reader on what it wrote.
func closeAndRead(t *testing.T, w *Writer, buf interface{ Bytes() []byte }) *Reader {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// countExchanges reads path and counts its exchanges, passing over damage.
func countExchanges(t *testing.T, paths ...string) int {
	t.Helper()
	r, err := Open(paths...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			return n
		}
		var ce *CorruptError
		if err != nil && !errors.As(err, &ce) {
			t.Fatal(err)
		}
		if err == nil {
			n++
		}
	}
}

// TestConcurrentWrites writes from several goroutines while the flush loop
// runs (run with -race): every exchange is stored once.
func TestConcurrentWrites(t *testing.T) {
	var buf testkit.SyncBuffer
	w, err := NewWriter(&buf, Metadata{Source: "test"}, FlushInterval(2*time.Millisecond), BlockSize(8<<10))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 300
	done := make(chan error, writers)
	for g := range writers {
		go func() {
			for i := range each {
				ex := &Exchange{Index: g*each + i, Request: Request{Method: "GET", Target: "/x"}}
				if err := w.WriteExchange(ex); err != nil {
					done <- err
					return
				}
				if i%50 == 0 {
					w.UpdateCounters(Counters{Exchanges: uint64(i)})
					time.Sleep(time.Millisecond)
				}
			}
			done <- nil
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	r := closeAndRead(t, w, &buf)
	seen := map[int]bool{}
	for {
		ex, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if seen[ex.Index] {
			t.Fatalf("exchange %d stored twice", ex.Index)
		}
		seen[ex.Index] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("read %d exchanges, wrote %d", len(seen), writers*each)
	}
}

// TestMaxTimelines: a reader keeps at most the timelines it is allowed and
// counts the rest.
func TestMaxTimelines(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Metadata{Source: "test"})
	for i := range 10 {
		w.WriteTimeline(&Timeline{Key: fmt.Sprint(i)})
	}
	w.Close()
	r, err := NewReader(bytes.NewReader(buf.Bytes()), MaxTimelines(3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
	if st := r.Stats(); len(r.Timelines()) != 3 || st.Timelines != 10 || st.TimelinesNotKept != 7 {
		t.Errorf("kept %d timelines, stats %+v", len(r.Timelines()), st)
	}
}

// TestOpenWithNoTimelines: OpenWith applies its options to every file;
// with MaxTimelines(0) the exchanges read as with Open and no timeline is
// kept, each counted.
func TestOpenWithNoTimelines(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for f := range 2 {
		path := filepath.Join(dir, fmt.Sprintf("part%d.rpz", f))
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := NewWriter(out, Metadata{Source: "test"})
		for i := range 5 {
			ex := &Exchange{Index: i, Request: Request{Method: "GET", Target: fmt.Sprintf("/%d/%d", f, i)}}
			ex.Timing.RequestStart = int64(1e9 + 1e6*(2*i+f))
			if err := w.WriteExchange(ex); err != nil {
				t.Fatal(err)
			}
			w.WriteTimeline(&Timeline{Key: fmt.Sprint(f, i)})
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		out.Close()
		paths = append(paths, path)
	}
	read := func(m *MultiReader) (targets []string) {
		defer m.Close()
		for {
			x, err := m.Next()
			if err == io.EOF {
				return targets
			}
			if err != nil {
				t.Fatal(err)
			}
			targets = append(targets, x.Request.Target)
		}
	}
	all, err := Open(paths...)
	if err != nil {
		t.Fatal(err)
	}
	want := read(all)
	if len(all.Timelines()) != 10 {
		t.Errorf("Open kept %d timelines, want 10", len(all.Timelines()))
	}
	none, err := OpenWith(paths, MaxTimelines(0))
	if err != nil {
		t.Fatal(err)
	}
	if got := read(none); !slices.Equal(got, want) || len(want) != 10 {
		t.Errorf("OpenWith read %v, Open %v", got, want)
	}
	if st := none.Stats(); len(none.Timelines()) != 0 || st.Timelines != 10 || st.TimelinesNotKept != 10 {
		t.Errorf("OpenWith(MaxTimelines(0)) kept %d timelines, stats %+v", len(none.Timelines()), st)
	}
	if _, err := OpenWith(paths, MaxTimelines(-1)); err == nil {
		t.Error("MaxTimelines(-1) accepted")
	}
}
