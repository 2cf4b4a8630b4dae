// Command floorclient is the benchmark's reference for what a Go client
// costs before it does any of a replay's work: it reads a recording's
// HTTP/1 requests into memory, grouped by their recorded connection, and
// then, timed, sends each connection's requests in order on a
// connection of its own, each after the response to the one before,
// written as the replay writes them (wire.WriteRequest), reading every
// response's head with the replay's own parser
// (session/http1) and skipping its body. It schedules nothing, rewrites
// nothing, learns nothing and measures nothing but the run's length.
//
// It lives under testdata so that no build of the module includes it;
// BenchmarkNginx builds it (go build ./replay/testdata/floorclient) and
// runs it as a child process beside wrk and the replay, so that the
// three clients' rates, CPU time and peak RSS are measured alike.
//
// Two modes:
//
//   - conns: a goroutine per connection on net.Conn, the way every Go
//     HTTP client (net/http's, the replay's) uses the network: a read
//     that would block parks the goroutine on the runtime's poller.
//   - epoll (Linux): one loop per CPU (GOMAXPROCS) over its share of the
//     connections, on non-blocking sockets and epoll_wait, the shape of
//     wrk's own loop: no goroutine parks, no read that returns EAGAIN.
//
// It prints one JSON line: {"responses":N,"not_2xx":K,"duration_ms":D},
// K the responses whose status was not 2xx.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/replay/wire"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http1"
)

var target = flag.String("target", "", "host:port to send to")

func main() {
	mode := flag.String("mode", "conns", "conns (a goroutine per connection) or epoll (a loop per CPU, Linux)")
	streamed := flag.Bool("stream", false, "read the recording while sending, as a replay does, instead of before")
	flag.DurationVar(&stall, "stall", stall, "give up when no response has come for this long")
	flag.Parse()
	if flag.NArg() != 1 || *target == "" {
		fmt.Fprintln(os.Stderr, "usage: floorclient -target HOST:PORT [-mode conns|epoll] RECORDING")
		os.Exit(2)
	}
	conns, byID, err := load(flag.Arg(0), *streamed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorclient:", err)
		os.Exit(1)
	}
	start := time.Now()
	read := make(chan error, 1)
	if *streamed {
		go func() { read <- stream(flag.Arg(0), byID) }()
	} else {
		read <- nil
	}
	var n int
	switch *mode {
	case "conns":
		n, err = runConns(*target, conns)
	case "epoll":
		n, err = runEpoll(*target, conns)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	elapsed := time.Since(start)
	if rerr := <-read; rerr != nil {
		err = rerr // the cause of a connection's missing requests
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorclient:", err)
		os.Exit(1)
	}
	not2xx := 0
	for _, c := range conns {
		not2xx += c.not2xx
	}
	out, _ := json.Marshal(map[string]any{"responses": n, "not_2xx": not2xx, "duration_ms": float64(elapsed) / float64(time.Millisecond)})
	fmt.Println(string(out))
}

// stall is how long the run waits with no response before it gives up
// (-stall): a server that stops answering ends the run with an error.
var stall = 10 * time.Second

// conn is one recorded connection's requests, as bytes ready to write,
// with the method each response answers: all in memory before the run
// (reqs), or handed over while it runs by the goroutine that reads the
// recording (q, with room for them all, so that the reader never waits).
type conn struct {
	id   uint64 // the recorded connection's, for errors
	n    int    // requests
	reqs []request
	q    chan request
	done atomic.Int64 // responses read, in the conns mode (see watch)
	// not2xx counts the responses whose status was not 2xx: the run is
	// the floor of a replay that gets what the recording got, and a
	// server that answers otherwise (a dead token: 401) is doing other
	// work; the benchmark shows the count.
	not2xx int
}

type request struct {
	wire   []byte
	method string
}

// request returns the connection's i-th request; false when the reading
// of the recording ended without it (see stream).
func (c *conn) request(i int) (request, bool) {
	if c.q == nil {
		return c.reqs[i], true
	}
	r, ok := <-c.q
	return r, ok
}

// load reads the recording's HTTP/1 requests, by connection in order,
// or, with stream, counts them only, for stream to read them again.
func load(path string, stream bool) ([]*conn, map[uint64]*conn, error) {
	rd, err := session.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer rd.Close()
	type indexed struct {
		index int
		request
	}
	byConn := map[uint64][]indexed{}
	var order []uint64
	for {
		x, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if x.Conn.Protocol != session.ProtoHTTP1 {
			continue
		}
		xs, ok := byConn[x.Conn.ID]
		if !ok {
			order = append(order, x.Conn.ID)
		}
		if stream && len(xs) > 0 && xs[len(xs)-1].index > x.Index {
			return nil, nil, fmt.Errorf("%s: connection %d's exchanges are not in order (the stream mode sends them as read)", path, x.Conn.ID)
		}
		r := indexed{index: x.Index}
		if !stream {
			r.request = request{wireBytes(&x.Request), x.Request.Method}
		}
		byConn[x.Conn.ID] = append(xs, r)
	}
	var conns []*conn
	byID := map[uint64]*conn{}
	for _, id := range order {
		xs := byConn[id]
		c := &conn{id: id, n: len(xs)}
		if stream {
			c.q = make(chan request, len(xs))
		} else {
			slices.SortStableFunc(xs, func(a, b indexed) int { return a.index - b.index })
			for _, x := range xs {
				c.reqs = append(c.reqs, x.request)
			}
		}
		conns = append(conns, c)
		byID[id] = c
	}
	if len(conns) == 0 {
		return nil, nil, fmt.Errorf("%s holds no HTTP/1 exchange", path)
	}
	return conns, byID, nil
}

// stream reads the recording again, as the replay reads it while it
// runs (into one reused exchange, response bodies left out), and hands
// each request to its connection. It closes every connection's queue
// when it ends, so that a connection whose requests it did not all hand
// over (it failed) stops rather than waits for them.
func stream(path string, byID map[uint64]*conn) error {
	defer func() {
		for _, c := range byID {
			close(c.q)
		}
	}()
	rd, err := session.Open(path)
	if err != nil {
		return err
	}
	defer rd.Close()
	session.FilterResponseBodies(rd, func(*session.Exchange) bool { return false })
	read, _ := session.ReadInto(rd)
	var x session.Exchange
	for {
		if err := read(&x); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if c := byID[x.Conn.ID]; c != nil && x.Conn.Protocol == session.ProtoHTTP1 {
			c.q <- request{wireBytes(&x.Request), x.Request.Method}
		}
	}
}

// wireBytes is the recorded request as the replay writes it, Host the
// target's.
func wireBytes(r *session.Request) []byte {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	wire.WriteRequest(bw, &wire.Request{Method: r.Method, Target: r.Target, Host: *target, Header: r.Header, Body: r.Body})
	bw.Flush()
	return buf.Bytes()
}

// errRecordingEnded is a connection's when the recording, read while
// running, ended before its requests did; the reading's own error says
// why.
var errRecordingEnded = errors.New("the recording's reading ended before this connection's requests")

// runConns sends each connection's requests on a goroutine of its own.
func runConns(target string, conns []*conn) (int, error) {
	defer watch(conns)()
	return each(len(conns), func(i int) (int, error) {
		n, err := conns[i].run(target)
		if err != nil {
			err = conns[i].failed(n, err)
		}
		return n, err
	})
}

// watch ends the program when no connection has read a response for
// stall, as the epoll loop gives up: a read from a server that stopped
// answering would hold its goroutine for good. It returns the function
// that stops the watch.
func watch(conns []*conn) (stop func()) {
	t := time.NewTicker(stall)
	quit := make(chan struct{})
	go func() {
		last := int64(-1)
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			var sum, want int64
			for _, c := range conns {
				sum += c.done.Load()
				want += int64(c.n)
			}
			if sum == last {
				fmt.Fprintf(os.Stderr, "floorclient: no response in %v (%d of %d responses read)\n", stall, sum, want)
				os.Exit(1)
			}
			last = sum
		}
	}()
	return func() {
		t.Stop()
		close(quit)
	}
}

// failed says which connection err stopped, and where.
func (c *conn) failed(done int, err error) error {
	return fmt.Errorf("recorded connection %d, after %d of its %d responses: %w", c.id, done, c.n, err)
}

// each runs f(0) to f(n-1) on goroutines of their own and adds up what
// they did; the error is the first one returned.
func each(n int, f func(i int) (int, error)) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, n)
	for i := range n {
		go func() {
			k, err := f(i)
			done <- result{k, err}
		}()
	}
	var total int
	var first error
	for range n {
		r := <-done
		total += r.n
		if r.err != nil && first == nil {
			first = r.err
		}
	}
	return total, first
}

func (c *conn) run(target string) (int, error) {
	nc, err := net.Dial("tcp", target)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 16<<10)
	var h http1.HeadReader
	var s http1.StatusHead
	for i := range c.n {
		req, ok := c.request(i)
		if !ok {
			return i, errRecordingEnded
		}
		if _, err := nc.Write(req.wire); err != nil {
			return i, err
		}
		if err := h.ReadResponse(br, &s); err != nil {
			return i, err
		}
		if s.Status/100 != 2 {
			c.not2xx++
		}
		body, err := s.ResponseBody(req.method, s.Status)
		if err != nil {
			return i, err
		}
		if body.Kind != http1.LengthBody && body.Kind != http1.NoBody {
			return i, errors.New("only Content-Length bodies are read here")
		}
		if _, err := br.Discard(int(body.Length)); err != nil {
			return i, err
		}
		c.done.Store(int64(i + 1))
	}
	return c.n, nil
}
