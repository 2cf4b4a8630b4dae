package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/session"
)

// collect runs the pipeline to its end.
func collect(t *testing.T, src PacketSource, opts ...Option) ([]*session.Exchange, session.Counters) {
	t.Helper()
	p, err := FromPackets(context.Background(), src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var out []*session.Exchange
	for {
		x, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out, p.Counters()
}

// collectFile runs the pipeline on the capture file at path to its end.
func collectFile(t *testing.T, path string, opts ...Option) ([]*session.Exchange, session.Counters) {
	t.Helper()
	src, err := pcapfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return collect(t, src, opts...)
}

// line summarises an exchange for comparison.
func line(x *session.Exchange) string {
	s := fmt.Sprintf("%d/%d %s %s %q", x.Conn.ID, x.Index, x.Request.Method, x.Request.Target, x.Request.Body)
	if x.Response.Status != 0 {
		s += fmt.Sprintf(" -> %d %q", x.Response.Status, x.Response.Body)
	}
	if x.Flags != 0 {
		s += " " + flagNames(x.Flags)
	}
	return s
}

func flagNames(f session.Flags) string {
	var n []string
	for _, v := range []struct {
		f    session.Flags
		name string
	}{{session.FlagRequestTruncated, "req-trunc"}, {session.FlagResponseTruncated, "resp-trunc"}, {session.FlagNoResponse, "no-resp"},
		{session.FlagRequestGap, "req-gap"}, {session.FlagResponseGap, "resp-gap"}, {session.FlagRedacted, "redacted"}} {
		if f&v.f != 0 {
			n = append(n, v.name)
		}
	}
	return "[" + strings.Join(n, ",") + "]"
}

func lines(xs []*session.Exchange) []string {
	var out []string
	for _, x := range xs {
		out = append(out, line(x))
	}
	return out
}

const (
	reqA  = "GET /a HTTP/1.1\r\nHost: shop\r\n\r\n"
	respA = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	reqB  = "POST /b HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\n\r\nxyz"
	respB = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
)

// TestReassembly builds TCP connections segment by segment and checks the
// exact exchanges the pipeline finds.
func TestReassembly(t *testing.T) {
	tests := []struct {
		name  string
		build func(tr *trace)
		want  []string
		check func(t *testing.T, c session.Counters)
	}{
		{
			// The plain case: handshake, two exchanges, FIN from both sides.
			name: "in order",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.handshake()
				c.send(true, reqA)
				c.send(false, respA)
				c.send(true, reqB)
				c.send(false, respB)
				c.fin(true)
				c.fin(false)
			},
			want: []string{`1/0 GET /a "" -> 200 "hello"`, `1/1 POST /b "xyz" -> 201 "ok"`},
		},
		{
			// Response segments arrive in reverse order.
			name: "out of order",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.handshake()
				c.send(true, reqA)
				segs := c.segments(false, respA, 10)
				for i := len(segs) - 1; i >= 0; i-- {
					c.emit(segs[i])
				}
				c.fin(true)
				c.fin(false)
			},
			want: []string{`1/0 GET /a "" -> 200 "hello"`},
		},
		{
			// A segment retransmitted (new IP id, same bytes): read once.
			name: "retransmitted",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.handshake()
				segs := c.segments(true, reqB, 12)
				for _, s := range segs {
					c.emit(s)
				}
				c.emit(c.segment(true, c.cseq-uint32(len(reqB)), "PA", []byte(reqB[:12])))
				c.send(false, respB)
			},
			want: []string{`1/0 POST /b "xyz" -> 201 "ok"`},
		},
		{
			// Overlapping segments: the second repeats part of the first.
			name: "overlapping",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.handshake()
				c.send(true, reqA)
				base := c.sseq
				c.emit(c.segment(false, base, "PA", []byte(respA[:20])))
				c.emit(c.segment(false, base+10, "PA", []byte(respA[10:])))
				c.sseq += uint32(len(respA))
				c.send(true, reqB)
				c.send(false, respB)
			},
			want: []string{`1/0 GET /a "" -> 200 "hello"`, `1/1 POST /b "xyz" -> 201 "ok"`},
		},
		{
			// A lost segment in a response body: the exchange is flagged,
			// the stream moves on after the gap timeout and the next
			// exchange is whole.
			name: "lost segment",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.handshake()
				c.send(true, reqA)
				segs := c.segments(false, respA, 40)
				c.emit(segs[0]) // segs[1] (the body) is lost
				tr.tick(3 * time.Second)
				c.send(true, reqB)
				c.send(false, respB)
				tr.tick(3 * time.Second)
				c.send(true, reqA)
				c.send(false, respA)
			},
			want: []string{`1/0 GET /a "" -> 200 "he\x00\x00\x00" [resp-gap]`, `1/1 POST /b "xyz" -> 201 "ok"`, `1/2 GET /a "" -> 200 "hello"`},
		},
		{
			// A response delimited by the server's FIN.
			name: "FIN ends body",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.handshake()
				c.send(true, "GET /old HTTP/1.0\r\n\r\n")
				c.send(false, "HTTP/1.0 200 OK\r\n\r\nuntil close")
				c.fin(false)
				c.fin(true)
			},
			want: []string{`1/0 GET /old "" -> 200 "until close"`},
		},
		{
			// The server resets the connection instead of answering.
			name: "RST",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.handshake()
				c.send(true, reqA)
				c.send(false, respA)
				c.send(true, reqB)
				c.rst(false)
				tr.tick(time.Second)
				d := tr.conn("10.0.0.1:40001", "10.0.0.2:8080")
				d.handshake()
				d.send(true, reqA)
				d.send(false, respA)
			},
			want: []string{`1/0 GET /a "" -> 200 "hello"`, `1/1 POST /b "xyz" [no-resp]`, `2/0 GET /a "" -> 200 "hello"`},
		},
		{
			// A connection that goes silent is flushed after the idle
			// timeout: its exchange comes out before later traffic ends.
			name: "idle flush",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.handshake()
				c.send(true, reqA)
				tr.tick(2 * time.Minute)
				d := tr.conn("10.0.0.1:40001", "10.0.0.2:8080")
				d.handshake()
				d.send(true, reqB)
				d.send(false, respB)
			},
			want: []string{`1/0 GET /a "" [no-resp]`, `2/0 POST /b "xyz" -> 201 "ok"`},
			check: func(t *testing.T, c session.Counters) {
				if c.Incomplete != 1 || c.Exchanges != 2 || c.Connections != 2 {
					t.Errorf("counters = %+v", c)
				}
			},
		},
		{
			// A connection already open when the capture began: no SYN.
			name: "no handshake",
			build: func(tr *trace) {
				c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				c.send(false, "ody of an earlier response")
				c.send(true, "the end of an earlier request body")
				c.send(true, reqA)
				c.send(false, respA)
			},
			want: []string{`1/0 GET /a "" -> 200 "hello"`},
		},
		{
			// On lo every packet is captured twice: each counts once.
			name: "duplicates",
			build: func(tr *trace) {
				c := tr.conn("127.0.0.1:40000", "127.0.0.1:8080")
				c.handshake()
				for _, s := range c.segments(true, reqB, 20) {
					c.emit(s)
					c.emit(s)
				}
				c.send(false, respB)
			},
			want: []string{`1/0 POST /b "xyz" -> 201 "ok"`},
			check: func(t *testing.T, c session.Counters) {
				if c.PacketsDuplicate != 3 {
					t.Errorf("duplicates = %d, want 3", c.PacketsDuplicate)
				}
			},
		},
		{
			// Exchanges of concurrent connections come out in
			// RequestStart order, though the first finishes last.
			name: "time order",
			build: func(tr *trace) {
				slow := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
				fast := tr.conn("10.0.0.1:40001", "10.0.0.2:8080")
				slow.handshake()
				fast.handshake()
				slow.send(true, reqA)
				tr.tick(time.Millisecond)
				fast.send(true, reqB)
				fast.send(false, respB)
				tr.tick(time.Second)
				slow.send(false, respA)
			},
			want: []string{`1/0 GET /a "" -> 200 "hello"`, `2/0 POST /b "xyz" -> 201 "ok"`},
		},
		{
			// IPv6 in VLAN-tagged Ethernet frames.
			name: "IPv6 and VLAN",
			build: func(tr *trace) {
				tr.vlan = true
				c := tr.conn("[fd00::1]:40000", "[fd00::2]:8080")
				c.handshake()
				c.send(true, reqA)
				c.send(false, respA)
			},
			want: []string{`1/0 GET /a "" -> 200 "hello"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrace(layers.LinkTypeEthernet)
			tt.build(tr)
			got, c := collect(t, &memSource{tr: tr}, WithPorts(8080))
			if strings.Join(lines(got), "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("exchanges:\n got %q\nwant %q", lines(got), tt.want)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			if c.PacketsSeen != uint64(len(tr.pkts)) {
				t.Errorf("packets seen %d, want %d", c.PacketsSeen, len(tr.pkts))
			}
		})
	}
}

// TestTiming checks the four timestamps come from the packets.
func TestTiming(t *testing.T) {
	tr := newTrace(layers.LinkTypeEthernet)
	c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
	c.handshake()
	t0 := tr.now
	c.emit(c.segments(true, reqB, 30)[0])
	tr.tick(10 * time.Millisecond)
	c.emit(c.segment(true, c.cseq-uint32(len(reqB)-30), "PA", []byte(reqB[30:])))
	tr.tick(50 * time.Millisecond)
	c.send(false, respB)
	got, _ := collect(t, &memSource{tr: tr})
	if len(got) != 1 {
		t.Fatalf("got %d exchanges", len(got))
	}
	want := session.Timing{
		RequestStart:  t0.UnixNano(),
		RequestEnd:    t0.Add(10 * time.Millisecond).UnixNano(),
		ResponseStart: t0.Add(60 * time.Millisecond).UnixNano(),
		ResponseEnd:   t0.Add(60 * time.Millisecond).UnixNano(),
	}
	if got[0].Timing != want {
		t.Errorf("timing = %+v, want %+v", got[0].Timing, want)
	}
	if got[0].Timing.Latency() != 50*time.Millisecond {
		t.Errorf("latency = %v", got[0].Timing.Latency())
	}
}

// TestUnsupportedCounted checks TLS connections are counted and write
// nothing, and HTTP/2 SETTINGS alone write nothing either.
func TestUnsupportedCounted(t *testing.T) {
	tr := newTrace(layers.LinkTypeEthernet)
	c := tr.conn("10.0.0.1:40000", "10.0.0.2:443")
	c.handshake()
	c.send(true, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
	c.send(false, "\x16\x03\x03\x00\x5a\x02\x00\x00\x56")
	d := tr.conn("10.0.0.1:40001", "10.0.0.2:8080")
	d.handshake()
	d.send(true, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	d.send(false, "\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	got, cnt := collect(t, &memSource{tr: tr})
	if len(got) != 0 {
		t.Errorf("got exchanges %q", lines(got))
	}
	// HTTP/2 is recorded now: its SETTINGS alone make no exchange and
	// nothing unsupported.
	if cnt.Unsupported["tls"] != 1 || cnt.Unsupported["http2"] != 0 {
		t.Errorf("unsupported = %v", cnt.Unsupported)
	}
}

// TestFilterAndHook checks the port and host filters and the exchange hook.
func TestFilterAndHook(t *testing.T) {
	tr := newTrace(layers.LinkTypeEthernet)
	for i, srv := range []string{"10.0.0.2:8080", "10.0.0.2:9090", "10.0.0.3:8080"} {
		c := tr.conn(fmt.Sprintf("10.0.0.1:%d", 40000+i), srv)
		c.handshake()
		c.send(true, reqA)
		c.send(false, respA)
	}
	var hooked int
	got, _ := collect(t, &memSource{tr: tr}, WithPorts(8080), WithHosts(mustAddr("10.0.0.2")),
		WithExchangeFunc(func(x *session.Exchange) { hooked++; x.Flags |= session.FlagRedacted }))
	if len(got) != 1 || got[0].Conn.Server.String() != "10.0.0.2:8080" || got[0].Flags != session.FlagRedacted || hooked != 1 {
		t.Errorf("got %q, hooked %d", lines(got), hooked)
	}
}

// TestCancel checks a cancelled context ends the pipeline cleanly: what
// was in progress is emitted, flagged.
func TestCancel(t *testing.T) {
	tr := newTrace(layers.LinkTypeEthernet)
	c := tr.conn("10.0.0.1:40000", "10.0.0.2:8080")
	c.handshake()
	c.send(true, reqA)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, err := FromPackets(ctx, &memSource{tr: tr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after cancel = %v, want io.EOF", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Option{WithPorts(0), WithPorts(70000), WithMaxBody(-1), WithIdleTimeout(0), WithDedupe(-1), WithExchangeFunc(nil), WithGapTimeout(-1)} {
		if _, err := FromPackets(context.Background(), &memSource{tr: newTrace(layers.LinkTypeEthernet)}, o); err == nil {
			t.Errorf("option accepted, want an error")
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestHookWorkers checks exchange funcs on several goroutines leave the
// order of exchanges as it was and run once per exchange.
func TestHookWorkers(t *testing.T) {
	tr := newTrace(layers.LinkTypeEthernet)
	for i := 0; i < 30; i++ {
		c := tr.conn(fmt.Sprintf("10.0.0.1:%d", 40000+i), "10.0.0.2:8080")
		c.handshake()
		c.send(true, reqA)
		c.send(false, respA)
		tr.tick(time.Millisecond)
	}
	plain, _ := collect(t, &memSource{tr: tr})
	var calls atomic.Int64
	par, _ := collect(t, &memSource{tr: tr}, WithHookWorkers(4), WithExchangeFunc(func(x *session.Exchange) {
		calls.Add(1)
		x.Warnings = append(x.Warnings, "hooked")
	}))
	if strings.Join(lines(plain), "\n") != strings.Join(lines(par), "\n") || calls.Load() != 30 {
		t.Errorf("with workers: %d calls, exchanges\n%q\nwant\n%q", calls.Load(), lines(par), lines(plain))
	}
	for _, x := range par {
		if len(x.Warnings) != 1 {
			t.Errorf("exchange %s: warnings %v", line(x), x.Warnings)
		}
	}
}
