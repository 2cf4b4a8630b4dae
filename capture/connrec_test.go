package capture_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/session"
)

// TestConnRecordsFromPcap records the loopback fixture and checks its two
// connection records against the SYN, FIN and exchanges in the capture
// (tcpdump -tt -r testdata/tcpdump-lo.pcap): a keep-alive connection the
// client closed after seven exchanges, and a Connection: close one the
// server closed after one.
func TestConnRecordsFromPcap(t *testing.T) {
	src, err := pcapfile.Open("testdata/tcpdump-lo.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p, err := capture.FromPackets(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := session.NewWriter(&buf, session.Metadata{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := capture.Record(context.Background(), p, w); err != nil {
		t.Fatal(err)
	}
	r, err := session.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint64]int{}
	for {
		ex, err := r.Next()
		if err != nil {
			break
		}
		ids[ex.Conn.ID]++
	}
	srv := netip.MustParseAddrPort("127.0.0.1:33285")
	want := []session.ConnInfo{
		{Client: netip.MustParseAddrPort("127.0.0.1:33336"), Server: srv, Opened: 1795656703_005420000, Closed: 1795656703_006981000, ClosedBy: session.PartyClient, Exchanges: 7},
		{Client: netip.MustParseAddrPort("127.0.0.1:33338"), Server: srv, Opened: 1795656703_007330000, Closed: 1795656703_007703000, ClosedBy: session.PartyServer, Exchanges: 1},
	}
	got := r.Conns()
	if len(got) != len(want) {
		t.Fatalf("%d connection records, want %d: %+v", len(got), len(want), got)
	}
	for i, c := range got {
		if ids[c.ID] != c.Exchanges {
			t.Errorf("connection %d: record says %d exchanges, the recording holds %d", c.ID, c.Exchanges, ids[c.ID])
		}
		c.ID = 0
		if c != want[i] {
			t.Errorf("connection %d:\n got %+v\nwant %+v", i, c, want[i])
		}
	}
}
