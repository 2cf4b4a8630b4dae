package proxy

import (
	"bufio"
	"bytes"
	"testing"
)

// relayAll runs the relay's message loop over in, as the proxy does on one
// side of a connection, and returns what it forwarded.
func relayAll(in []byte, isRequest bool) []byte {
	r := bufio.NewReaderSize(bytes.NewReader(in), 16)
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 16)
	for {
		if _, err := r.Peek(1); err != nil {
			break
		}
		raw, err := readHead(r, w, nil)
		w.Write(raw)
		if err != nil {
			break
		}
		h, err := parseHead(raw)
		if err != nil {
			break
		}
		fr, err := h.f.RequestBody()
		if !isRequest {
			fr, err = h.f.ResponseBody("GET", 200) // the status aside, as a 200 frames
		}
		if err != nil {
			break
		}
		rec := &body{max: 64}
		err = relayBody(r, w, fr, rec)
		if int64(len(rec.b)) > rec.max || int64(len(rec.b)) > rec.size {
			panic("recorded body exceeds its cap or its size")
		}
		if err != nil {
			break
		}
	}
	w.Flush()
	return out.Bytes()
}

// FuzzRelay checks the proxy's parsing relay on arbitrary bytes: it never
// panics, and everything it forwards is exactly a prefix of what it read,
// which is the promise that the proxy changes nothing on the wire.
func FuzzRelay(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n",
		"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"\r\n\r\nGET / HTTP/1.1\r\n folded\r\nX: y\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n12345",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, isRequest bool) {
		out := relayAll(in, isRequest)
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("forwarded bytes are not a prefix of the input:\nin  %q\nout %q", in, out)
		}
	})
}
