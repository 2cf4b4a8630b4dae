package capture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/reprise-tool/reprise/capture/internal/sourcetest"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// apiTrace builds realistic JSON API traffic: conns keep-alive connections
// open at once, rounds exchanges on each, requests and responses of mixed
// sizes (mostly small, some tens of KB), segments of up to 1448 bytes and
// an ACK for every second data segment, as a real capture has.
func apiTrace(conns, rounds int, seed uint64) *trace {
	rng := rand.New(rand.NewPCG(seed, 1))
	tr := newTrace(layers.LinkTypeEthernet)
	cs := make([]*conn, conns)
	for i := range cs {
		cs[i] = tr.conn(fmt.Sprintf("10.1.%d.%d:%d", i/250, i%250+1, 30000+i), "10.0.0.10:8080")
		cs[i].handshake()
		tr.tick(50 * time.Microsecond)
	}
	bodySize := func() int { return sourcetest.TraceBodySize(rng) }
	jsonBody := func(n int) string { return sourcetest.TraceJSON(rng, n) }
	sendAcked := func(c *conn, fromClient bool, data string) {
		for i, s := range c.segments(fromClient, data, 1448) {
			c.emit(s)
			tr.tick(20 * time.Microsecond)
			if i%2 == 1 {
				if fromClient {
					c.emit(c.segment(false, c.sseq, "A", nil))
				} else {
					c.emit(c.segment(true, c.cseq, "A", nil))
				}
			}
		}
	}
	for r := 0; r < rounds; r++ {
		order := rng.Perm(conns)
		for _, i := range order {
			c := cs[i]
			if rng.IntN(4) == 0 {
				body := jsonBody(200 + rng.IntN(1500))
				sendAcked(c, true, fmt.Sprintf("POST /api/orders HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: sim/1.0\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
			} else {
				sendAcked(c, true, fmt.Sprintf("GET /api/items?page=%d&sort=price HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: sim/1.0\r\nAccept: application/json\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl\r\nCookie: SESSIONID=abc%d\r\n\r\n", rng.IntN(50), i))
			}
		}
		for _, i := range rng.Perm(conns) {
			body := jsonBody(bodySize())
			sendAcked(cs[i], false, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Thu, 26 Nov 2026 01:00:00 GMT\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		}
		tr.tick(time.Millisecond)
	}
	return tr
}

// benchPcap writes the API trace to a pcap file once per process.
func benchPcap(b *testing.B, conns, rounds int) (string, int64, int) {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("reprise-bench-%d-%d.pcap", conns, rounds))
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return path, fi.Size(), conns * rounds
	}
	tr := apiTrace(conns, rounds, 42)
	tmp := path + ".tmp"
	tr.writePcap(b, tmp, false)
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	return path, fi.Size(), conns * rounds
}

// BenchmarkPcapToRecording measures the whole import on one core: read the
// pcap, decode, reassemble, parse HTTP, order, and write a compressed
// recording with session.Create (zstd level 1, fastest, and 2, the default).
// The sink=discard case stops before the writer, to show the packet path's
// own cost; -keep-secrets and -redact compare the recording loop without
// and with the default redaction. Bytes are bytes of pcap.
//
//	go test ./capture -run XXX -bench PcapToRecording -cpu 1 -benchtime 5x
func BenchmarkPcapToRecording(b *testing.B) {
	path, size, want := benchPcap(b, 1000, 20)
	for _, sink := range []string{"discard", "recording-zstd1", "recording-zstd2", "recording-zstd1-keep-secrets", "recording-zstd1-redact"} {
		b.Run("sink="+sink, func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(size)
			b.ReportAllocs()
			cpu0 := testkit.CPUTime()
			defer func() {
				if cpu := testkit.CPUTime() - cpu0; cpu > 0 {
					b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
				}
			}()
			for i := 0; i < b.N; i++ {
				src, err := pcapfile.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				var ropts []RecordOption
				if strings.HasSuffix(sink, "-redact") || strings.HasSuffix(sink, "-keep-secrets") {
					// -redact is the CLI's default redaction: everything
					// that authenticates (every request of the trace carries
					// a bearer JWT, half a session cookie). -keep-secrets is
					// the same loop with the defaults off: the two, in one
					// run, give the cost of the defaults, held under 10%.
					rd, err := redact.New(redact.Config{NoDefaults: strings.HasSuffix(sink, "-keep-secrets")})
					if err != nil {
						b.Fatal(err)
					}
					ropts = append(ropts, WithRedactor(rd))
				}
				p, err := FromPackets(context.Background(), src)
				if err != nil {
					b.Fatal(err)
				}
				var w RecordSink = discard{}
				var fw *session.FileWriter
				if sink != "discard" {
					level := 1
					if strings.HasPrefix(sink, "recording-zstd2") {
						level = 2
					}
					fw, err = session.Create(filepath.Join(dir, fmt.Sprintf("r%d.rpz", i)), session.Metadata{Source: "pcap:" + path}, session.Compression(level))
					if err != nil {
						b.Fatal(err)
					}
					w = fw
				}
				res, err := Record(context.Background(), p, w, ropts...)
				if err != nil {
					b.Fatal(err)
				}
				src.Close()
				if res.Counters.Exchanges != uint64(want) || res.Counters.Incomplete != 0 {
					b.Fatalf("counters = %+v, want %d exchanges", res.Counters, want)
				}
			}
		})
	}
}

// BenchmarkPcapMemory reads captures with the same 1000 open connections
// but 1x, 4x and 16x the exchanges (so the pcap grows 16-fold) and reports
// the peak live heap: it stays flat, bounded by open connections and the
// reorder window, not by the size of the file.
//
//	go test ./capture -run XXX -bench PcapMemory -cpu 1 -benchtime 1x
//
// The last case has 4000 connections open at once instead of 1000: the
// heap grows with the connections, which is what bounds it.
func BenchmarkPcapMemory(b *testing.B) {
	for _, c := range []struct{ conns, rounds int }{{1000, 5}, {1000, 20}, {1000, 80}, {4000, 5}} {
		path, size, want := benchPcap(b, c.conns, c.rounds)
		b.Run(fmt.Sprintf("conns=%d/pcap=%dMB", c.conns, size>>20), func(b *testing.B) {
			b.SetBytes(size)
			var peak uint64
			for i := 0; i < b.N; i++ {
				runtime.GC()
				src, err := pcapfile.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				var ms runtime.MemStats
				p, err := FromPackets(context.Background(), src, WithExchangeFunc(func(*session.Exchange) {
					n++
					if n%2000 == 0 {
						runtime.GC()
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapAlloc)
					}
				}))
				if err != nil {
					b.Fatal(err)
				}
				res, err := Record(context.Background(), p, discard{})
				if err != nil {
					b.Fatal(err)
				}
				src.Close()
				if res.Counters.Exchanges != uint64(want) {
					b.Fatalf("exchanges = %d, want %d", res.Counters.Exchanges, want)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-live-heap-MB")
		})
	}
}

// discard is a RecordSink that keeps nothing.
type discard struct{}

func (discard) WriteExchange(*session.Exchange) error { return nil }
func (discard) UpdateCounters(session.Counters)       {}
func (discard) WriteTimeline(*session.Timeline) error { return nil }
func (discard) SetMetadata(session.Metadata)          {}
func (discard) Close() error                          { return nil }
