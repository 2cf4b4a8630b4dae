package replay

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/fixtures/testkit"
	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/session"
)

// What goes on the wire: recorded headers (repeats in order), the target's
// Host unless --keep-host, Content-Length from the body after
// substitution, no hop-by-hop fields, no Go User-Agent of its own.
func TestWhatIsSent(t *testing.T) {
	tests := []struct {
		name     string
		keepHost bool
		check    func(t *testing.T, a *arrival, srvHost string)
	}{
		// The target's host by default.
		{"host rewritten", false, func(t *testing.T, a *arrival, srvHost string) {
			if a.Host != srvHost {
				t.Errorf("Host %q, want %q", a.Host, srvHost)
			}
		}},
		// The recorded host on request.
		{"keep host", true, func(t *testing.T, a *arrival, _ string) {
			if a.Host != "shop.example" {
				t.Errorf("Host %q, want shop.example", a.Host)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScripted(t, nil)
			ex := rec("s", "POST", "/p/a%2Fb?q=1&q=2", 0, 1,
				withHeader("x-trace", "one"), withHeader("X-Trace", "two"),
				withHeader("Connection", "close"), withHeader("Content-Length", "999"),
				withBody("text/plain", "hello"))
			ex.Request.Header = append(ex.Request.Header[:1], ex.Request.Header[2:]...) // no User-Agent
			run(t, srv.URL, source(ex), WithKeepHost(tt.keepHost))
			a := srv.find(t, "/p/a/b")
			tt.check(t, a, strings.TrimPrefix(srv.URL, "http://"))
			if got := a.Header.Values("X-Trace"); strings.Join(got, ",") != "one,two" {
				t.Errorf("X-Trace %q", got)
			}
			if a.Body != "hello" || a.Header.Get("Content-Length") != "5" {
				t.Errorf("body %q length %q", a.Body, a.Header.Get("Content-Length"))
			}
			if a.Query != "q=1&q=2" {
				t.Errorf("query %q", a.Query)
			}
			if ua := a.Header.Get("User-Agent"); ua != "" {
				t.Errorf("User-Agent %q sent, the recording had none", ua)
			}
		})
	}
}

// Redirects come back as the response, as the recorded client saw them,
// unless following is asked for.
func TestRedirects(t *testing.T) {
	for _, follow := range []bool{false, true} {
		srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/old" {
				http.Redirect(w, r, "/new", http.StatusFound)
			}
		})
		rep := run(t, srv.URL, source(rec("s", "GET", "/old", 0, 1)), WithFollowRedirects(follow))
		arrived := len(srv.arrivals())
		if follow && (arrived != 2 || rep.StatusCodes["200"] != 1) || !follow && (arrived != 1 || rep.StatusCodes["302"] != 1) {
			t.Errorf("follow=%v: %d arrivals, statuses %v", follow, arrived, rep.StatusCodes)
		}
	}
}

// refusingTarget returns a loopback address nothing listens on.
func refusingTarget(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// resettingTarget accepts connections, reads the request and resets.
func resettingTarget(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.(*net.TCPConn).SetLinger(0) // RST on close
			c.Close()
		}
	}()
	return "http://" + l.Addr().String()
}

// TestDeadTargets: a target that refuses, resets or hangs fails the
// replay with the errors counted by kind, every session failed, and the
// run bounded by the timeout.
func TestDeadTargets(t *testing.T) {
	hang := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	tests := []struct {
		name   string
		target string
		kind   string
	}{
		{"refused", refusingTarget(t), ErrKindConnect},
		{"reset", resettingTarget(t), ErrKindReset},
		{"hangs", hang.URL, ErrKindTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := source(rec("a", "GET", "/1", 0, 1), rec("a", "GET", "/2", 5, 6), rec("b", "GET", "/3", 2, 3))
			start := time.Now()
			rep := run(t, tt.target, src, WithTimeout(300*time.Millisecond), WithConnectTimeout(300*time.Millisecond))
			if rep.Completed || rep.Errors[tt.kind] != 3 || rep.Requests.Errors != 3 {
				t.Fatalf("completed %v, errors %v %+v", rep.Completed, rep.Errors, rep.Requests)
			}
			if rep.Sessions.Failed != 2 || !strings.Contains(rep.Failure, "3 of 3 requests failed") {
				t.Errorf("sessions %+v, failure %q", rep.Sessions, rep.Failure)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("a dead target held the replay %v", d)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	recording := func() *session.SliceSource {
		return source(
			rec("a", "GET", "/api/products", 0, 1),
			rec("a", "POST", "/api/cart", 100, 101),
			rec("b", "GET", "/static/app.js", 200, 201),
			rec("b", "GET", "/api/products/3", 300, 301),
			rec("c", "GET", "/api/products/4", 400, 401),
			rec("d", "DELETE", "/api/cart/1", 500, 501),
		)
	}
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		// Only /api.
		{"include", []Option{WithIncludePath("^/api/")}, "/api/products /api/cart /api/products/3 /api/products/4 /api/cart/1"},
		// Everything but static files.
		{"exclude", []Option{WithExcludePath(`\.js$`, "cart")}, "/api/products /api/products/3 /api/products/4"},
		// Methods, comma-separated or repeated, any case.
		{"method", []Option{WithMethods("post,delete")}, "/api/cart /api/cart/1"},
		// A range of offsets into the recording.
		{"range", []Option{WithRange(150*time.Millisecond, 450*time.Millisecond)}, "/static/app.js /api/products/3 /api/products/4"},
		// The first two sessions, whole.
		{"sessions", []Option{WithSessions(2)}, "/api/products /api/cart /static/app.js /api/products/3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScripted(t, nil)
			run(t, srv.URL, recording(), append(tt.opts, WithPacer(Speed(2)))...)
			var got []string
			for _, a := range srv.arrivals() {
				got = append(got, a.Path)
			}
			// The filters choose; the order across sessions is the
			// schedule's, not asserted here.
			slices.Sort(got)
			want := strings.Fields(tt.want)
			slices.Sort(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("sent %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// Stop stops issuing at once; what was not sent is counted, the report
// says why, and in-flight requests finish.
func TestStop(t *testing.T) {
	srv := newScripted(t, nil)
	src := source()
	for i := 0; i < 50; i++ {
		src.Exchanges = append(src.Exchanges, rec("s", "GET", "/x", float64(i*100), float64(i*100+1)))
	}
	r, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	r.o.observers = append(r.o.observers, ObserverFunc(func(res *Result) {
		if res.Status == 200 {
			once.Do(func() { r.Stop("guard tripped: test") })
		}
	}))
	start := time.Now()
	rep, err := r.Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("stop took %v", time.Since(start))
	}
	if rep.Completed || rep.Stopped != "guard tripped: test" || rep.Requests.Sent == 50 {
		t.Errorf("completed %v stopped %q requests %+v", rep.Completed, rep.Stopped, rep.Requests)
	}
	if _, err := r.Run(context.Background(), src); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("second Run: %v", err)
	}
}

// MaxDuration bounds a replay in time whatever the recording's length.
func TestMaxDuration(t *testing.T) {
	srv := newScripted(t, nil)
	src := source(rec("s", "GET", "/now", 0, 1), rec("s", "GET", "/in-an-hour", 3600e3, 3600e3+1))
	rep := run(t, srv.URL, src, WithMaxDuration(200*time.Millisecond))
	if rep.Requests.Sent != 1 || rep.Requests.NotSent != 1 || !strings.Contains(rep.Stopped, "max duration") {
		t.Errorf("requests %+v stopped %q", rep.Requests, rep.Stopped)
	}
}

// A source that fails part-way: what was read is replayed, the error names
// how far it got.
func TestSourceError(t *testing.T) {
	srv := newScripted(t, nil)
	src := source(rec("s", "GET", "/a", 0, 1))
	src.Err = errors.New("corrupt block at offset 1234")
	r, _ := New(srv.URL)
	rep, err := r.Run(context.Background(), src)
	var se *SourceError
	if !errors.As(err, &se) || se.Read != 1 || rep == nil || rep.Requests.Sent != 1 || rep.Completed {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		target string
		opts   []Option
		want   string
	}{
		{"no target", "", nil, "name one explicitly"},
		{"scheme", "ftp://x", nil, "http:// or https://"},
		{"no host", "http://", nil, "no host"},
		{"speed", "http://127.0.0.1:1", []Option{WithPacer(Speed(1000))}, "out of range"},
		{"scale", "http://127.0.0.1:1", []Option{WithScale(0)}, "scale 0"},
		{"policy", "http://127.0.0.1:1", []Option{WithUncorrelated("drop")}, "skip or send"},
		{"regexp", "http://127.0.0.1:1", []Option{WithIncludePath("(")}, "include path"},
		{"credentials", "http://127.0.0.1:1", []Option{WithCredentials([]correlate.Credential{})}, "no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.target, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// The wire client sends header names in their recorded case and order,
// repeated fields as they were, Host first, Content-Length last.
func TestHeaderCaseAndOrder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	testkit.ServeOne(t, l, func(c net.Conn) {
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		io.CopyN(io.Discard, br, 2)
		got <- head.String()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	ex := rec("s", "POST", "/a?b=1", 0, 1, withHeader("x-lower", "1"), withHeader("X-UPPER", "2"), withHeader("x-lower", "3"),
		withHeader("Transfer-Encoding", "chunked"), withBody("application/json", "{}"))
	ex.Request.Header[1].Name = "user-agent"
	run(t, "http://"+l.Addr().String(), source(ex))
	want := "POST /a?b=1 HTTP/1.1\r\nHost: " + l.Addr().String() + "\r\nuser-agent: recorded/1.0\r\nx-lower: 1\r\nX-UPPER: 2\r\nx-lower: 3\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
	if h := <-got; h != want {
		t.Errorf("sent\n%q\nwant\n%q", h, want)
	}
}

// https targets: certificates are checked unless --insecure.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	defer srv.Close()
	tests := []struct {
		name     string
		insecure bool
		ok       bool
	}{
		{"checked", false, false}, // a self-signed test certificate is refused
		{"insecure", true, true},  // --insecure accepts it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := run(t, srv.URL, source(rec("s", "GET", "/secure", 0, 1)), WithInsecure(tt.insecure))
			if rep.Completed != tt.ok || (tt.ok && rep.StatusCodes["200"] != 1) || (!tt.ok && rep.Requests.Errors != 1) {
				t.Fatalf("completed %v, statuses %v, errors %v", rep.Completed, rep.StatusCodes, rep.Errors)
			}
		})
	}
}
