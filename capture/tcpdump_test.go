package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/tcpdump-lo.pcap from a fresh tcpdump capture")

// shopHandler serves the small set of responses the tcpdump tests expect:
// a counted body, a chunked (flushed) body, gzip, 204, 304 and HEAD.
func shopHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/items", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"id":1,"name":"tea"},{"id":2,"name":"cup"}]`)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/gz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write([]byte(strings.Repeat("compressed ", 20)))
		zw.Close()
	})
	mux.HandleFunc("/cart", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "added %d bytes", len(body))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/cached", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	return mux
}

// shopRequests drives the handler: keep-alive on one connection, then a
// request with Connection: close on a second.
func shopRequests(t *testing.T, base string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
	do := func(method, path, body string, close bool) {
		req := testkit.NewRequest(t, method, base+path, body)
		req.Close = close
		testkit.Send(t, client, req)
	}
	do("GET", "/items", "", false)
	do("GET", "/stream", "", false)
	do("GET", "/gz", "", false)
	do("POST", "/cart", `{"item":1,"qty":2}`, false)
	do("HEAD", "/items", "", false)
	do("DELETE", "/empty", "", false)
	do("GET", "/cached", "", false)
	client.CloseIdleConnections()
	do("GET", "/items?page=2", "", true)
}

// shopWant is what the pipeline must find in a capture of shopRequests.
var shopWant = []string{
	`1/0 GET /items "" -> 200 "[{\"id\":1,\"name\":\"tea\"},{\"id\":2,\"name\":\"cup\"}]"`,
	`1/1 GET /stream "" -> 200 "part0;part1;part2;"`,
	`1/2 GET /gz "" -> 200 gzip`,
	`1/3 POST /cart "{\"item\":1,\"qty\":2}" -> 201 "added 18 bytes"`,
	`1/4 HEAD /items "" -> 200 ""`,
	`1/5 DELETE /empty "" -> 204 ""`,
	`1/6 GET /cached "" -> 304 ""`,
	`2/0 GET /items?page=2 "" -> 200 "[{\"id\":1,\"name\":\"tea\"},{\"id\":2,\"name\":\"cup\"}]"`,
}

// checkShop reads a capture of shopRequests and compares.
func checkShop(t *testing.T, path string) {
	t.Helper()
	got, cnt := collectFile(t, path)
	var gl []string
	for _, x := range got {
		l := fmt.Sprintf("%d/%d %s %s %q -> %d %q", x.Conn.ID, x.Index, x.Request.Method, x.Request.Target, x.Request.Body, x.Response.Status, x.Response.Body)
		if x.Response.Header.Get("Content-Encoding") == "gzip" {
			// Stored as sent: check it is the gzip stream, then name it.
			zr, err := gzip.NewReader(bytes.NewReader(x.Response.Body))
			if err != nil {
				t.Errorf("gzip body not stored as sent: %v", err)
				continue
			}
			plain, _ := io.ReadAll(zr)
			if string(plain) != strings.Repeat("compressed ", 20) {
				t.Errorf("gzip body decodes to %q", plain)
			}
			l = fmt.Sprintf("%d/%d %s %s %q -> %d gzip", x.Conn.ID, x.Index, x.Request.Method, x.Request.Target, x.Request.Body, x.Response.Status)
		}
		if x.Flags != 0 {
			l += " " + flagNames(x.Flags)
		}
		gl = append(gl, l)
		if x.Timing.RequestStart == 0 || x.Timing.ResponseEnd < x.Timing.RequestStart {
			t.Errorf("%s: timing %+v", l, x.Timing)
		}
	}
	if strings.Join(gl, "\n") != strings.Join(shopWant, "\n") {
		t.Errorf("exchanges:\n got %s\nwant %s", strings.Join(gl, "\n     "), strings.Join(shopWant, "\n     "))
	}
	if cnt.Connections != 2 || cnt.Incomplete != 0 || cnt.PacketsMalformed != 0 {
		t.Errorf("counters = %+v", cnt)
	}
}

// TestTcpdumpLoopback captures real loopback traffic between a net/http
// server and client with tcpdump and checks the exchanges exactly. It needs
// tcpdump and the right to capture (root or CAP_NET_RAW); it skips
// otherwise. With -update it also refreshes testdata/tcpdump-lo.pcap.
func TestTcpdumpLoopback(t *testing.T) {
	srv := httptest.NewServer(shopHandler())
	defer srv.Close()
	path, stop := startTcpdump(t, "any", srv.Listener.Addr().String())
	shopRequests(t, srv.URL)
	t.Logf("tcpdump: %s", stop())
	checkShop(t, path)
	if *update {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "tcpdump-lo.pcap"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTcpdumpFixture reads the committed tcpdump capture (see
// testdata/README.md for how it was made) and compares every field of
// every exchange (headers as sent, bodies, the four timestamps, addresses)
// with testdata/tcpdump-lo.golden.json; -update rewrites the golden file.
func TestTcpdumpFixture(t *testing.T) {
	path := filepath.Join("testdata", "tcpdump-lo.pcap")
	checkShop(t, path)
	got, _ := collectFile(t, path)
	js, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	testkit.Golden(t, filepath.Join("testdata", "tcpdump-lo.golden.json"), js, *update)
}

// startTcpdump is testkit.StartTcpdump (see there).
func startTcpdump(t *testing.T, iface, addr string) (string, func() string) {
	t.Helper()
	return testkit.StartTcpdump(t, iface, addr)
}
