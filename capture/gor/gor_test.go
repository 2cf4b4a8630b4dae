package gor

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/session"
)

const t0 = int64(1_700_000_000_000_000_000)

// sample returns exchanges covering what a round trip must keep: header
// order and case, repeated fields, a chunked body, a binary body, a
// response without a body, a request never answered.
func sample() []*session.Exchange {
	return []*session.Exchange{
		{
			Request: session.Request{Method: "POST", Target: "/api/items?page=2", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "host", Value: "shop.test"}, {Name: "X-Trace", Value: "a"}, {Name: "x-trace", Value: "b"}, {Name: "Content-Length", Value: "7"}},
				Body:   []byte("a=1&b=2"), BodySize: 7},
			Response: session.Response{Proto: "HTTP/1.1", Status: 201, Reason: "Created",
				Header: session.Headers{{Name: "Content-Type", Value: "application/json"}, {Name: "Transfer-Encoding", Value: "chunked"}},
				Body:   []byte(`{"id":1}`), BodySize: 8},
			Timing: session.Timing{RequestStart: t0, RequestEnd: t0 + 1000, ResponseStart: t0 + 5000, ResponseEnd: t0 + 7000},
		},
		{
			Request: session.Request{Method: "GET", Target: "/img.png", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: "shop.test"}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200, Reason: "OK",
				Header: session.Headers{{Name: "Content-Length", Value: "4"}}, Body: []byte{0, 0xff, '\n', 1}, BodySize: 4},
			Timing: session.Timing{RequestStart: t0 + 10_000, RequestEnd: t0 + 10_000, ResponseStart: t0 + 20_000, ResponseEnd: t0 + 20_000},
		},
		{
			Request: session.Request{Method: "HEAD", Target: "/", Proto: "HTTP/1.0",
				Header: session.Headers{{Name: "Host", Value: "shop.test"}}},
			Response: session.Response{Proto: "HTTP/1.1", Status: 304, Reason: "Not Modified",
				Header: session.Headers{{Name: "ETag", Value: `"x"`}}},
			Timing: session.Timing{RequestStart: t0 + 30_000, RequestEnd: t0 + 30_000, ResponseStart: t0 + 31_000, ResponseEnd: t0 + 32_000},
		},
		{
			Request: session.Request{Method: "DELETE", Target: "/api/items/1", Proto: "HTTP/1.1",
				Header: session.Headers{{Name: "Host", Value: "shop.test"}}},
			Flags:  session.FlagNoResponse,
			Timing: session.Timing{RequestStart: t0 + 40_000, RequestEnd: t0 + 40_000},
		},
	}
}

func writeAll(t testing.TB, xs []*session.Exchange) []byte {
	var b bytes.Buffer
	sourcetest.WriteAll(t, NewWriter(&b), xs)
	return b.Bytes()
}

// readAll reads every exchange and every damage report.
func readAll(t testing.TB, data []byte, opts ...Option) ([]*session.Exchange, []*PayloadError, *Reader) {
	r, err := NewReader(bytes.NewReader(data), opts...)
	if err != nil {
		t.Fatal(err)
	}
	xs, errs, err := sourcetest.Drain[*PayloadError](t, r, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return xs, errs, r
}

// same compares what a .gor round trip keeps.
func same(t *testing.T, want, got *session.Exchange) {
	t.Helper()
	if want.Request.Method != got.Request.Method || want.Request.Target != got.Request.Target || want.Request.Proto != got.Request.Proto {
		t.Errorf("request line: want %s %s %s, got %s %s %s", want.Request.Method, want.Request.Target, want.Request.Proto, got.Request.Method, got.Request.Target, got.Request.Proto)
	}
	if !reflect.DeepEqual(want.Request.Header, got.Request.Header) || !bytes.Equal(want.Request.Body, got.Request.Body) {
		t.Errorf("request: want %q %q, got %q %q", want.Request.Header, want.Request.Body, got.Request.Header, got.Request.Body)
	}
	if want.Response.Status != got.Response.Status || want.Response.Reason != got.Response.Reason {
		t.Errorf("status: want %d %q, got %d %q", want.Response.Status, want.Response.Reason, got.Response.Status, got.Response.Reason)
	}
	if !reflect.DeepEqual(want.Response.Header, got.Response.Header) || !bytes.Equal(want.Response.Body, got.Response.Body) {
		t.Errorf("response: want %q %q, got %q %q", want.Response.Header, want.Response.Body, got.Response.Header, got.Response.Body)
	}
	if want.Timing != got.Timing {
		t.Errorf("timing: want %+v, got %+v", want.Timing, got.Timing)
	}
	if want.Flags&session.FlagNoResponse != got.Flags&session.FlagNoResponse {
		t.Errorf("flags: want %v, got %v", want.Flags, got.Flags)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, gz := range []bool{false, true} {
		data := writeAll(t, sample())
		if gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			data = b.Bytes()
		}
		got, errs, r := readAll(t, data)
		if len(errs) > 0 {
			t.Fatalf("gzip %v: damage %v", gz, errs)
		}
		want := sample()
		if len(got) != len(want) {
			t.Fatalf("gzip %v: %d exchanges, want %d", gz, len(got), len(want))
		}
		for i := range want {
			same(t, want[i], got[i])
		}
		if s := r.Stats(); s.Requests != 4 || s.Responses != 3 || s.Unanswered != 1 || s.Exchanges != 4 {
			t.Errorf("stats %+v", s)
		}
	}
}

// payload builds one payload as GoReplay writes it.
func payload(metaLine, raw string) string { return metaLine + "\n" + raw + Separator }

const (
	req1  = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	resp1 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
)

func TestRead(t *testing.T) {
	long := strings.Repeat("z", 200)
	cases := []struct {
		name   string
		in     string
		opts   []Option
		want   []string // "METHOD TARGET STATUS" per exchange
		errs   []error
		offs   []int64
		timing *session.Timing
	}{{
		// GoReplay 1.3: four fields, response after request.
		name:   "four fields",
		in:     payload("1 aa 1000 10", req1) + payload("2 aa 2000 30", resp1),
		want:   []string{"GET /a 200"},
		timing: &session.Timing{RequestStart: 1000, RequestEnd: 1010, ResponseStart: 2000, ResponseEnd: 2030},
	}, {
		// Before GoReplay 1.0: three fields, a response's third field a
		// time like the request's.
		name:   "three fields",
		in:     payload("1 aa 1000000", req1) + payload("2 aa 1000500", resp1),
		want:   []string{"GET /a 200"},
		timing: &session.Timing{RequestStart: 1000000, RequestEnd: 1000000, ResponseStart: 1000500, ResponseEnd: 1000500},
	}, {
		// The oldest files: a response's third field is the round trip.
		name:   "round trip field",
		in:     payload("1 aa 1000000", req1) + payload("2 aa 700", resp1),
		want:   []string{"GET /a 200"},
		timing: &session.Timing{RequestStart: 1000000, RequestEnd: 1000000, ResponseStart: 1000700, ResponseEnd: 1000700},
	}, {
		// Responses may come before their requests and out of order.
		name: "interleaved",
		in: payload("2 bb 5 1", resp1) + payload("1 aa 1 1", req1) + payload("1 bb 2 1", "GET /b HTTP/1.1\r\n\r\n") +
			payload("2 aa 6 1", resp1),
		want: []string{"GET /a 200", "GET /b 200"},
	}, {
		// A replayed response is counted, the original kept.
		name: "replayed",
		in:   payload("1 aa 1 1", req1) + payload("3 aa 9 1", "HTTP/1.1 500 Oops\r\n\r\n") + payload("2 aa 5 1", resp1),
		want: []string{"GET /a 200"},
	}, {
		// A body holding the separator: the first part is kept, short and
		// flagged; the rest is reported at its offset.
		name: "separator in body",
		in: payload("1 aa 1 1", "POST /a HTTP/1.1\r\nContent-Length: 20\r\n\r\nabc"+Separator+"defgh") +
			payload("1 bb 2 1", req1),
		want: []string{"POST /a 0", "GET /a 0"},
		errs: []error{ErrBadMeta},
		offs: []int64{int64(len("1 aa 1 1\nPOST /a HTTP/1.1\r\nContent-Length: 20\r\n\r\nabc") + len(Separator))},
	}, {
		// A file cut inside its last payload: what came before is kept.
		name: "cut file",
		in:   payload("1 aa 1 1", req1) + payload("2 aa 2 1", resp1) + "1 bb 3 1\nGET /b HT",
		want: []string{"GET /a 200"},
		errs: []error{ErrPartial, ErrNotHTTP},
		offs: []int64{int64(len(payload("1 aa 1 1", req1) + payload("2 aa 2 1", resp1))), int64(len(payload("1 aa 1 1", req1) + payload("2 aa 2 1", resp1)))},
	}, {
		// A wrong separator (here a plain newline) hides every boundary:
		// the file is one partial payload, one request with junk after it.
		name: "wrong separator",
		in:   "1 aa 1 1\n" + req1 + "\n#####\n2 aa 2 1\n" + resp1,
		want: []string{"GET /a 0"},
		errs: []error{ErrPartial},
		offs: []int64{0},
	}, {
		// Junk meta lines and huge numbers.
		name: "bad meta",
		in:   payload("9 aa 1 1", req1) + payload("1 aa 99999999999999999999 1", req1) + payload("1 cc x", req1) + payload("1 dd 5 1", req1),
		want: []string{"GET /a 0"},
		errs: []error{ErrBadMeta, ErrBadMeta, ErrBadMeta},
		offs: []int64{0, int64(len(payload("9 aa 1 1", req1))), int64(len(payload("9 aa 1 1", req1) + payload("1 aa 99999999999999999999 1", req1)))},
	}, {
		// A payload over the limit is skipped to the next separator.
		name: "too large",
		in:   payload("1 aa 1 1", "GET /"+long+" HTTP/1.1\r\n\r\n") + payload("1 bb 2 1", req1),
		opts: []Option{MaxPayload(64)},
		want: []string{"GET /a 0"},
		errs: []error{ErrTooLarge},
		offs: []int64{0},
	}, {
		// A payload that is not HTTP.
		name: "not http",
		in:   payload("1 aa 1 1", "hello there\r\n\r\n") + payload("1 bb 2 1", req1),
		want: []string{"GET /a 0"},
		errs: []error{ErrNotHTTP},
		offs: []int64{0},
	}, {
		// Empty input.
		name: "empty",
		in:   "",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			xs, errs, _ := readAll(t, []byte(c.in), c.opts...)
			var got []string
			for _, x := range xs {
				got = append(got, x.Request.Method+" "+x.Request.Target+" "+itoa(x.Response.Status))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("exchanges %q, want %q", got, c.want)
			}
			if len(errs) != len(c.errs) {
				t.Fatalf("errors %v, want %v", errs, c.errs)
			}
			for i, e := range errs {
				if !errors.Is(e, c.errs[i]) || e.Offset != c.offs[i] {
					t.Errorf("error %d: %v (offset %d), want %v at %d", i, e, e.Offset, c.errs[i], c.offs[i])
				}
			}
			if c.timing != nil && len(xs) > 0 && xs[0].Timing != *c.timing {
				t.Errorf("timing %+v, want %+v", xs[0].Timing, *c.timing)
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestWriterSeparatorInBody(t *testing.T) {
	for _, body := range []string{
		"a" + Separator + "b",                 // a separator inside
		"a\n" + Separator[1:],                 // a separator line at the end
		"a\n" + Separator[1:len(Separator)-1], // the separator's line without its newline
	} {
		var b bytes.Buffer
		w := NewWriter(&b)
		x := &session.Exchange{Request: session.Request{Method: "POST", Target: "/", Body: []byte(body)}}
		if err := w.WriteExchange(x); !errors.Is(err, ErrSeparatorInBody) {
			t.Fatalf("%q: err %v", body, err)
		}
		w.Close()
		if b.Len() != 0 || w.Stats().Skipped != 1 {
			t.Fatalf("%q: wrote %q, stats %+v", body, b.Bytes(), w.Stats())
		}
	}
	// A body ending in a newline is fine.
	var b bytes.Buffer
	x := &session.Exchange{Request: session.Request{Method: "POST", Target: "/", Body: []byte("a\n\n")}}
	if err := NewWriter(&b).WriteExchange(x); err != nil {
		t.Fatal(err)
	}
}

func TestMaxPending(t *testing.T) {
	var in string
	for _, id := range []string{"a", "b", "c"} {
		in += payload("1 "+id+" 1 1", req1)
	}
	in += payload("2 c 5 1", resp1)
	r, err := NewReader(strings.NewReader(in), MaxPending(1))
	if err != nil {
		t.Fatal(err)
	}
	// The first request is given up while the file is still being read.
	x, err := r.Next()
	if err != nil || x.Flags&session.FlagNoResponse == 0 {
		t.Fatalf("first: %v %+v", err, x)
	}
}

// goreplayPayloads splits a file the way GoReplay's --input-file does (its
// input_file.go): line by line, a payload ends at a line that is the
// separator's last line, and the newline before that line is not part of
// the payload; a payload whose meta line has fewer than three fields is
// dropped.
func goreplayPayloads(data []byte) [][]byte {
	var out [][]byte
	var cur []byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // GoReplay drops a last line without its newline
		}
		line := data[:i+1]
		data = data[i+1:]
		if string(line) == Separator[1:] {
			meta := cur[:max(0, bytes.IndexByte(cur, '\n'))]
			if len(bytes.Split(meta, []byte{' '})) >= 3 {
				out = append(out, cur[:len(cur)-1])
			}
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return out
}

// What Writer writes is what GoReplay reads: one payload per message, the
// meta line's first three fields as GoReplay parses them, and the HTTP
// bytes whole.
func TestWriterAsGoReplayReads(t *testing.T) {
	xs := sample()
	ps := goreplayPayloads(writeAll(t, xs))
	if len(ps) != 7 {
		t.Fatalf("%d payloads, want 7", len(ps))
	}
	for _, p := range ps {
		meta := bytes.Split(p[:bytes.IndexByte(p, '\n')], []byte{' '})
		if len(meta) != 4 || (meta[0][0] != TypeRequest && meta[0][0] != TypeResponse) {
			t.Errorf("meta %q", meta)
		}
		raw := p[bytes.IndexByte(p, '\n')+1:]
		if !bytes.HasPrefix(raw, []byte("HTTP/1.")) && !bytes.Contains(raw[:bytes.IndexByte(raw, '\n')], []byte(" HTTP/1.")) {
			t.Errorf("raw %q", raw)
		}
	}
	if !bytes.HasSuffix(ps[1], []byte("8\r\n{\"id\":1}\r\n0\r\n\r\n")) {
		t.Errorf("chunked response %q", ps[1])
	}
	if !bytes.HasSuffix(ps[3], []byte{0, 0xff, '\n', 1}) {
		t.Errorf("binary body %q", ps[3])
	}
}

// Payloads split across reads (here one byte at a time) read the same,
// and so does a separator line right after another (an empty payload).
func TestReadByteByByte(t *testing.T) {
	data := append(writeAll(t, sample()), []byte(Separator[1:]+payload("1 zz 5 1", req1))...)
	want, errs, _ := readAll(t, data)
	r, err := NewReader(iotest.OneByteReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	got, gerrs, err := sourcetest.Drain[*PayloadError](t, r, 1000)
	if err != nil || len(errs) > 0 || len(gerrs) > 0 || len(got) != len(want) || len(got) != 5 {
		t.Fatalf("%v %v %v: %d and %d exchanges", err, errs, gerrs, len(got), len(want))
	}
	for i := range want {
		same(t, want[i], got[i])
	}
}

// A request never answered is given up once the file's time has moved on
// by the pair window, not held until the end.
func TestPairWindow(t *testing.T) {
	in := payload("1 a 1000000000 1", req1) + payload("1 b 2000000000 1", req1) + payload("2 b 2000000100 1", resp1) +
		payload("1 c 9000000000 1", req1)
	r, err := NewReader(strings.NewReader(in), PairWindow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r.step()
	r.step()
	r.step()
	if len(r.out) != 0 {
		t.Fatalf("%d exchanges before the window passed", len(r.out))
	}
	r.step()
	if len(r.out) != 2 || r.out[0].Flags&session.FlagNoResponse == 0 || r.out[1].Response.Status != 200 {
		t.Fatalf("after the window: %d exchanges", len(r.out))
	}
}
