package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// RecordConfig is what 'reprise proxy' asks for: where to listen, where to
// forward, and where to write the recording.
type RecordConfig struct {
	Listen      string // host:port; loopback unless AllowRemote
	AllowRemote bool
	Upstream    string // http:// or https:// URL
	Output      string // recording path (the first part's, with rotation)
	MaxBody     int64  // per-body recording cap; 0 means DefaultMaxBody
	NoBodies    bool   // record no body bytes at all (MaxBody 0)
	RotateSize  int64  // start a new part after this many bytes; 0: never
	RotateEvery time.Duration
	Duration    time.Duration // stop by itself after this long; 0: at ctx end
	// Redact is the redaction applied before anything is written. Nil
	// means the package defaults (passwords in forms and JSON, Basic
	// credentials) with a fresh per-recording secret.
	Redact *redact.Config
	// Sessions are the session rules tried in order, as 'reprise capture
	// --session' takes them ("cookie:JSESSIONID", "bearer", "auto,connection");
	// empty means auto. Each exchange is given its session and token
	// events before it is written, and a timeline per session is stored,
	// exactly as capture does, so a proxy recording replays by session.
	Sessions []string
	// NoSessions turns session tracking off (Sessions must then be empty).
	NoSessions bool
	Tool       string // written to the metadata, e.g. "reprise v1.2.0"
	// OnListen is called with the address actually listened on.
	OnListen func(addr string)
	// Status is called about once a second with the progress so far.
	Status func(Progress)
}

// Progress is a snapshot for the live status line.
type Progress struct {
	Elapsed      time.Duration
	Stats        Stats
	BytesWritten int64 // bytes of recording on disk
}

// Summary is what a recording run did, for the final report.
type Summary struct {
	Listen       string            `json:"listen"`
	Upstream     string            `json:"upstream"`
	Files        []string          `json:"files"`
	Duration     time.Duration     `json:"duration_ns"`
	Connections  uint64            `json:"connections"`
	Exchanges    uint64            `json:"exchanges"`
	Incomplete   uint64            `json:"incomplete"`
	Dropped      uint64            `json:"dropped"`
	BadGateway   uint64            `json:"bad_gateway"`
	Unsupported  map[string]uint64 `json:"unsupported,omitempty"`
	BytesUp      uint64            `json:"bytes_up"`
	BytesDown    uint64            `json:"bytes_down"`
	BytesWritten int64             `json:"bytes_written"`
	Redacted     []string          `json:"redacted,omitempty"`
	Sessions     uint64            `json:"sessions,omitempty"`
}

// Record runs a recording proxy until ctx ends (or cfg.Duration passes),
// writing every exchange it forwards to cfg.Output after redaction. On the
// way out it lets exchanges in flight finish, writes the final metadata
// (counters, redaction, end time) and closes the file, so SIGINT or
// SIGTERM leave a whole recording.
func Record(ctx context.Context, cfg RecordConfig) (Summary, error) {
	var sum Summary
	if cfg.Output == "" {
		return sum, errors.New("no output file; give one with -o FILE")
	}
	if err := CheckListen(cfg.Listen, cfg.AllowRemote); err != nil {
		return sum, err
	}
	maxBody := cfg.MaxBody
	if maxBody == 0 && !cfg.NoBodies {
		maxBody = DefaultMaxBody
	}
	if maxBody > session.MaxBodyCap {
		return sum, fmt.Errorf("max body %d above the recording's limit of %d bytes", maxBody, session.MaxBodyCap)
	}
	p, err := New(cfg.Upstream, WithMaxBody(maxBody))
	if err != nil {
		return sum, err
	}
	rcfg := redact.Config{}
	if cfg.Redact != nil {
		rcfg = *cfg.Redact
	}
	red, err := redact.New(rcfg)
	if err != nil {
		return sum, err
	}
	var tracker *identity.Tracker
	if cfg.NoSessions {
		if len(cfg.Sessions) > 0 {
			return sum, errors.New("session rules given with sessions turned off; drop one of them")
		}
	} else if tracker, err = identity.NewTracker(identity.WithRuleText(cfg.Sessions...)); err != nil {
		return sum, fmt.Errorf("session rules: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return sum, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	addr := ln.Addr().String()
	host, _ := os.Hostname()
	start := time.Now()
	meta := session.Metadata{
		Source:  p.Source(addr),
		Host:    host,
		Tool:    cfg.Tool,
		Start:   start.UnixNano(),
		MaxBody: maxBody,
	}
	if tracker != nil {
		meta.SessionRules = tracker.Rules()
	}
	wopts := []session.WriterOption{session.BodyCap(int(maxBody)), session.FlushInterval(time.Second)}
	if cfg.RotateSize > 0 {
		wopts = append(wopts, session.RotateSize(cfg.RotateSize))
	}
	if cfg.RotateEvery > 0 {
		wopts = append(wopts, session.RotateEvery(cfg.RotateEvery))
	}
	fw, err := session.Create(cfg.Output, meta, wopts...)
	if err != nil {
		ln.Close()
		return sum, err
	}
	if cfg.OnListen != nil {
		cfg.OnListen(addr)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithTimeout(runCtx, cfg.Duration)
		defer c2()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- p.Serve(runCtx, ln) }()

	// The status line and the metadata counters, once a second.
	var wg sync.WaitGroup
	tickDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-tickDone:
				return
			case <-t.C:
				fw.UpdateCounters(p.Counters())
				if cfg.Status != nil {
					cfg.Status(Progress{Elapsed: time.Since(start), Stats: p.Stats(), BytesWritten: diskSize(fw.Paths())})
				}
			}
		}
	}()

	// Redaction comes first, so the tracker sees (and stores in token
	// events) only what the recording may hold, as in capture. The tracker
	// is owned by this goroutine; Annotate reorders the proxy's exchanges
	// (emitted as responses end) by request start within its window.
	var src session.Source = redacting{p, red}
	if tracker != nil {
		src = tracker.Annotate(src)
	}
	var werr error
	for {
		x, err := src.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && werr == nil {
				werr = err
			}
			break
		}
		if werr != nil {
			continue // drain so the proxy can finish; the error is reported
		}
		if err := fw.WriteExchange(x); err != nil {
			werr = fmt.Errorf("write %s: %w", cfg.Output, err)
			cancel()
			continue
		}
		if tracker != nil {
			if err := tracker.WriteFinished(fw, false); err != nil {
				werr = fmt.Errorf("write %s: %w", cfg.Output, err)
				cancel()
			}
		}
	}
	if tracker != nil && werr == nil {
		if err := tracker.WriteFinished(fw, true); err != nil {
			werr = fmt.Errorf("write %s: %w", cfg.Output, err)
		}
	}
	close(tickDone)
	wg.Wait()
	serr := <-serveErr

	meta.End = time.Now().UnixNano()
	meta.Redaction = red.Redacted()
	fw.SetMetadata(meta)
	fw.UpdateCounters(p.Counters())
	cerr := fw.Close()

	s := p.Stats()
	sum = Summary{
		Listen: addr, Upstream: p.Upstream(), Files: fw.Paths(), Duration: time.Since(start),
		Connections: s.Connections, Exchanges: s.Exchanges, Incomplete: s.Incomplete,
		Dropped: s.Dropped, BadGateway: s.Errors, Unsupported: s.Unsupported,
		BytesUp: s.BytesUp, BytesDown: s.BytesDown,
		BytesWritten: diskSize(fw.Paths()), Redacted: meta.Redaction,
	}
	if tracker != nil {
		sum.Sessions = tracker.Stats().Sessions
	}
	return sum, errors.Join(werr, serr, cerr)
}

// redacting applies the redaction to each exchange as it leaves the proxy.
type redacting struct {
	src session.Source
	red *redact.Redactor
}

func (r redacting) Next() (*session.Exchange, error) {
	x, err := r.src.Next()
	if x != nil {
		r.red.Apply(x)
	}
	return x, err
}

func diskSize(paths []string) int64 {
	var n int64
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}
