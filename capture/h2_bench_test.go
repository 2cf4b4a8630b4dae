package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// h2Trace builds gRPC traffic over h2c: conns connections, each with its
// own HPACK encoders (so the dynamic tables are used as grpc-go uses
// them), rounds of three concurrent unary calls per connection with
// messages mostly of hundreds of bytes and some of tens of KB, in segments
// of up to 1448 bytes.
func h2Trace(conns, rounds int, seed uint64) *trace {
	rng := rand.New(rand.NewPCG(seed, 1))
	tr := newTrace(layers.LinkTypeEthernet)
	type peer struct {
		c   *conn
		buf [2]bytes.Buffer
		fr  [2]*http2.Framer
		hb  [2]bytes.Buffer
		enc [2]*hpack.Encoder
	}
	ps := make([]*peer, conns)
	send := func(p *peer, i int) {
		for _, s := range p.c.segments(i == 0, p.buf[i].String(), 1448) {
			p.c.emit(s)
			tr.tick(20 * time.Microsecond)
		}
		p.buf[i].Reset()
	}
	block := func(p *peer, i int, kv ...string) []byte {
		p.hb[i].Reset()
		for k := 0; k < len(kv); k += 2 {
			p.enc[i].WriteField(hpack.HeaderField{Name: kv[k], Value: kv[k+1]})
		}
		return bytes.Clone(p.hb[i].Bytes())
	}
	msg := func(n int) []byte {
		b := make([]byte, 5+n)
		binary.BigEndian.PutUint32(b[1:], uint32(n))
		for k := 5; k < len(b); k++ {
			b[k] = byte('a' + rng.IntN(26))
		}
		return b
	}
	for k := range ps {
		p := &peer{c: tr.conn(fmt.Sprintf("10.1.%d.%d:%d", k/250, k%250+1, 30000+k), "10.0.0.10:50051")}
		for i := range 2 {
			p.fr[i] = http2.NewFramer(&p.buf[i], nil)
			p.enc[i] = hpack.NewEncoder(&p.hb[i])
		}
		p.c.handshake()
		p.buf[0].WriteString(http2.ClientPreface)
		p.fr[0].WriteSettings()
		send(p, 0)
		p.fr[1].WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
		p.fr[1].WriteSettingsAck()
		send(p, 1)
		ps[k] = p
	}
	methods := []string{"/shop.Shop/GetOrder", "/shop.Shop/CreateOrder", "/shop.Shop/ListItems"}
	for r := range rounds {
		for _, k := range rng.Perm(conns) {
			p := ps[k]
			for s := range 3 {
				id := uint32(1 + 2*(3*r+s))
				p.fr[0].WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: block(p, 0,
					":method", "POST", ":scheme", "http", ":path", methods[s], ":authority", "10.0.0.10:50051",
					"content-type", "application/grpc", "user-agent", "grpc-go/1.84.0", "te", "trailers",
					"authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl")})
				p.fr[0].WriteData(id, true, msg(50+rng.IntN(400)))
			}
			send(p, 0)
			for s := range 3 {
				id := uint32(1 + 2*(3*r+s))
				n := 200 + rng.IntN(1800)
				if rng.IntN(20) == 0 {
					n = 20000 + rng.IntN(40000)
				}
				p.fr[1].WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: block(p, 1, ":status", "200", "content-type", "application/grpc")})
				body := msg(n)
				for len(body) > 0 {
					c := min(len(body), 16384)
					p.fr[1].WriteData(id, false, body[:c])
					body = body[c:]
				}
				p.fr[1].WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: block(p, 1, "grpc-status", "0", "grpc-message", "")})
			}
			send(p, 1)
		}
		tr.tick(time.Millisecond)
	}
	return tr
}

// BenchmarkHTTP2PcapToRecording is BenchmarkPcapToRecording for gRPC over
// h2c: read the pcap, reassemble, decode frames and HPACK, split gRPC
// messages, and write a recording (zstd level 1). Bytes are bytes of pcap.
//
//	go test ./capture -run XXX -bench HTTP2PcapToRecording -cpu 1 -benchtime 3x
func BenchmarkHTTP2PcapToRecording(b *testing.B) {
	const conns, rounds = 200, 20
	path := filepath.Join(os.TempDir(), fmt.Sprintf("reprise-bench-h2-%d-%d.pcap", conns, rounds))
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		h2Trace(conns, rounds, 42).writePcap(b, path+".tmp", false)
		if err := os.Rename(path+".tmp", path); err != nil {
			b.Fatal(err)
		}
	}
	fi, _ := os.Stat(path)
	want := conns * rounds * 3
	for _, sink := range []string{"discard", "recording-zstd1"} {
		b.Run("sink="+sink, func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(fi.Size())
			b.ReportAllocs()
			// MB per CPU second, as BenchmarkPcapToRecording reports it: a
			// loaded machine disturbs it far less than the wall rate.
			cpu0 := testkit.CPUTime()
			defer func() {
				if cpu := testkit.CPUTime() - cpu0; cpu > 0 {
					b.ReportMetric(float64(fi.Size())*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
				}
			}()
			for i := 0; i < b.N; i++ {
				src, err := pcapfile.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				p, err := FromPackets(context.Background(), src)
				if err != nil {
					b.Fatal(err)
				}
				var w RecordSink = discard{}
				if sink != "discard" {
					fw, err := session.Create(filepath.Join(dir, fmt.Sprintf("r%d.rpz", i)), session.Metadata{Source: "pcap:" + path}, session.Compression(1))
					if err != nil {
						b.Fatal(err)
					}
					w = fw
				}
				res, err := Record(context.Background(), p, w)
				if err != nil {
					b.Fatal(err)
				}
				src.Close()
				if res.Counters.Exchanges != uint64(want) || res.Counters.Incomplete != 0 || len(res.Counters.Unsupported) != 0 {
					b.Fatalf("counters = %+v, want %d exchanges", res.Counters, want)
				}
			}
		})
	}
}
