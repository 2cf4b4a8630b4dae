package replay

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// t0 is the recordings' origin in these tests.
const t0 = int64(1_700_000_000_000_000_000)

func source(ex ...*session.Exchange) *session.SliceSource { return session.NewSliceSource(ex...) }

// rec builds a recorded exchange of session sess that started at startMs
// and completed at endMs (milliseconds from t0), answered 200 with body.
func rec(sess, method, target string, startMs, endMs float64, mods ...func(*session.Exchange)) *session.Exchange {
	ms := func(v float64) int64 { return t0 + int64(v*float64(time.Millisecond)) }
	ex := &session.Exchange{
		Session: sess,
		Request: session.Request{Method: method, Target: target, Proto: "HTTP/1.1",
			Header: session.Headers{{Name: "Host", Value: "shop.example"}, {Name: "User-Agent", Value: "recorded/1.0"}}},
		Response: session.Response{Proto: "HTTP/1.1", Status: 200},
		Timing:   session.Timing{RequestStart: ms(startMs), RequestEnd: ms(startMs), ResponseStart: ms(endMs), ResponseEnd: ms(endMs)},
	}
	for _, m := range mods {
		m(ex)
	}
	return ex
}

// withBody sets the request's body and content type.
func withBody(ctype, body string) func(*session.Exchange) {
	return func(ex *session.Exchange) {
		ex.Request.Header = append(ex.Request.Header, session.Header{Name: "Content-Type", Value: ctype})
		ex.Request.Body = []byte(body)
		ex.Request.BodySize = int64(len(body))
	}
}

// withHeader adds a request header.
func withHeader(name, value string) func(*session.Exchange) {
	return func(ex *session.Exchange) {
		ex.Request.Header = append(ex.Request.Header, session.Header{Name: name, Value: value})
	}
}

// withResponse sets the recorded response.
func withResponse(status int, ctype, body string, hdr ...string) func(*session.Exchange) {
	return func(ex *session.Exchange) {
		ex.Response.Status = status
		ex.Response.Header = session.Headers{{Name: "Content-Type", Value: ctype}}
		for i := 0; i+1 < len(hdr); i += 2 {
			ex.Response.Header = append(ex.Response.Header, session.Header{Name: hdr[i], Value: hdr[i+1]})
		}
		ex.Response.Body = []byte(body)
		ex.Response.BodySize = int64(len(body))
	}
}

// onConn puts the exchange on a connection and clears its session.
func onConn(id uint64) func(*session.Exchange) {
	return func(ex *session.Exchange) { ex.Session = ""; ex.Conn.ID = id }
}

// arrival is one request as the scripted server saw it.
type arrival struct {
	Method, Path, Query, Host string
	Header                    http.Header
	Body                      string
	At                        time.Time
	Done                      time.Time // when the handler returned
}

// scripted is a real net/http server on 127.0.0.1 whose handler the test
// writes, and which logs every arrival.
type scripted struct {
	*httptest.Server
	mu   sync.Mutex
	log  []*arrival
	seen chan string // paths, as they arrive (buffered)
}

func newScripted(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *scripted {
	t.Helper()
	s := &scripted{seen: make(chan string, 10000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		a := &arrival{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(), Body: string(body), At: time.Now()}
		s.mu.Lock()
		s.log = append(s.log, a)
		s.mu.Unlock()
		select {
		case s.seen <- r.URL.Path:
		default:
		}
		if h != nil {
			h(w, r)
		}
		s.mu.Lock()
		a.Done = time.Now()
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scripted) arrivals() []*arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*arrival, len(s.log))
	for i, a := range s.log {
		c := *a
		out[i] = &c
	}
	return out
}

// find returns the first arrival for path.
func (s *scripted) find(t *testing.T, path string) *arrival {
	t.Helper()
	for _, a := range s.arrivals() {
		if a.Path == path {
			return a
		}
	}
	t.Fatalf("no request for %s reached the server", path)
	return nil
}

// waitFor waits (up to 5s) until path has arrived; it returns false on timeout.
func (s *scripted) waitFor(path string) bool {
	deadline := time.After(5 * time.Second)
	for {
		for _, a := range s.arrivals() {
			if a.Path == path {
				return true
			}
		}
		select {
		case <-deadline:
			return false
		case <-time.After(time.Millisecond):
		}
	}
}

// run replays src against s with opts and fails the test on a setup error.
func run(t *testing.T, target string, src session.Source, opts ...Option) *Report {
	t.Helper()
	r, err := New(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := r.Run(ctx, src)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// results collects every Result.
type results struct {
	mu  sync.Mutex
	all []Result
}

func (c *results) Observe(r *Result) {
	c.mu.Lock()
	c.all = append(c.all, *r)
	c.mu.Unlock()
}

func (c *results) get() []Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Result(nil), c.all...)
}

// noResponse marks the exchange as never answered in the recording.
func noResponse(ex *session.Exchange) {
	ex.Flags |= session.FlagNoResponse
	ex.Response = session.Response{}
	ex.Timing.ResponseStart, ex.Timing.ResponseEnd = 0, 0
}
