package wire

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// The wire client's response parser reads what net/http's ReadResponse
// reads: the same status, protocol, body and header values, the same
// framing, and an error where net/http errs.
func TestWireResponseLikeNetHTTP(t *testing.T) {
	tests := []struct {
		name, method, answer string
		keep                 bool
	}{
		// a plain answer with its length
		{"length", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", true},
		// chunked, with a trailer
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n!!!\r\n0\r\nX-T: 1\r\n\r\n", true},
		// chunked wins over a Content-Length
		{"chunked and length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", true},
		// interim responses are skipped
		{"interim", "POST", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", true},
		// no body after 204, 304 and HEAD, whatever the length says
		{"no content", "GET", "HTTP/1.1 204 No Content\r\n\r\n", true},
		{"not modified", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", true},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true},
		// HTTP/1.0: closed unless kept alive, body to the close
		{"http/1.0 close", "GET", "HTTP/1.0 200 OK\r\n\r\nuntil the close", false},
		{"http/1.0 keep-alive", "GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", true},
		// Connection: close among other tokens
		{"close token", "GET", "HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\nContent-Length: 2\r\n\r\nok", false},
		// no framing in HTTP/1.1: the body runs to the close
		{"no framing", "GET", "HTTP/1.1 200 OK\r\n\r\nrest", false},
		// repeated fields kept in order, a folded line joined, a bare LF, no reason phrase
		{"fields", "GET", "HTTP/1.1 404\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n", true},
		// a space inside a name is let through, as net/http does
		{"space in name", "GET", "HTTP/1.1 200 OK\r\nA B: c\r\nContent-Length: 0\r\n\r\n", true},
		// equal repeated lengths are one length (both fields kept)
		{"same lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", true},
		// errors
		{"differing lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!", false},
		{"bad length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n", false},
		{"signed length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", false},
		{"length not a number", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", false},
		{"length past int64", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nok", false},
		{"long length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0000000000000000002\r\n\r\nok", true},
		{"unknown encoding", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false},
		{"not http", "GET", "SSH-2.0-OpenSSH\r\n\r\n", false},
		{"short status", "GET", "HTTP/1.1 20 OK\r\n\r\n", false},
		{"no colon", "GET", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", false},
		{"no name", "GET", "HTTP/1.1 200 OK\r\n: c\r\n\r\n", false},
		{"short body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", false},
		{"cut in the head", "GET", "HTTP/1.1 200 OK\r\nContent-Le", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Conn{br: bufio.NewReader(strings.NewReader(tt.answer))}
			got := new(session.Response)
			n, keep, err := c.readResponseInto(got, tt.method, maxLearnBody, false)

			// Read for its status alone, the same answer frames the same
			// way and keeps neither fields nor body.
			var only session.Response
			c = &Conn{br: bufio.NewReader(strings.NewReader(tt.answer))}
			on, okeep, oerr := c.readResponseInto(&only, tt.method, -1, false)
			if (oerr != nil) != (err != nil) || on != n || okeep != keep ||
				(err == nil && (only.Status != got.Status || only.Proto != got.Proto || only.BodySize != got.BodySize)) {
				t.Errorf("status only: %d %s (%d, keep %v, %v); whole: %d %s (%d, keep %v, %v)",
					only.Status, only.Proto, on, okeep, oerr, got.Status, got.Proto, n, keep, err)
			}
			if only.Header != nil || only.Body != nil {
				t.Errorf("status only kept %v %q", only.Header, only.Body)
			}

			want, werr := http.ReadResponse(bufio.NewReader(strings.NewReader(tt.answer)), &http.Request{Method: tt.method})
			for werr == nil && want.StatusCode/100 == 1 && want.StatusCode != 101 {
				rest, _ := bytes.CutPrefix([]byte(tt.answer), []byte(tt.answer[:strings.Index(tt.answer, "\r\n\r\n")+4]))
				tt.answer = string(rest)
				want, werr = http.ReadResponse(bufio.NewReader(strings.NewReader(tt.answer)), &http.Request{Method: tt.method})
			}
			var body []byte
			if werr == nil {
				var buf bytes.Buffer
				_, werr = buf.ReadFrom(want.Body)
				body = buf.Bytes()
			}
			if (err != nil) != (werr != nil) {
				t.Fatalf("error %v, net/http's %v", err, werr)
			}
			if err != nil {
				return
			}
			if got.Status != want.StatusCode || got.Proto != want.Proto || !bytes.Equal(got.Body, body) || n != int64(len(body)) || got.BodySize != n {
				t.Errorf("got %d %s %q (%d), net/http %d %s %q", got.Status, got.Proto, got.Body, n, want.StatusCode, want.Proto, body)
			}
			for name, vals := range want.Header {
				g := got.Header.Values(name)
				if name == "Content-Length" {
					g = slices.Compact(g) // net/http keeps one of equal lengths
				}
				if strings.Join(g, "|") != strings.Join(vals, "|") {
					t.Errorf("%s: %q, net/http %q", name, g, vals)
				}
			}
			if keep != tt.keep {
				t.Errorf("keep %v, want %v", keep, tt.keep)
			}
		})
	}
}

// Sendable refuses the hop-by-hop fields and the two the sender writes
// itself, in any letter case, and fields that would break the framing.
func TestSendable(t *testing.T) {
	for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
		"Te", "Trailer", "Upgrade", "Content-Length", "Host", "Expect", "Proxy-Authorization"} {
		for _, n := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if Sendable(session.Header{Name: n, Value: "x"}) {
				t.Errorf("%q is not sent", n)
			}
		}
	}
	for _, n := range []string{"T", "Hosts", "User-Agent", "Content-Type", "X-Connection", "Content-Lengths"} {
		if !Sendable(session.Header{Name: n, Value: "x"}) {
			t.Errorf("%q is sent", n)
		}
	}
	for _, h := range []session.Header{{Name: "", Value: "x"}, {Name: "A B", Value: "x"}, {Name: "A", Value: "x\r\nB: y"}} {
		if Sendable(h) {
			t.Errorf("%q is not sent", h)
		}
	}
}
