package wire

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// Reading a response for its status alone allocates nothing, and a whole
// response one string for its header block, the fields' slice and the
// body (and a buffer when its length is unknown): the framing is parsed in place in the reader's buffer.
func TestReadAllocs(t *testing.T) {
	answers := []struct {
		a    string
		most float64 // allocations of a whole read
	}{
		// the header block, the fields, the body
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Thu, 26 Nov 2026 01:00:00 GMT\r\nContent-Length: 2\r\n\r\nok", 3},
		// and a read buffer for a body of unknown length (the chunked
		// reader itself is the connection's)
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", 4},
	}
	for _, tt := range answers {
		a := tt.a
		stream := bytes.Repeat([]byte(a), 200)
		r := bytes.NewReader(stream)
		c := &Conn{br: bufio.NewReaderSize(r, 16<<10)}
		var resp session.Response
		rewind := func() {
			if c.br.Buffered() == 0 && r.Len() == 0 {
				r.Reset(stream)
				c.br.Reset(r)
			}
		}
		if n := testing.AllocsPerRun(100, func() {
			rewind()
			if _, _, err := c.readResponseInto(&resp, "GET", -1, false); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("status only: %v allocations a response, want 0", n)
		}
		if n := testing.AllocsPerRun(100, func() {
			rewind()
			if _, _, err := c.readResponseInto(&resp, "GET", maxLearnBody, false); err != nil {
				t.Fatal(err)
			}
		}); n > tt.most {
			t.Errorf("whole: %v allocations a response, want at most %v", n, tt.most)
		}
	}
}
