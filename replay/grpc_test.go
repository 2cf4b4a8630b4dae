package replay

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/fixtures/grpcshop"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
)

// grpcRecording reads the committed tcpdump capture of the gRPC shop
// (capture/testdata) into exchanges, with the server's own counts saved
// beside it.
func grpcRecording(t *testing.T) ([]*session.Exchange, grpcshop.Counts) {
	t.Helper()
	dir := filepath.Join("..", "capture", "testdata")
	var truth struct {
		Port   int
		Counts grpcshop.Counts
	}
	raw, err := os.ReadFile(filepath.Join(dir, "grpcshop-lo.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	src, err := pcapfile.Open(filepath.Join(dir, "grpcshop-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pl, err := capture.FromPackets(context.Background(), src, capture.WithPorts(truth.Port))
	if err != nil {
		t.Fatal(err)
	}
	var xs []*session.Exchange
	for {
		x, err := pl.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	return xs, truth.Counts
}

// TestReplayGRPCShop replays the capture of the gRPC shop against a fresh
// shop at 1x, 5x, 10x and 5x with --scale 3: every call goes on HTTP/2 (two connections, as
// recorded), the server counts the recording's calls and messages per
// method and every recorded status, and no violation: the tokens, the
// rotating refresh tokens and the order ids the live shop issues inside
// protobuf messages are learned and carried live (in authorization
// metadata and inside later messages).
func TestReplayGRPCShop(t *testing.T) {
	xs, want := grpcRecording(t)
	for _, tc := range []struct {
		speed float64
		scale int
	}{{1, 1}, {5, 1}, {10, 1}, {5, 3}} {
		speed, k := tc.speed, tc.scale
		srv := grpcshop.NewServer()
		addr, stop, err := srv.Serve("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rep := run(t, "http://"+addr, session.NewSliceSource(xs...), WithPacer(Speed(speed)), WithScale(k))
		stop()
		got := srv.Counts()
		for m, n := range want.Calls {
			if got.Calls[m] != n*k {
				t.Errorf("%gx scale %d: %s called %d times, recorded %d", speed, k, m, got.Calls[m], n)
			}
		}
		for m, n := range want.MessagesIn {
			if got.MessagesIn[m] != n*k {
				t.Errorf("%gx scale %d: %s got %d client messages, recorded %d", speed, k, m, got.MessagesIn[m], n)
			}
		}
		if c := rep.Connections; c == nil || c.HTTP2 != uint64(2*k) || c.Opened != uint64(2*k) {
			t.Errorf("%gx scale %d: connections %+v, want the recording's 2 HTTP/2 ones", speed, k, c)
		}
		for st, n := range want.Statuses {
			if got.Statuses[st] != n*k {
				t.Errorf("%gx scale %d: %q %d times, recorded %d", speed, k, st, got.Statuses[st], n)
			}
		}
		if len(got.Statuses) != len(want.Statuses) || len(got.Violations) != 0 {
			t.Errorf("%gx scale %d: statuses %v, violations %v", speed, k, got.Statuses, got.Violations)
		}
		// The recorded refusals come back, each its own error kind.
		if rep.Errors["grpc-status-7"] != uint64(want.Statuses["/grpcshop.Shop/Login PermissionDenied"]*k) ||
			rep.Errors["grpc-status-3"] != uint64(want.Statuses["/grpcshop.Shop/CreateOrder InvalidArgument"]*k) || len(rep.Errors) != 2 {
			t.Errorf("%gx scale %d: errors %v", speed, k, rep.Errors)
		}
		t.Logf("%gx scale %d: errors %v; server statuses %v; violations %v", speed, k, rep.Errors, got.Statuses, got.Violations)
	}
}

// TestReplayGRPCLiveLengths records the gRPC shop through the recording
// proxy while it issues short ids and tokens, then replays the recording
// against a shop that issues long ones of random length (past 127 bytes,
// where a protobuf length takes two bytes): the order ids and the refresh
// tokens inside later request messages are replaced by the live ones and
// the messages re-encoded (field lengths and gRPC prefixes; one inside
// its gzip compression), so the live
// shop finds every order and refresh token its session was given and
// counts no violation, the same calls and statuses as the recording.
func TestReplayGRPCLiveLengths(t *testing.T) {
	recShop := grpcshop.NewServer()
	recShop.IDLengths(func() int { return 8 + rand.IntN(3) }) // "ord_" and 16-20 hex characters
	upstream, stopRec, err := recShop.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopRec()
	addr, stopProxy := shoptest.StartProxy(t, "http://"+upstream, proxy.WithGrace(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c := &grpcshop.Client{Conn: conn}
	if err := grpcshop.Drive(ctx, c); err != nil {
		t.Fatal(err)
	}
	// An order read back with its id inside a gzip-compressed message.
	id, err := c.Call(ctx, "CreateOrder", grpcshop.Msg(2, "tray", 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, "GetOrder", id, grpc.UseCompressor(gzip.Name)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	xs, _ := stopProxy()
	want := grpcshop.Recorded(xs)

	for _, speed := range []float64{1, 10} {
		live := grpcshop.NewServer()
		live.IDLengths(func() int { return 60 + rand.IntN(40) }) // 120-200 hex characters
		target, stop, err := live.Serve("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rep := run(t, "http://"+target, session.NewSliceSource(xs...), WithPacer(Speed(speed)))
		stop()
		got := live.Counts()
		if v := live.Counts().Violations; len(v) != 0 {
			t.Errorf("%gx: violations %v: a live id or token did not arrive", speed, v)
		}
		for _, m := range []map[string]int{want.Calls, want.Statuses, want.MessagesIn} {
			if len(m) == 0 {
				t.Fatalf("nothing recorded: %+v", want)
			}
		}
		for k, n := range want.Statuses {
			if got.Statuses[k] != n {
				t.Errorf("%gx: %s %d times, recorded %d", speed, k, got.Statuses[k], n)
			}
		}
		for k, n := range want.MessagesIn {
			if got.MessagesIn[k] != n {
				t.Errorf("%gx: %s got %d client messages, recorded %d", speed, k, got.MessagesIn[k], n)
			}
		}
		// Four order ids (one gzip'd) and one refresh token go back inside
		// messages; the access token in metadata on every later call.
		if c := rep.Correlation; c.Substituted < 5+10 || c.Learned == 0 {
			t.Errorf("%gx: correlation %+v, want the ids, refresh token and tokens substituted", speed, c)
		}
		t.Logf("%gx: correlation %+v; statuses %v", speed, rep.Correlation, got.Statuses)
	}
}
