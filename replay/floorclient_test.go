package replay

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// TestFloorClient runs the benchmark's floor client (testdata/floorclient,
// see BenchmarkNginx) in each of its modes on a recording of 8
// connections of 25 requests against a net/http server, which wants each
// recorded connection's requests in order on one connection of its own
// and answers each with a body: a floor client that dropped, reordered or
// mixed requests would make the benchmark's reference meaningless. Each
// mode runs with the recording read before the run and while it runs.
func TestFloorClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	const conns, perConn = 8, 25
	var mu sync.Mutex
	byRemote := map[string][]string{} // a live connection's paths, in arrival order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		byRemote[r.RemoteAddr] = append(byRemote[r.RemoteAddr], r.URL.Path)
		mu.Unlock()
		fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
	}))
	defer srv.Close()

	var exs []*session.Exchange
	for i := range perConn {
		for c := range conns {
			ex := rec("", "GET", fmt.Sprintf("/c%d/%d", c, i), float64(i), float64(i)+0.5, onConn(uint64(c+1)))
			ex.Index = i
			exs = append(exs, ex)
		}
	}
	path := writeRecording(t, "test:floor", exs)

	dir := t.TempDir()
	bin := filepath.Join(dir, "floorclient")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/reprise-tool/reprise/replay/testdata/floorclient").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	modes := []string{"conns"}
	if runtime.GOOS == "linux" {
		modes = append(modes, "epoll")
	}
	for _, mode := range modes {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", mode, stream), func(t *testing.T) {
				mu.Lock()
				clear(byRemote)
				mu.Unlock()
				out, err := exec.Command(bin, "-target", strings.TrimPrefix(srv.URL, "http://"), "-mode", mode, fmt.Sprintf("-stream=%v", stream), path).Output()
				if err != nil {
					t.Fatalf("floor client: %v", err)
				}
				var got struct{ Responses int }
				if err := json.Unmarshal(out, &got); err != nil || got.Responses != conns*perConn {
					t.Fatalf("floor client printed %q (%v): want %d responses", out, err, conns*perConn)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(byRemote) != conns {
					t.Fatalf("requests came on %d connections, want %d", len(byRemote), conns)
				}
				for remote, paths := range byRemote {
					c := strings.Split(paths[0], "/")[1]
					for i, p := range paths {
						if want := fmt.Sprintf("/%s/%d", c, i); p != want {
							t.Fatalf("connection %s: request %d was %s, want %s (each recorded connection's requests in order on one connection)", remote, i, p, want)
						}
					}
					if len(paths) != perConn {
						t.Errorf("connection %s carried %d requests, want %d", remote, len(paths), perConn)
					}
				}
			})
		}
		// A refused connection ends the run with an error that names
		// the recorded connection and the cause, not a wait.
		t.Run(mode+"/refused", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			var stderr strings.Builder
			cmd := exec.Command(bin, "-target", addr, "-mode", mode, path)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil {
				t.Fatal("floor client succeeded against a closed port")
			}
			if msg := stderr.String(); !strings.Contains(msg, "recorded connection") || !strings.Contains(msg, "refused") {
				t.Errorf("floor client said %q: want the recorded connection and the refusal", msg)
			}
		})
		// A server that stops answering ends the run after -stall with
		// an error, in either mode.
		t.Run(mode+"/stalled", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close() // held open, never answered, until the listener closes
				}
			}()
			var stderr strings.Builder
			cmd := exec.Command(bin, "-target", ln.Addr().String(), "-mode", mode, "-stall", "200ms", path)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil {
				t.Fatal("floor client succeeded with no response")
			}
			if msg := stderr.String(); !strings.Contains(msg, "no response in 200ms") {
				t.Errorf("floor client said %q: want that no response came", msg)
			}
		})
		// A chunked response, which it does not read, is an error too.
		t.Run(mode+"/chunked", func(t *testing.T) {
			chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("part"))
				w.(http.Flusher).Flush() // no Content-Length: the body is chunked
			}))
			defer chunked.Close()
			var stderr strings.Builder
			cmd := exec.Command(bin, "-target", strings.TrimPrefix(chunked.URL, "http://"), "-mode", mode, path)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil {
				t.Fatal("floor client succeeded on chunked responses")
			}
			if msg := stderr.String(); !strings.Contains(msg, "Content-Length") {
				t.Errorf("floor client said %q: want that only Content-Length bodies are read", msg)
			}
		})
	}
}
