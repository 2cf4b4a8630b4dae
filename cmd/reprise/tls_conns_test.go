package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reprise-tool/reprise/replay"
	"github.com/reprise-tool/reprise/session"
)

// TestReplayTLSHandshakes: 'reprise replay --ca --connections recorded'
// of three recorded connections makes three handshakes, as many as the
// target accepted connections, resumed from the first one's ticket, and
// reports them in the summary and the JSON.
func TestReplayTLSHandshakes(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	// six exchanges 10ms apart, two on each of three connections, replayed
	// at 0.2x so that the later connections open after the run's first
	// moments (whose connections open together before the clock starts)
	// and find the first one's ticket
	rec := writeExchanges(t, []string{"test"}, 6, func(i int, x *session.Exchange) {
		x.Conn.ID, x.Session = uint64(i/2+1), fmt.Sprint("s", i/2)
		x.Request.Target = fmt.Sprint("/item/", i)
	})
	base := []string{"replay", rec, "--target", srv.URL, "--ca", ca, "--connections", "recorded", "--speed", "0.2"}

	var stdout, stderr bytes.Buffer
	if code := run(append(base, "--json"), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var rep replay.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	c := rep.Connections
	if c == nil || c.TLS == nil {
		t.Fatalf("no TLS figures: %s", stdout.String())
	}
	// the target accepts one connection more: the check of its
	// certificate before the run (replay.CheckTLS)
	if c.Opened != 3 || opened.Load() != 4 || c.TLS.Handshakes != c.Opened || c.TLS.Failed != 0 {
		t.Errorf("target accepted %d connections; report opened %d, tls %+v", opened.Load(), c.Opened, c.TLS)
	}
	if c.TLS.Resumed == 0 || c.TLS.ALPN["http/1.1"] != 3 {
		t.Errorf("tls %+v: want resumed handshakes, http/1.1 by ALPN", c.TLS)
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(base, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String()+stderr.String(), "tls          3 handshakes (") {
		t.Errorf("exit %d; summary has no TLS line:\n%s%s", code, stdout.String(), stderr.String())
	}
}
