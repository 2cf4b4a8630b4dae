package capture

import (
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reprise-tool/reprise/session"
)

var fuzzLinks = []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, layers.LinkTypeRaw, layers.LinkTypeNull}

// packBlob encodes packets as 2-byte length prefixed records, the form
// FuzzPackets reads.
func packBlob(pkts []packet) []byte {
	var b []byte
	for _, p := range pkts {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.data)))
		b = append(b, p.data...)
	}
	return b
}

// blobSource replays length-prefixed packets 1 ms apart; a zero-length
// record jumps the clock by a minute (so idle and gap timeouts fire).
type blobSource struct {
	blob []byte
	link layers.LinkType
	now  time.Time
}

func (s *blobSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	for {
		if len(s.blob) < 2 {
			return nil, gopacket.CaptureInfo{}, io.EOF
		}
		n := int(binary.BigEndian.Uint16(s.blob))
		s.blob = s.blob[2:]
		n = min(n, len(s.blob))
		data := s.blob[:n]
		s.blob = s.blob[n:]
		if n == 0 {
			s.now = s.now.Add(time.Minute)
			continue
		}
		s.now = s.now.Add(time.Millisecond)
		return data, gopacket.CaptureInfo{Timestamp: s.now, CaptureLength: n, Length: n}, nil
	}
}

func (s *blobSource) LinkType() layers.LinkType { return s.link }

// FuzzPackets feeds arbitrary bytes as packet data through the whole packet
// path (decode, dedupe, reassembly, HTTP parsing, ordering): no panic, and
// the counters agree with what came out.
func FuzzPackets(f *testing.F) {
	for i, build := range []func(tr *trace){
		func(tr *trace) {
			c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
			c.handshake()
			c.send(true, reqB)
			c.send(false, respB)
			c.fin(true)
			c.fin(false)
		},
		func(tr *trace) {
			c := tr.conn("[fd00::1]:40000", "[fd00::2]:80")
			c.send(true, "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
			segs := c.segments(false, "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n012345678901234567890123456789", 9)
			c.emit(segs[2])
			c.emit(segs[0])
			c.emit(segs[1])
			c.rst(false)
		},
	} {
		for _, link := range fuzzLinks {
			tr := newTrace(link)
			build(tr)
			f.Add(byte(i*len(fuzzLinks))+byte(link), packBlob(tr.pkts))
		}
	}
	f.Fuzz(func(t *testing.T, sel byte, blob []byte) {
		src := &blobSource{blob: blob, link: fuzzLinks[int(sel)%len(fuzzLinks)], now: time.Unix(1_700_000_000, 0)}
		xs, c := collect(t, src, WithMaxBody(int64(sel%32)), WithDedupe(int(sel%4)))
		n := uint64(len(xs))
		for _, x := range xs {
			if int64(len(x.Request.Body)) > x.Request.BodySize || int64(len(x.Response.Body)) > x.Response.BodySize {
				t.Fatalf("body longer than its size: %+v", x)
			}
			if x.Flags&session.FlagNoResponse != 0 && x.Response.Status != 0 {
				t.Fatalf("no-response flag with a status")
			}
		}
		if c.Exchanges != n {
			t.Fatalf("counted %d exchanges, emitted %d", c.Exchanges, n)
		}
		if c.PacketsMalformed+c.PacketsDuplicate > c.PacketsSeen {
			t.Fatalf("counters = %+v", c)
		}
	})
}
