package session

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
)

// TestConnRecords writes connection records between exchanges and reads
// them back field for field, with the exchanges untouched, and checks a
// record cut short is reported as a bad record, not a panic.
func TestConnRecords(t *testing.T) {
	conns := []ConnInfo{
		{ID: 1, Client: netip.MustParseAddrPort("127.0.0.1:40000"), Server: netip.MustParseAddrPort("127.0.0.1:80"),
			Opened: 1_700_000_000_000_000_000, Closed: 1_700_000_000_250_000_000, ClosedBy: PartyClient, Exchanges: 3},
		{ID: 2, Client: netip.MustParseAddrPort("[::1]:40001"), Server: netip.MustParseAddrPort("[::1]:8080"),
			Opened: 1_700_000_001_000_000_000, Closed: 1_700_000_001_000_000_100, ClosedBy: PartyServer, Reset: true, Exchanges: 1},
		{ID: 3, Opened: 1_700_000_002_000_000_000, Exchanges: 0}, // open at capture end, close unknown
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range conns {
		ex := &Exchange{Conn: Conn{ID: conns[i].ID}, Request: Request{Method: "GET", Target: "/", Proto: "HTTP/1.1"}, Timing: Timing{RequestStart: conns[i].Opened + 1}}
		if err := w.WriteExchange(ex); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteConn(&conns[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		ex, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ex.Conn.ID != conns[n].ID {
			t.Errorf("exchange %d on connection %d, want %d", n, ex.Conn.ID, conns[n].ID)
		}
		n++
	}
	if n != len(conns) {
		t.Fatalf("read %d exchanges, want %d", n, len(conns))
	}
	got := r.Conns()
	if len(got) != len(conns) {
		t.Fatalf("read %d connection records, want %d", len(got), len(conns))
	}
	for i := range conns {
		if got[i] != conns[i] {
			t.Errorf("connection %d: got %+v, want %+v", i, got[i], conns[i])
		}
	}
	if s := r.Stats(); s.Conns != 3 || s.UnknownRecords != 0 {
		t.Errorf("stats: %d connection records, %d unknown; want 3, 0", s.Conns, s.UnknownRecords)
	}

	// Copy (slice, merge) keeps the records.
	r2, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w2, _ := NewWriter(&out, Metadata{Source: "copy"})
	if n, err := Copy(w2, r2); err != nil || n != 3 {
		t.Fatalf("Copy = %d, %v", n, err)
	}
	w2.Close()
	r3, _ := NewReader(bytes.NewReader(out.Bytes()))
	for {
		if _, err := r3.Next(); err != nil {
			break
		}
	}
	if got := r3.Conns(); len(got) != 3 || got[2] != conns[2] {
		t.Errorf("copied connection records %+v", got)
	}

	rec := encodeConn(nil, &conns[1])
	for cut := range len(rec) {
		var c ConnInfo
		if err := decodeConn(rec[:cut], &c); err == nil {
			t.Errorf("a record cut to %d of %d bytes decoded", cut, len(rec))
		}
	}
	bad := append([]byte(nil), rec...)
	bad[len(encodeConn(nil, &ConnInfo{ID: 2, Client: conns[1].Client, Server: conns[1].Server, Opened: conns[1].Opened}))-3] |= 3
	var c ConnInfo
	if err := decodeConn(bad, &c); err == nil {
		t.Errorf("a record closed by party 3 decoded: %+v", c)
	}
}
