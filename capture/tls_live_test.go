//go:build linux

package capture_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/session"
)

// lateKeyLog writes key log lines to a file a while after the handshake
// logs them, the way a key log written by another process lags behind the
// packets.
type lateKeyLog struct {
	path  string
	delay time.Duration
	wg    sync.WaitGroup
}

func (l *lateKeyLog) Write(b []byte) (int, error) {
	line := append([]byte(nil), b...)
	l.wg.Add(1)
	time.AfterFunc(l.delay, func() {
		defer l.wg.Done()
		f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		f.Write(line)
		f.Close()
	})
	return len(b), nil
}

// TestLiveTLSKeyLogLate captures TLS live on lo while the key log is
// written a second after each handshake, by a file that does not exist
// when the capture starts: the records wait for their keys, the key log is
// re-read as it grows, and every request comes out with its body and the
// time its packets were captured.
func TestLiveTLSKeyLogLate(t *testing.T) {
	kl := &lateKeyLog{path: filepath.Join(t.TempDir(), "keys.log"), delay: time.Second}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(body))
	}))
	srv.TLS = &tls.Config{KeyLogWriter: kl}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	src := openLo(ctx, t, port)
	k := tlsdecrypt.NewKeyLog()
	if err := k.Follow(kl.path); err != nil {
		t.Fatal(err)
	}
	p, err := capture.FromPackets(ctx, src, capture.WithPorts(port), capture.WithKeyLog(k), capture.WithKeyLogWait(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []*session.Exchange, 1)
	go func() {
		var xs []*session.Exchange
		for {
			x, err := p.Next()
			if err != nil {
				got <- xs
				return
			}
			xs = append(xs, x)
		}
	}()
	time.Sleep(200 * time.Millisecond) // the ring is open; let it settle
	began := time.Now()
	client := srv.Client()
	for i := range 3 {
		req := testkit.NewRequest(t, "POST", srv.URL+fmt.Sprintf("/late/%d", i), strings.Repeat("x", 1000*(i+1)))
		req.Header.Set("Content-Type", "text/plain")
		testkit.Send(t, client, req)
	}
	client.CloseIdleConnections()
	kl.wg.Wait()
	time.Sleep(2500 * time.Millisecond) // past a flush interval, so the key log is re-read
	stop()
	xs := <-got
	var lines []string
	for _, x := range xs {
		lines = append(lines, fmt.Sprintf("%s %s %d -> %s", x.Request.Method, x.Request.Target, len(x.Request.Body), x.Response.Body))
		if at := time.Unix(0, x.Timing.RequestStart); at.Before(began) || at.After(began.Add(time.Second)) {
			t.Errorf("%s %s: request start %v is not when it was sent (%v)", x.Request.Method, x.Request.Target, at, began)
		}
	}
	want := "POST /late/0 1000 -> POST /late/0 1000\nPOST /late/1 2000 -> POST /late/1 2000\nPOST /late/2 3000 -> POST /late/2 3000"
	if strings.Join(lines, "\n") != want {
		t.Errorf("exchanges:\n%s\nwant\n%s\ncounters %+v errors %v", strings.Join(lines, "\n"), want, p.Counters(), p.TLSErrors())
	}
	if !bytes.Contains([]byte(fmt.Sprint(p.Counters().TLS)), []byte("TLS 1.3")) {
		t.Errorf("tls counters %v", p.Counters().TLS)
	}
}
