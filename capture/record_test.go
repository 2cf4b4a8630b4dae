package capture_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// loginExchanges are a login with a password and a call with the issued
// bearer token, one second apart.
func loginExchanges() []*session.Exchange {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	login := &session.Exchange{
		Request: session.Request{Method: "POST", Target: "/login", Proto: "HTTP/1.1",
			Header: session.Headers{{Name: "Content-Type", Value: "application/json"}},
			Body:   []byte(`{"user":"ann","password":"hunter2"}`), BodySize: 35},
		Response: session.Response{Proto: "HTTP/1.1", Status: 200,
			Header: session.Headers{{Name: "Content-Type", Value: "application/json"}},
			Body:   []byte(`{"access_token":"tok-1"}`), BodySize: 24},
		Timing: session.Timing{RequestStart: t0, RequestEnd: t0 + 1e6, ResponseStart: t0 + 2e6, ResponseEnd: t0 + 3e6},
	}
	call := &session.Exchange{
		Request: session.Request{Method: "GET", Target: "/cart", Proto: "HTTP/1.1",
			Header: session.Headers{{Name: "Authorization", Value: "Bearer tok-1"}}},
		Response: session.Response{Proto: "HTTP/1.1", Status: 200},
		Timing:   session.Timing{RequestStart: t0 + 1e9, RequestEnd: t0 + 1e9, ResponseStart: t0 + 1e9 + 5e6, ResponseEnd: t0 + 1e9 + 6e6},
	}
	return []*session.Exchange{login, call}
}

// readBack reads a recording written to buf.
func readBack(t *testing.T, buf *bytes.Buffer) ([]*session.Exchange, session.Metadata, []session.Timeline) {
	t.Helper()
	r, err := session.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	xs := shoptest.Collect(t, r)
	return xs, r.Metadata(), r.Timelines()
}

// The one loop redacts before the tracker, gives sessions, writes their
// timelines, and closes the recording with metadata that names the rules
// that fired (not every rule configured), the traffic's bounds and the
// counters.
func TestRecordMetadata(t *testing.T) {
	var buf bytes.Buffer
	w, err := session.NewWriter(&buf, session.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := redact.New(redact.Config{Cookies: []string{"SESSIONID"}})
	if err != nil {
		t.Fatal(err)
	}
	xs := loginExchanges()
	rec, err := capture.NewRecorder(capture.WithMetadata(session.Metadata{Source: "test", Tool: "reprise test"}),
		capture.WithRedactor(rd), capture.WithSessions())
	if err != nil {
		t.Fatal(err)
	}
	if m := rec.Metadata(); m.Source != "test" || m.Host == "" || m.Start == 0 || len(m.SessionRules) == 0 || m.Redaction != nil {
		t.Errorf("header metadata = %+v", m)
	}
	res, err := rec.Record(context.Background(), &shoptest.SliceSource{Exchanges: xs}, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteExchange(xs[0]); !errors.Is(err, session.ErrClosed) {
		t.Errorf("the recording was not closed: write after Record gave %v", err)
	}
	got, md, tls := readBack(t, &buf)
	if len(got) != 2 || strings.Contains(string(got[0].Request.Body), "hunter2") || got[1].Session == "" || got[0].Session != got[1].Session {
		t.Fatalf("exchanges not redacted or not in one session: %+v", got)
	}
	// The default rules that fired (the login's password, the token it
	// issued and the bearer header that carried it); the named cookie
	// rule did not.
	if want := []string{"header:authorization", "json:access_token", "json:password"}; !reflect.DeepEqual(md.Redaction, want) || !reflect.DeepEqual(res.Redacted, want) {
		t.Errorf("redaction = %v (result %v), want the rule that fired, %v", md.Redaction, res.Redacted, want)
	}
	if md.Start != xs[0].Timing.RequestStart || md.End != xs[1].Timing.ResponseEnd || md.Source != "test" || md.Tool != "reprise test" {
		t.Errorf("metadata = %+v", md)
	}
	if md.Counters.Exchanges != 2 || res.Sessions != 1 || len(tls) != 1 || len(md.SessionRules) == 0 {
		t.Errorf("counters %+v, sessions %d, timelines %d, rules %v", md.Counters, res.Sessions, len(tls), md.SessionRules)
	}
}

// WithLimit stops after n exchanges and says so; the counters say what
// the recording holds.
func TestRecordLimit(t *testing.T) {
	var buf bytes.Buffer
	w, err := session.NewWriter(&buf, session.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := capture.Record(context.Background(), &shoptest.SliceSource{Exchanges: loginExchanges()}, w, capture.WithLimit(1))
	if err != nil {
		t.Fatal(err)
	}
	got, md, _ := readBack(t, &buf)
	if !res.LimitReached || len(got) != 1 || md.Counters.Exchanges != 1 {
		t.Errorf("limit reached %v, %d written, counters %+v", res.LimitReached, len(got), md.Counters)
	}
}

// stuck never ends: a source whose context was not the recording's.
type stuck struct{ c chan struct{} }

func (s stuck) Next() (*session.Exchange, error) { <-s.c; return nil, errors.New("unreachable") }

// Cancelling the context stops a recording whose source does not end
// within the drain time: what came before is kept and the file closed.
func TestRecordDrain(t *testing.T) {
	var buf bytes.Buffer
	w, err := session.NewWriter(&buf, session.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := stuck{make(chan struct{})}
	defer close(s.c)
	_, err = capture.Record(ctx, s, w, capture.WithDrain(20*time.Millisecond))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if _, md, _ := readBack(t, &buf); md.End == 0 {
		t.Errorf("final metadata missing: %+v", md)
	}
}

// A Pipe turns pushed exchanges into a source; once the reader failed,
// writes return its error instead of blocking.
func TestPipe(t *testing.T) {
	p := capture.NewPipe(1)
	var buf bytes.Buffer
	w, err := session.NewWriter(&buf, session.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := capture.Record(context.Background(), p, w)
		done <- err
	}()
	for _, x := range loginExchanges() {
		if err := p.WriteExchange(x); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, md, _ := readBack(t, &buf); len(got) != 2 || md.Counters.Exchanges != 2 {
		t.Errorf("%d exchanges, counters %+v", len(got), md.Counters)
	}

	p = capture.NewPipe(1)
	boom := errors.New("disk full")
	p.Fail(boom)
	if err := p.WriteExchange(&session.Exchange{}); !errors.Is(err, boom) {
		t.Errorf("write after Fail = %v", err)
	}
}

// Options are checked before anything is read.
func TestRecordOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  capture.RecordOption
	}{
		{"negative limit", capture.WithLimit(-1)},                                           // 0 is no limit
		{"nil redactor", capture.WithRedactor(nil)},                                         // nothing to apply
		{"nil progress", capture.WithProgress(time.Second, nil)},                            // nothing to call
		{"negative drain", capture.WithDrain(-time.Second)},                                 // must be positive
		{"nil counters", capture.WithCounters(nil)},                                         // nothing to call
		{"bad session rule", capture.WithSessions(identity.WithRuleText("no-such-rule:x"))}, // the tracker refuses
		{"negative interval", capture.WithProgress(-time.Second, nil)},                      // not an interval
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := capture.NewRecorder(tt.opt); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// With WithCorrelationPlan the recording's final metadata holds the
// correlation plan: the login's token, carried back by the next request,
// is the one value to learn. Without it, none.
func TestRecordPlan(t *testing.T) {
	var buf bytes.Buffer
	w, err := session.NewWriter(&buf, session.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	xs := loginExchanges()
	xs[0].Response.Body = []byte(`{"access_token":"tok-0123456789","id":"unused-id-12345"}`)
	xs[1].Request.Header = session.Headers{{Name: "Authorization", Value: "Bearer tok-0123456789"}}
	if _, err := capture.Record(context.Background(), &shoptest.SliceSource{Exchanges: xs}, w, capture.WithSessions(), capture.WithCorrelationPlan()); err != nil {
		t.Fatal(err)
	}
	_, md, _ := readBack(t, &buf)
	want := []session.CorrelationRule{{Route: "POST /login", Field: "json:.access_token"}}
	if md.Correlation == nil || !reflect.DeepEqual(md.Correlation.Rules, want) || md.Correlation.Exchanges != 2 {
		t.Errorf("plan = %+v, want rules %v", md.Correlation, want)
	}
}

func TestRecordNoPlanByDefault(t *testing.T) {
	var buf bytes.Buffer
	w, err := session.NewWriter(&buf, session.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := capture.Record(context.Background(), &shoptest.SliceSource{Exchanges: loginExchanges()}, w, capture.WithSessions()); err != nil {
		t.Fatal(err)
	}
	if _, md, _ := readBack(t, &buf); md.Correlation != nil {
		t.Errorf("plan = %+v without WithCorrelationPlan, want none", md.Correlation)
	}
}

// notifySink passes each exchange it is given on a channel.
type notifySink struct {
	got chan *session.Exchange
}

func (s *notifySink) WriteExchange(x *session.Exchange) error { s.got <- x; return nil }
func (s *notifySink) WriteTimeline(*session.Timeline) error   { return nil }
func (s *notifySink) UpdateCounters(session.Counters)         {}
func (s *notifySink) SetMetadata(session.Metadata)            {}
func (s *notifySink) Close() error                            { return nil }

// An exchange pushed into a Pipe (the shadow's and the proxy's way in)
// reaches the sink while the pipe stays open and quiet: the recording
// loop batches its hand-offs, but never holds an exchange waiting for the
// next user's, redacted or not.
func TestPipeQuietExchangeWritten(t *testing.T) {
	red, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []capture.RecordOption
	}{
		{"plain", nil},
		{"redacted", []capture.RecordOption{capture.WithRedactor(red)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := capture.NewPipe(8)
			sink := &notifySink{got: make(chan *session.Exchange, 8)}
			done := make(chan error, 1)
			go func() {
				_, err := capture.Record(context.Background(), p, sink, tc.opts...)
				done <- err
			}()
			x := loginExchanges()[0]
			target := x.Request.Target
			if err := p.WriteExchange(x); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-sink.got:
				if got.Request.Target != target {
					t.Errorf("sink got %s, want %s", got.Request.Target, target)
				}
			case <-time.After(5 * time.Second):
				t.Error("the exchange did not reach the sink while the pipe stayed open")
			}
			p.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
