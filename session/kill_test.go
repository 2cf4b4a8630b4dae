//go:build unix

package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/summary"
)

const killEnv = "REPRISE_TEST_KILL_CHILD"

// TestKill runs a writer in a child process (this test binary again), lets
// it record continuously with the live flush interval, kills it with
// SIGKILL, and checks that everything written up to one second before the
// kill reads back, and that the summary reports the damaged tail.
func TestKill(t *testing.T) {
	if path := os.Getenv(killEnv); path != "" {
		killChild(path)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process for a few seconds")
	}
	path := filepath.Join(t.TempDir(), "killed.rpz")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), killEnv+"="+path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Let it record for a while once the file exists.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the child did not start writing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A varying wait, so the kill lands at different points of the flush
	// cycle from run to run.
	time.Sleep(2*time.Second + time.Duration(time.Now().UnixNano()%int64(time.Second)))
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck // killed on purpose

	r, err := session.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last int64
	n, damage := 0, 0
	for {
		ex, err := r.Next()
		if err == io.EOF {
			break
		}
		var ce *session.CorruptError
		if errors.As(err, &ce) {
			damage++
			if !errors.Is(err, session.ErrTruncated) || ce.Path != path {
				t.Errorf("damage report %v, want a truncated tail of %s", err, path)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if ex.Index != n {
			t.Fatalf("exchange %d came back as number %d: the recovered records are not a prefix", n, ex.Index)
		}
		last = ex.Timing.RequestStart
		n++
	}
	lag := killed.Sub(time.Unix(0, last))
	t.Logf("recovered %d exchanges; the last was written %v before the kill", n, lag.Round(time.Millisecond))
	if n == 0 || lag > time.Second {
		t.Errorf("lost more than the last second: the last recovered exchange was written %v before the kill", lag)
	}
	if damage != 1 {
		t.Errorf("got %d damage reports, want 1 for the tail", damage)
	}

	s, err := summary.Files(context.Background(), []string{path}, summary.Options{})
	if !errors.Is(err, summary.ErrDamaged) {
		t.Errorf("summary error = %v, want ErrDamaged", err)
	}
	if s == nil || !s.Damage.Damaged || len(s.Damage.Unfinished) != 1 || s.Exchanges != int64(n) {
		t.Errorf("summary does not report the damaged tail: %+v", s)
	}
}

// killChild writes exchanges every 2 ms until it is killed (or, as a
// bound, for 60 s). Each carries its number and the time it was written.
func killChild(path string) {
	fw, err := session.Create(path, session.Metadata{Source: "test:kill"}, session.FlushInterval(session.LiveFlushInterval))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	body := []byte(`{"id":1,"name":"widget","price":9.99}`)
	stop := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(stop); i++ {
		now := time.Now().UnixNano()
		ex := &session.Exchange{
			Index:    i,
			Request:  session.Request{Method: "GET", Target: fmt.Sprintf("/items/%d", i), Proto: "HTTP/1.1"},
			Response: session.Response{Proto: "HTTP/1.1", Status: 200, Body: body, BodySize: int64(len(body))},
			Timing:   session.Timing{RequestStart: now, RequestEnd: now, ResponseStart: now, ResponseEnd: now},
		}
		if err := fw.WriteExchange(ex); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		time.Sleep(2 * time.Millisecond)
	}
	fw.Close()
	os.Exit(0)
}
