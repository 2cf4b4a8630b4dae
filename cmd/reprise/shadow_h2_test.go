package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/reprise-tool/reprise/fixtures/grpcshop"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay/shadow"
)

// TestShadowGRPC: 'reprise shadow' in front of the gRPC shop, driven by a
// grpc-go client over h2c, mirrors every call to a second gRPC shop over
// h2c: the second shop counts the same calls and statuses per method as
// the first (its login's token, refresh token and order ids learned from
// its own answers and carried in the later calls, so no violation), and
// every answer, grpc-status included, is compared.
func TestShadowGRPC(t *testing.T) {
	primary, second := grpcshop.NewServer(), grpcshop.NewServer()
	upAddr, stopPrimary, err := primary.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopPrimary()
	shAddr, stopSecond, err := second.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopSecond()
	addr := testkit.FreeAddr(t)
	stop, _ := runListening(t, "shadow", "--listen", addr, "--upstream", "http://"+upAddr, "--shadow", "http://"+shAddr,
		"--allow-writes", "--json")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := grpcshop.Drive(ctx, &grpcshop.Client{Conn: conn}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// The mirror sends each call after the real one was answered: wait
	// until the second shop has seen them all, or give up after 10s.
	pc := primary.Counts()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if fmt.Sprint(second.Counts().Calls) == fmt.Sprint(pc.Calls) {
			break
		}
	}
	code, stdout, stderr := stop()
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum shadow.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("summary %q: %v", stdout, err)
	}
	sc := second.Counts()
	if fmt.Sprint(sc.Calls) != fmt.Sprint(pc.Calls) || fmt.Sprint(sc.Statuses) != fmt.Sprint(pc.Statuses) {
		t.Errorf("shadow's calls %v statuses %v; primary's %v %v", sc.Calls, sc.Statuses, pc.Calls, pc.Statuses)
	}
	if len(sc.Violations) != 0 {
		t.Errorf("shadow's violations %v", sc.Violations)
	}
	total := 0
	for _, n := range pc.Calls {
		total += n
	}
	st := sum.Stats
	if st.Seen != uint64(total) || st.Sent != uint64(total) || st.Errors != 0 || st.Compared != uint64(total) ||
		sum.Compare.Compared != total || len(st.Skipped) != 0 || st.ShedTotal() != 0 {
		t.Errorf("%d calls; stats %+v, compared %d", total, st, sum.Compare.Compared)
	}
}
