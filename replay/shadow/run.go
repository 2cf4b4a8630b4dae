package shadow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/live"
	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/replay/compare"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/session"
)

// SourceConfig is what RunProxy and RunLive need besides the Mirror's
// Config: where the real traffic comes from and where to record it.
type SourceConfig struct {
	// Proxy mode: Listen (loopback unless AllowRemote) and Upstream, the
	// real service.
	Listen      string
	AllowRemote bool
	Upstream    string
	// Live mode: Interface and the service's Ports.
	Interface string
	Ports     []uint16
	// Duration stops the run by itself; 0 runs until ctx ends.
	Duration time.Duration
	// Output, when set, records every exchange seen to this file as
	// 'reprise proxy' or 'reprise capture' would, redacted by Redact (nil:
	// the package defaults).
	Output string
	Redact *redact.Config
	// RedactExamples shows the comparison's example values as keyed
	// hashes (capture/redact) even without Output; with Output they are
	// always hashed, with the recording's redactor.
	RedactExamples bool
	// MaxBody caps recorded bodies (default proxy.DefaultMaxBody).
	MaxBody int64
	Tool    string
	// OnListen is called with the proxy's address once it listens.
	OnListen func(addr string)
}

// RunProxy puts the recording proxy in front of cfg.Upstream and mirrors
// every exchange it forwards. The proxy never waits for the mirror (see
// the package documentation); exchanges the mirror could not take from the
// proxy are counted in Summary.Source["dropped"].
func RunProxy(ctx context.Context, sc SourceConfig, cfg Config) (Summary, error) {
	var sum Summary
	if err := proxy.CheckListen(sc.Listen, sc.AllowRemote); err != nil {
		return sum, err
	}
	maxBody := sc.MaxBody
	if maxBody == 0 {
		maxBody = proxy.DefaultMaxBody
	}
	p, err := proxy.New(sc.Upstream, proxy.WithMaxBody(maxBody))
	if err != nil {
		return sum, err
	}
	red, err := redactor(sc, &cfg)
	if err != nil {
		return sum, err
	}
	m, err := New(cfg)
	if err != nil {
		return sum, err
	}
	ln, err := net.Listen("tcp", sc.Listen)
	if err != nil {
		return sum, fmt.Errorf("listen on %s: %w", sc.Listen, err)
	}
	addr := ln.Addr().String()
	finish, err := m.recordTo(sc, red, p.Source(addr), maxBody)
	if err != nil {
		ln.Close()
		return sum, err
	}
	if sc.OnListen != nil {
		sc.OnListen(addr)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if sc.Duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithTimeout(runCtx, sc.Duration)
		defer c2()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- p.Serve(runCtx, ln) }()
	sum, rerr := m.Run(ctx, p)
	if rerr != nil && !isAbort(rerr) {
		cancel() // a recording error: stop the proxy too
	}
	serr := <-serveErr
	ps := p.Stats()
	sum.Source = map[string]uint64{"connections": ps.Connections, "exchanges": ps.Exchanges,
		"dropped": ps.Dropped, "bad_gateway": ps.Errors, "incomplete": ps.Incomplete}
	return sum, errors.Join(rerr, serr, finish(p.Counters()))
}

// RunLive captures sc.Interface (Linux; root or CAP_NET_RAW) and mirrors
// the exchanges to and from sc.Ports.
func RunLive(ctx context.Context, sc SourceConfig, cfg Config) (Summary, error) {
	var sum Summary
	if sc.Interface == "" {
		return sum, errors.New("no interface: give --iface NAME (or use --listen and --upstream)")
	}
	red, err := redactor(sc, &cfg)
	if err != nil {
		return sum, err
	}
	m, err := New(cfg)
	if err != nil {
		return sum, err
	}
	if sc.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sc.Duration)
		defer cancel()
	}
	src, err := live.Open(ctx, live.Config{Interface: sc.Interface, Ports: sc.Ports})
	if err != nil {
		return sum, err
	}
	defer src.Close()
	maxBody := sc.MaxBody
	if maxBody == 0 {
		maxBody = proxy.DefaultMaxBody
	}
	ports := make([]int, len(sc.Ports))
	for i, p := range sc.Ports {
		ports[i] = int(p)
	}
	pl, err := capture.FromPackets(ctx, src, capture.WithPorts(ports...), capture.WithMaxBody(maxBody))
	if err != nil {
		return sum, err
	}
	finish, err := m.recordTo(sc, red, "iface:"+sc.Interface, maxBody)
	if err != nil {
		return sum, err
	}
	sum, rerr := m.Run(ctx, pl)
	c := pl.Counters()
	sum.Source = map[string]uint64{"connections": c.Connections, "exchanges": c.Exchanges,
		"incomplete": c.Incomplete, "kernel_drops": c.PacketsDropped}
	return sum, errors.Join(rerr, finish(c))
}

func isAbort(err error) bool {
	var ab *guard.AbortError
	return errors.As(err, &ab)
}

// redactor makes the run's redactor when a recording or redacted examples
// need one, and has the comparison hash its examples with it.
func redactor(sc SourceConfig, cfg *Config) (*redact.Redactor, error) {
	if sc.Output == "" && !sc.RedactExamples {
		return nil, nil
	}
	rcfg := redact.Config{}
	if sc.Redact != nil {
		rcfg = *sc.Redact
	}
	red, err := redact.New(rcfg)
	if err != nil {
		return nil, err
	}
	cfg.Compare = append(append([]compare.Option(nil), cfg.Compare...), compare.WithRedact(red.Hash))
	return red, nil
}

// recordTo opens sc.Output, if any, and sets the mirror to write to it.
// The returned function writes the final metadata and closes the file.
func (m *Mirror) recordTo(sc SourceConfig, red *redact.Redactor, source string, maxBody int64) (func(session.Counters) error, error) {
	if sc.Output == "" {
		return func(session.Counters) error { return nil }, nil
	}
	host, _ := os.Hostname()
	meta := session.Metadata{Source: source, Host: host, Tool: sc.Tool, Start: time.Now().UnixNano(), MaxBody: maxBody}
	fw, err := session.Create(sc.Output, meta, session.BodyCap(int(maxBody)), session.FlushInterval(time.Second))
	if err != nil {
		return nil, err
	}
	m.cfg.Record = fw
	m.cfg.RecordFilter = func(x *session.Exchange) { red.Apply(x) }
	m.cfg.Timelines = fw
	return func(c session.Counters) error {
		meta.End = time.Now().UnixNano()
		meta.Redaction = red.Redacted()
		fw.SetMetadata(meta)
		fw.UpdateCounters(c)
		return fw.Close()
	}, nil
}
