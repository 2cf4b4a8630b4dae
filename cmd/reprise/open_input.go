package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/capture/importer"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// replayInput is what replay and 'inspect --sessions' read: recordings, or
// GoReplay .gor and HAR files imported on the fly.
type replayInput interface {
	session.Source
	Metadata() []session.Metadata
	Paths() []string
	Close() error
}

var (
	_ replayInput = (*session.MultiReader)(nil)
	_ replayInput = (*importStream)(nil)
)

// openInput opens recordings, or, when every path is a .gor or HAR file,
// imports them as a stream through the recording loop 'reprise import'
// runs (capture.Recorder with the default redaction and session tracking,
// tracked with topts), so a replay of the file sends what a replay of its
// import would. Damaged payloads are counted and said on warn at Close.
// A replay never reads the stored session timelines, so recordings are
// opened keeping none: behind a proxy every login starts one, and a long
// recording's would hold megabytes and cost their decoding.
func openInput(ctx context.Context, paths []string, warn io.Writer, topts ...identity.Option) (replayInput, error) {
	if !importable(paths) {
		return session.OpenWith(paths, session.MaxTimelines(0))
	}
	return openImportStream(ctx, paths, warn, topts...)
}

// importStream is an import whose recording loop writes into a pipe the
// reader pulls from, in place of a recording file; the sessions' timelines
// the tracker closes are kept for Timelines.
type importStream struct {
	src  *lockedSource
	meta session.Metadata
	pipe *capture.Pipe
	warn io.Writer

	cancel  context.CancelFunc
	done    chan struct{}
	err     error // the recording loop's, read after done
	damaged int   // written in src.Next, read after src.Close

	mu        sync.Mutex
	timelines []session.Timeline
}

func openImportStream(ctx context.Context, paths []string, warn io.Writer, topts ...identity.Option) (*importStream, error) {
	var red redactFlags // 'reprise import' without flags: every credential hashed
	rd, err := red.redactor()
	if err != nil {
		return nil, err
	}
	s := &importStream{pipe: capture.NewPipe(256), warn: warn, done: make(chan struct{})}
	src, err := importer.Open(paths, importer.Options{MaxBody: gor.DefaultMaxBody, OnDamage: func(error) { s.damaged++ }})
	if err != nil {
		return nil, err
	}
	rec, err := capture.NewRecorder(capture.WithRedactor(rd), capture.WithSessions(topts...),
		capture.WithMetadata(session.Metadata{Source: importSource(src.Paths()), Tool: Version(), MaxBody: gor.DefaultMaxBody}))
	if err != nil {
		src.Close()
		return nil, err
	}
	s.src, s.meta = &lockedSource{src: src}, rec.Metadata()
	// The recorder stamps its own start time; the replay's origin is the
	// first exchange of the file instead.
	s.meta.Start = 0
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		_, s.err = rec.Record(ctx, s.src, pipeSink{s})
	}()
	return s, nil
}

// Next returns the next exchange imported, and at the end the recording
// loop's error, if it had one, in place of io.EOF.
func (s *importStream) Next() (*session.Exchange, error) {
	x, err := s.pipe.Next()
	if errors.Is(err, io.EOF) {
		<-s.done
		if s.err != nil {
			return nil, s.err
		}
	}
	return x, err
}

// Metadata is the import's as 'reprise import' writes it: the session
// rules say the exchanges carry their sessions.
func (s *importStream) Metadata() []session.Metadata { return []session.Metadata{s.meta} }

// Paths are the files imported, globs expanded.
func (s *importStream) Paths() []string { return s.src.src.Paths() }

// Timelines are the sessions the tracker closed so far (all of them once
// Next returned io.EOF).
func (s *importStream) Timelines() []session.Timeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]session.Timeline(nil), s.timelines...)
}

// Close stops the import if the reader stopped early, waits for it, and
// says on warn how many damaged payloads or entries it passed over.
func (s *importStream) Close() error {
	s.pipe.Fail(io.ErrClosedPipe)
	s.cancel()
	<-s.done
	err := s.src.Close() // the damage count is final from here
	if s.damaged > 0 && s.warn != nil {
		fmt.Fprintf(s.warn, "reprise: %d damaged payloads or entries passed over in %v; every good one was read\n", s.damaged, s.Paths())
	}
	return err
}

// lockedSource lets Close wait for a Next in progress: a recording loop
// stopped early (its reader gone) returns while its reading goroutine may
// still be in Next, which ends there. Next after Close returns io.EOF.
type lockedSource struct {
	mu     sync.Mutex
	src    *importer.Source
	closed bool
}

func (l *lockedSource) Next() (*session.Exchange, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, io.EOF
	}
	return l.src.Next()
}

func (l *lockedSource) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.src.Close()
}

// pipeSink is the recording loop's sink for an importStream: exchanges go
// to the pipe, timelines to the stream, counters and metadata nowhere.
type pipeSink struct{ s *importStream }

func (p pipeSink) WriteExchange(x *session.Exchange) error { return p.s.pipe.WriteExchange(x) }

func (p pipeSink) WriteTimeline(tl *session.Timeline) error {
	p.s.mu.Lock()
	p.s.timelines = append(p.s.timelines, *tl)
	p.s.mu.Unlock()
	return nil
}

func (pipeSink) UpdateCounters(session.Counters) {}
func (pipeSink) SetMetadata(session.Metadata)    {}
func (p pipeSink) Close() error                  { return p.s.pipe.Close() }

// inspectSessionsImport is identity.Inspect for .gor and HAR files: the
// sessions are those the import's tracker gives (with o.Tracker's rules),
// read in one pass as 'reprise import' would store them.
func inspectSessionsImport(ctx context.Context, paths []string, o identity.InspectOptions, warn io.Writer) (*identity.InspectResult, error) {
	in, err := openImportStream(ctx, paths, warn, o.Tracker...)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	sum := identity.NewSummary()
	var det *identity.Detail
	if o.Session != "" {
		det = identity.NewDetail(o.Session)
	}
	for {
		x, err := in.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		sum.Add(x)
		if det != nil {
			det.Add(x)
		}
	}
	tls := in.Timelines()
	res := &identity.InspectResult{Report: sum.Report(tls, o.Top)}
	res.Report.From = "recomputed" // by the import's tracker
	if det != nil {
		if !det.Finish(tls) {
			return res, fmt.Errorf("%w %q in %v: list the keys with 'reprise inspect --sessions'", identity.ErrNoSession, o.Session, paths)
		}
		res.Detail = det
	}
	return res, nil
}
