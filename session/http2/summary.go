package http2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"golang.org/x/net/http2"

	"github.com/reprise-tool/reprise/session"
)

// Summary holds the HTTP/2 and gRPC figures of a recording: protocols per
// connection, streams per connection and their concurrency, gRPC methods
// with their statuses and messages, stream durations. Build it with
// NewSummarizer; inspect prints it beside the recording's summary.
type Summary struct {
	// Connections counts connections by protocol ("h1", "h2c", "h2").
	Connections map[string]int `json:"connections"`
	// Streams is the number of HTTP/2 exchanges; MaxStreamsPerConn the
	// most on one connection; MaxConcurrency the most open at once on one
	// connection (from the first request byte to the last response byte).
	Streams           int64 `json:"streams"`
	MaxStreamsPerConn int   `json:"max_streams_per_connection"`
	MaxConcurrency    int   `json:"max_concurrency"`
	// Durations are the streams' durations in milliseconds.
	Durations Percentiles `json:"stream_duration_ms"`
	Resets    []Count     `json:"resets"`  // by error code name
	GoAways   []Count     `json:"goaways"` // streams that saw a GOAWAY, by code name
	Pushes    int64       `json:"pushes"`  // PUSH_PROMISE frames
	Methods   []Method    `json:"grpc_methods"`
	Statuses  []Count     `json:"grpc_statuses"` // by code name, "none" for no grpc-status
	// MessagesFromClient and MessagesFromServer count gRPC messages.
	MessagesFromClient int64 `json:"grpc_messages_from_client"`
	MessagesFromServer int64 `json:"grpc_messages_from_server"`
}

// Count is a name and how often it occurred.
type Count struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// Method is one gRPC method's figures.
type Method struct {
	Method      string  `json:"method"`
	Calls       int64   `json:"calls"`
	Statuses    []Count `json:"statuses"`
	FromClient  int64   `json:"messages_from_client"`
	FromServer  int64   `json:"messages_from_server"`
	MedianMilli float64 `json:"median_ms"`
}

// Percentiles of a distribution.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Summarizer builds a Summary from exchanges added in any order. Memory
// grows by two timestamps per HTTP/2 stream.
type Summarizer struct {
	conns   map[uint64]*connFigures
	s       Summary
	durs    []int64
	resets  map[string]int64
	goaways map[string]int64
	status  map[string]int64
	methods map[string]*methodFigures
}

type connFigures struct {
	proto session.Protocol
	spans [][2]int64
}

type methodFigures struct {
	m      Method
	status map[string]int64
	durs   []int64
}

// NewSummarizer returns an empty Summarizer.
func NewSummarizer() *Summarizer {
	return &Summarizer{conns: map[uint64]*connFigures{}, resets: map[string]int64{}, goaways: map[string]int64{},
		status: map[string]int64{}, methods: map[string]*methodFigures{}}
}

// Add counts one exchange.
func (z *Summarizer) Add(x *session.Exchange) {
	c := z.conns[x.Conn.ID]
	if c == nil {
		c = &connFigures{proto: x.Conn.Protocol}
		z.conns[x.Conn.ID] = c
	}
	st := x.Stream
	if st == nil {
		return
	}
	z.s.Streams++
	end := max(x.Timing.ResponseEnd, x.Timing.RequestEnd, x.Timing.RequestStart)
	c.spans = append(c.spans, [2]int64{x.Timing.RequestStart, end})
	dur := end - x.Timing.RequestStart
	z.durs = append(z.durs, dur)
	if st.Reset.By != session.PartyNone {
		z.resets[ErrCodeName(st.Reset.Code)]++
	}
	if st.GoAway.By != session.PartyNone {
		z.goaways[ErrCodeName(st.GoAway.Code)]++
	}
	z.s.Pushes += int64(st.Pushes)
	g := st.GRPC
	if g == nil {
		return
	}
	name := x.GRPCMethod()
	m := z.methods[name]
	if m == nil {
		m = &methodFigures{m: Method{Method: name}, status: map[string]int64{}}
		z.methods[name] = m
	}
	m.m.Calls++
	m.durs = append(m.durs, dur)
	code := "none"
	if g.HasStatus {
		code = GRPCCodeName(g.Status)
	}
	m.status[code]++
	z.status[code]++
	for _, msg := range g.Messages {
		if msg.FromServer {
			m.m.FromServer++
			z.s.MessagesFromServer++
		} else {
			m.m.FromClient++
			z.s.MessagesFromClient++
		}
	}
}

// Summary returns the figures of what was added.
func (z *Summarizer) Summary() Summary {
	s := z.s
	s.Connections = map[string]int{}
	for _, c := range z.conns {
		s.Connections[c.proto.String()]++
		s.MaxStreamsPerConn = max(s.MaxStreamsPerConn, len(c.spans))
		s.MaxConcurrency = max(s.MaxConcurrency, concurrency(c.spans))
	}
	s.Durations = percentiles(z.durs)
	s.Resets, s.GoAways, s.Statuses = counts(z.resets), counts(z.goaways), counts(z.status)
	s.Methods = []Method{}
	for _, m := range z.methods {
		m.m.Statuses = counts(m.status)
		m.m.MedianMilli = percentiles(m.durs).P50
		s.Methods = append(s.Methods, m.m)
	}
	slices.SortFunc(s.Methods, func(a, b Method) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Method, b.Method))
	})
	return s
}

// concurrency is the most spans open at one time.
func concurrency(spans [][2]int64) int {
	type ev struct {
		t int64
		d int
	}
	evs := make([]ev, 0, 2*len(spans))
	for _, sp := range spans {
		evs = append(evs, ev{sp[0], 1}, ev{sp[1], -1})
	}
	// At equal times an end comes first: back-to-back streams do not overlap.
	slices.SortFunc(evs, func(a, b ev) int { return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.d, b.d)) })
	n, most := 0, 0
	for _, e := range evs {
		n += e.d
		most = max(most, n)
	}
	return most
}

func percentiles(d []int64) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))]) / float64(time.Millisecond)
	}
	return Percentiles{P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: float64(d[len(d)-1]) / float64(time.Millisecond)}
}

func counts(m map[string]int64) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name)) })
	return out
}

// grpcCodes are the gRPC status code names, by number.
var grpcCodes = []string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
	"PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal",
	"Unavailable", "DataLoss", "Unauthenticated"}

// GRPCCodeName names a grpc-status code as grpc-go does ("NotFound").
func GRPCCodeName(c int) string {
	if c >= 0 && c < len(grpcCodes) {
		return grpcCodes[c]
	}
	return "Code(" + strconv.Itoa(c) + ")"
}

// ErrCodeName names an HTTP/2 error code ("CANCEL").
func ErrCodeName(c uint32) string { return http2.ErrCode(c).String() }

// HasHTTP2 reports whether the recording held any HTTP/2.
func (s *Summary) HasHTTP2() bool {
	return s.Streams > 0 || s.Connections["h2c"]+s.Connections["h2"] > 0
}

// WriteText prints the figures for a person, or nothing when the
// recording has no HTTP/2.
func (s *Summary) WriteText(w io.Writer) error {
	if !s.HasHTTP2() {
		return nil
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("\nHTTP/2\n")
	p("  connections:     ")
	for _, k := range []string{"h1", "h2c", "h2"} {
		if n := s.Connections[k]; n > 0 {
			p(" %s %d", k, n)
		}
	}
	p("\n  streams:          %d (at most %d on one connection, %d at once)\n", s.Streams, s.MaxStreamsPerConn, s.MaxConcurrency)
	d := s.Durations
	p("  stream duration:  p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", d.P50, d.P90, d.P99, d.Max)
	if len(s.Resets)+len(s.GoAways) > 0 || s.Pushes > 0 {
		p("  resets %s; goaway %s; pushes %d\n", countList(s.Resets), countList(s.GoAways), s.Pushes)
	}
	if len(s.Methods) == 0 {
		return nil
	}
	p("  gRPC messages:    %d from clients, %d from servers\n", s.MessagesFromClient, s.MessagesFromServer)
	p("  gRPC statuses:    %s\n", countList(s.Statuses))
	p("  gRPC methods:\n")
	for _, m := range s.Methods {
		p("    %-40s %6d calls  msgs %d in / %d out  median %.2f ms  %s\n", m.Method, m.Calls, m.FromClient, m.FromServer, m.MedianMilli, countList(m.Statuses))
	}
	return nil
}

func countList(cs []Count) string {
	if len(cs) == 0 {
		return "none"
	}
	out := ""
	for k, c := range cs {
		if k > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", c.Name, c.Count)
	}
	return out
}

// SummarizeFiles reads the recordings at paths (as session.Open takes
// them) and returns their HTTP/2 figures. Damage is skipped over: the
// recording's own summary reports it.
func SummarizeFiles(ctx context.Context, paths ...string) (Summary, error) {
	r, err := session.Open(paths...)
	if err != nil {
		return Summary{}, err
	}
	defer r.Close()
	z := NewSummarizer()
	var x session.Exchange
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return z.Summary(), ctx.Err()
		}
		err := r.Read(&x)
		var ce *session.CorruptError
		switch {
		case errors.Is(err, io.EOF):
			return z.Summary(), nil
		case errors.As(err, &ce):
			continue
		case err != nil:
			return z.Summary(), err
		}
		z.Add(&x)
	}
}
