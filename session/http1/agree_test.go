package http1_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
)

// answer is what a reader of HTTP/1 made of a response.
type answer struct {
	status int
	body   string
	bad    bool     // the framing was refused (the client errs, recorders warn and read to the close)
	warns  []string // recorders' warnings
	header session.Headers
}

// The three readers of HTTP/1 (the capture parser, the recording proxy
// and the replay client) give the same answer on the hard cases, because
// they share session/http1. Each response is followed by the server's
// close, so a body delimited by the close and bytes after a framed body
// tell the framings apart.
func TestReadersAgree(t *testing.T) {
	tests := []struct {
		name, method, response string
		status                 int
		body                   string
		bad                    bool
		warn                   string // a recorder's warning, if any
	}{
		// the same length twice, in one field and in two
		{"dup list", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhelloJUNK", 200, "hello", false, "repeated"},
		{"dup fields", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhelloJUNK", 200, "hello", false, "repeated"},
		// differing lengths: refused
		{"conflict", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 0, "", true, "conflicting"},
		{"conflict list", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", 0, "", true, "conflicting"},
		// Transfer-Encoding wins over Content-Length
		{"cl+te", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nJUNK", 200, "ok", false, "Transfer-Encoding"},
		// a folded field joined with a space
		{"obs-fold", "GET", "HTTP/1.1 200 OK\r\nX-Long: one\r\n two\r\nContent-Length: 2\r\n\r\nokJUNK", 200, "ok", false, "folding"},
		// bare LF line ends
		{"bare lf", "GET", "HTTP/1.1 200 OK\nContent-Length: 2\n\nokJUNK", 200, "ok", false, ""},
		// interim responses skipped
		{"1xx", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", false, ""},
		// no body after HEAD, 204 and 304, whatever the fields say
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, "", false, ""},
		{"204", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, "", false, ""},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 304, "", false, ""},
		// chunked with extensions and a trailer
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nJUNK", 200, "hello world", false, ""},
		// neither field: the body runs to the close
		{"close delimited", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end", 200, "to the end", false, ""},
	}
	readers := []struct {
		name string
		read func(t *testing.T, method, response string) answer
	}{
		{"httpstream", viaCapture},
		{"proxy", viaProxy},
		{"wire", viaWire},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range readers {
				got := r.read(t, tt.method, tt.response)
				if got.bad != tt.bad || !got.bad && (got.status != tt.status || got.body != tt.body) {
					t.Errorf("%s: status %d body %q refused %v; want %d %q refused %v", r.name, got.status, got.body, got.bad, tt.status, tt.body, tt.bad)
				}
				if r.name != "wire" && tt.warn != "" && !strings.Contains(strings.Join(got.warns, "|"), tt.warn) {
					t.Errorf("%s: warnings %q, want one about %q", r.name, got.warns, tt.warn)
				}
				if v := got.header.Get("X-Long"); tt.name == "obs-fold" && v != "one two" {
					t.Errorf("%s: folded field %q", r.name, v)
				}
			}
		})
	}
}

// recorderAnswer is a recorded exchange's answer.
func recorderAnswer(x *session.Exchange) answer {
	a := answer{status: x.Response.Status, body: string(x.Response.Body), warns: x.Warnings, header: x.Response.Header}
	a.bad = strings.Contains(strings.Join(x.Warnings, "|"), "conflicting")
	return a
}

type events struct{ got []*session.Exchange }

func (e *events) RequestStarted(*session.Exchange) {}
func (e *events) Exchange(x *session.Exchange)     { e.got = append(e.got, x) }
func (e *events) Dropped(x *session.Exchange)      { e.got = append(e.got, x) }
func (e *events) Unsupported(string)               {}
func (e *events) Orphan()                          {}

// viaCapture feeds the request and the response to the packet-capture
// parser, then the server's close.
func viaCapture(t *testing.T, method, response string) answer {
	ev := &events{}
	c := httpstream.New(httpstream.Config{
		ID:      1,
		Addr:    [2]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50000"), netip.MustParseAddrPort("127.0.0.1:8080")},
		Client:  httpstream.Side0,
		MaxBody: 1 << 20,
	}, ev)
	c.Feed(httpstream.Side0, []byte(method+" / HTTP/1.1\r\nHost: x\r\n\r\n"), 1)
	c.Feed(httpstream.Side1, []byte(response), 2)
	c.End(httpstream.Side1, 3, true)
	c.Close()
	if len(ev.got) == 0 {
		t.Fatalf("httpstream: no exchange")
	}
	return recorderAnswer(ev.got[0])
}

// server answers every request on a connection with response, then
// closes it.
func server(t *testing.T, response string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					io.WriteString(c, response)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// viaProxy sends the request through a recording proxy to a server that
// gives the response, and returns what the proxy recorded.
func viaProxy(t *testing.T, method, response string) answer {
	p, err := proxy.New("http://" + server(t, response))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	addr, served, err := p.Start(ctx, "127.0.0.1:0", false)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	defer func() { stop(); served() }()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, method+" / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.Copy(io.Discard, c) // until the proxy passes on the server's close
	got := make(chan *session.Exchange, 1)
	go func() {
		x, _ := p.Next()
		got <- x
	}()
	select {
	case x := <-got:
		if x == nil {
			t.Fatal("proxy: no exchange")
		}
		return recorderAnswer(x)
	case <-time.After(5 * time.Second):
		t.Fatal("proxy: no exchange in 5s")
	}
	return answer{}
}

// viaWire sends the request with the replay client.
func viaWire(t *testing.T, method, response string) answer {
	w := wire.New(wire.Config{Addr: server(t, response), ConnectTimeout: time.Second, Timeout: 5 * time.Second, MaxIdle: 1, BodyLimit: 1 << 20})
	defer w.CloseAll()
	resp, _, err := w.Do(context.Background(), &wire.Request{Method: method, Target: "/", Host: "x"})
	if err != nil {
		return answer{bad: true}
	}
	return answer{status: resp.Status, body: string(resp.Body), header: resp.Header}
}
