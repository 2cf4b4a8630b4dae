package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/reprise-tool/reprise/capture"
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
	// ListenTLS, when set, terminates TLS from the clients with its
	// certificate (see WithListenTLS and SelfSigned).
	ListenTLS *tls.Config
	// UpstreamTLS is the TLS configuration toward an https upstream; nil
	// verifies it against the system roots (see WithTLSConfig).
	UpstreamTLS *tls.Config
	Output      string // recording path (the first part's, with rotation)
	MaxBody     int64  // per-body recording cap; 0 means DefaultMaxBody
	NoBodies    bool   // record no body bytes at all (MaxBody 0)
	RotateSize  int64  // start a new part after this many bytes; 0: never
	RotateEvery time.Duration
	Duration    time.Duration // stop by itself after this long; 0: at ctx end
	// Redact is the redaction applied before anything is written. Nil
	// means the package defaults (every credential: redact.New) with a
	// fresh per-recording secret.
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
	Listen      string            `json:"listen"`
	Upstream    string            `json:"upstream"`
	Files       []string          `json:"files"`
	Duration    time.Duration     `json:"duration_ns"`
	Connections uint64            `json:"connections"`
	Exchanges   uint64            `json:"exchanges"`
	Incomplete  uint64            `json:"incomplete"`
	Dropped     uint64            `json:"dropped"`
	BadGateway  uint64            `json:"bad_gateway"`
	Unsupported map[string]uint64 `json:"unsupported,omitempty"`
	// Protocols counts the connections relayed by protocol ("h1", "h2c",
	// "h2"), and Streams the HTTP/2 streams they carried.
	Protocols map[string]uint64 `json:"protocols,omitempty"`
	Streams   uint64            `json:"streams,omitempty"`
	// TLS counts the client connections whose TLS was terminated, by
	// version, suite, SNI and ALPN.
	TLS       map[string]uint64 `json:"tls,omitempty"`
	ListenTLS bool              `json:"listen_tls,omitempty"`
	// Insecure is true when the upstream's certificate was not checked.
	Insecure     bool     `json:"upstream_insecure,omitempty"`
	BytesUp      uint64   `json:"bytes_up"`
	BytesDown    uint64   `json:"bytes_down"`
	BytesWritten int64    `json:"bytes_written"`
	Redacted     []string `json:"redacted,omitempty"`
	Sessions     uint64   `json:"sessions,omitempty"`
}

// Record runs a recording proxy until ctx ends (or cfg.Duration passes),
// writing every exchange it forwards to cfg.Output through the one
// recording loop, capture.Record: redacted, given its session, with the
// metadata and counters every recording has. On the way out it lets
// exchanges in flight finish, writes the final metadata (counters, the
// redaction rules that fired, the traffic's start and end) and closes the
// file, so SIGINT or SIGTERM leave a whole recording.
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
	popts := []Option{WithMaxBody(maxBody)}
	if cfg.ListenTLS != nil {
		popts = append(popts, WithListenTLS(cfg.ListenTLS))
	}
	if cfg.UpstreamTLS != nil {
		popts = append(popts, WithTLSConfig(cfg.UpstreamTLS))
	}
	p, err := New(cfg.Upstream, popts...)
	if err != nil {
		return sum, err
	}
	ropts, err := cfg.recordOptions()
	if err != nil {
		return sum, err
	}
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithTimeout(runCtx, cfg.Duration)
		defer c2()
	}
	addr, served, err := p.Start(runCtx, cfg.Listen, cfg.AllowRemote)
	if err != nil {
		return sum, err
	}
	var fw *session.FileWriter
	ropts = append(ropts, capture.WithMetadata(session.Metadata{Source: p.Source(addr), Tool: cfg.Tool, MaxBody: maxBody}))
	if cfg.Status != nil {
		ropts = append(ropts, capture.WithProgress(time.Second, func(session.Counters) {
			cfg.Status(Progress{Elapsed: time.Since(start), Stats: p.Stats(), BytesWritten: diskSize(fw.Paths())})
		}))
	}
	rec, err := capture.NewRecorder(ropts...)
	if err == nil {
		fw, err = session.Create(cfg.Output, rec.Metadata(), cfg.writerOptions(maxBody)...)
	}
	if err != nil {
		cancel()
		return sum, errors.Join(err, served())
	}
	if cfg.OnListen != nil {
		cfg.OnListen(addr)
	}
	res, rerr := rec.Record(runCtx, p, fw)
	if rerr != nil {
		rerr = fmt.Errorf("write %s: %w", cfg.Output, rerr)
		cancel() // a recording error: stop the proxy too
	}
	serr := served()

	s := p.Stats()
	sum = Summary{
		Listen: addr, Upstream: p.Upstream(), Files: fw.Paths(), Duration: time.Since(start),
		Connections: s.Connections, Exchanges: s.Exchanges, Incomplete: s.Incomplete,
		Dropped: s.Dropped, BadGateway: s.Errors, Unsupported: s.Unsupported,
		Protocols: s.Protocols, Streams: s.Streams,
		TLS: s.TLS, ListenTLS: p.ListensTLS(), Insecure: p.Insecure(),
		BytesUp: s.BytesUp, BytesDown: s.BytesDown,
		BytesWritten: diskSize(fw.Paths()), Redacted: res.Redacted, Sessions: res.Sessions,
	}
	return sum, errors.Join(rerr, serr)
}

// recordOptions are the redaction and session tracking cfg asks for.
func (cfg RecordConfig) recordOptions() ([]capture.RecordOption, error) {
	rcfg := redact.Config{}
	if cfg.Redact != nil {
		rcfg = *cfg.Redact
	}
	red, err := redact.New(rcfg)
	if err != nil {
		return nil, err
	}
	ropts := []capture.RecordOption{capture.WithRedactor(red)}
	if cfg.NoSessions {
		if len(cfg.Sessions) > 0 {
			return nil, errors.New("session rules given with sessions turned off; drop one of them")
		}
		return ropts, nil
	}
	return append(ropts, capture.WithSessions(identity.WithRuleText(cfg.Sessions...))), nil
}

// writerOptions are the recording file's: live traffic is flushed every
// second, so a crash loses at most that.
func (cfg RecordConfig) writerOptions(maxBody int64) []session.WriterOption {
	wopts := []session.WriterOption{session.BodyCap(int(maxBody)), session.FlushInterval(time.Second)}
	if cfg.RotateSize > 0 {
		wopts = append(wopts, session.RotateSize(cfg.RotateSize))
	}
	if cfg.RotateEvery > 0 {
		wopts = append(wopts, session.RotateEvery(cfg.RotateEvery))
	}
	return wopts
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
