package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/live"
	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/replay/compare"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/replay/shadow"
	"github.com/reprise-tool/reprise/session"
)

// shadowOptions are the flags of 'reprise shadow'.
type shadowOptions struct {
	listen, upstream, iface  string
	ports                    []int
	allowRemote              bool
	shadowURL, baseline      string
	sample                   string
	allowWrites, allowAuth   bool
	rate                     ramp.Rate
	maxInflight, queue       int
	abort                    guard.Flag
	abortWindow              time.Duration
	ignore, headers          []string
	noHeuristics             bool
	noiseShare, margin       float64
	minCount                 int
	timeout, duration, drain time.Duration
	insecure                 bool
	output, html             string
	asJSON, redactExamples   bool
	sessions                 sessionFlags
	redact                   redactFlags
	tls                      proxyTLSFlags

	// Resolved from tls by config, for the proxy source.
	listenTLS, upstreamTLS *tls.Config
	tlsLine                string
}

// addShadow registers 'reprise shadow' on the root command.
func addShadow(root *cobra.Command) {
	o := &shadowOptions{}
	c := &cobra.Command{
		Use:   "shadow --shadow URL (--listen ADDR --upstream URL | --iface NAME --port N)",
		Short: "Mirror live traffic to a shadow deployment and compare its answers",
		Long: `Mirror live traffic, as it happens, to a shadow (staging or candidate)
deployment, keep every mirrored session valid there, and compare the shadow's
answers with the real ones.

Sources: the recording proxy (--listen and --upstream: clients talk to the
proxy, which forwards to the real service and mirrors each exchange), or live
capture on an interface (--iface and --port; Linux, root or CAP_NET_RAW).
In proxy mode the TLS flags are those of 'reprise proxy' (--tls-cert and
--tls-key or --tls-self-signed, --upstream-ca), except that skipping the
upstream's certificate check is --upstream-insecure: --insecure is about the
shadow.

The real traffic never waits for the mirror: each session has a bounded queue
(--queue) and what does not fit is shed and counted. Each session's requests
reach the shadow in order; tokens, cookies and ids the shadow issues replace
the real ones in its later requests, so it logs in and refreshes on the shadow
when it did for real. --sample mirrors a share of whole sessions.

Only GET, HEAD and OPTIONS are mirrored by default, since a shadow that shares
a database with production must not write twice. --allow-auth also mirrors
logins, refreshes and logouts (needed for authenticated sessions to be valid
on a shadow with its own tokens); --allow-writes mirrors every method.

--rate, --max-inflight and --abort-on cap and guard the shadow as in replay;
a tripped guard stops feeding the shadow while the real traffic goes on, and
the exit code is 3.

Comparison: status, --compare-header headers, and bodies (JSON field by field,
others by hash and length). Noise is learned by sending a share of safe
requests twice to the shadow (--noise-share), or from a known-good --baseline
deployment; timestamps, UUIDs, JWTs and random ids are discounted unless
--no-heuristics. A field is reported on a route when it differs more often
than its noise rate plus --margin, at least --min-count times. --ignore drops
JSON paths ($.items[*].updated_at) or headers.`,
		Example: `  # proxy in front of the service on 8080; mirror reads to staging on 8090
  reprise shadow --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080 \
    --shadow http://127.0.0.1:8090

  # keep logged-in sessions valid on staging, mirror a tenth of the sessions
  reprise shadow --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080 \
    --shadow http://127.0.0.1:8090 --allow-auth --sample 10%

  # a candidate with its own database: mirror everything, compare against a
  # known-good copy, record meanwhile, write an HTML diff report
  reprise shadow --iface eth0 --port 8080 --shadow http://127.0.0.1:8090 \
    --baseline http://127.0.0.1:8091 --allow-writes -o live.rpz --html diff.html`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return shadowRun(c.Context(), o, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	o.addFlags(c.Flags())
	root.AddCommand(c)
}

// addFlags defines the flags of 'reprise shadow' on f with their defaults;
// 'reprise proxy --shadow' uses it to start from the same defaults.
func (o *shadowOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.listen, "listen", "", "proxy mode: address to accept clients on (loopback unless --allow-remote)")
	f.StringVar(&o.upstream, "upstream", "", "proxy mode: URL of the real service, e.g. http://127.0.0.1:8080")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "proxy mode: allow listening on a non-loopback address")
	f.StringVar(&o.iface, "iface", "", "live mode: interface to capture on (Linux; root or CAP_NET_RAW)")
	f.IntSliceVar(&o.ports, "port", nil, "live mode: the service's TCP port (repeatable)")
	f.StringVar(&o.shadowURL, "shadow", "", "URL of the deployment to mirror to (required)")
	f.StringVar(&o.baseline, "baseline", "", "URL of a known-good second deployment, whose differences are the noise")
	f.StringVar(&o.sample, "sample", "100%", "share of sessions mirrored, whole, e.g. 10% or 0.1")
	f.BoolVar(&o.allowWrites, "allow-writes", false, "mirror every method, not only GET, HEAD and OPTIONS")
	f.BoolVar(&o.allowAuth, "allow-auth", false, "also mirror logins, refreshes and logouts, so sessions are valid on the shadow")
	f.Var(&o.rate, "rate", "most requests per second to the shadow, e.g. 100/s (default no cap)")
	f.IntVar(&o.maxInflight, "max-inflight", shadow.DefaultMaxInflight, "most requests to the shadow at once")
	f.IntVar(&o.queue, "queue", shadow.DefaultQueue, "exchanges a session may have waiting before more are shed")
	f.Var(&o.abort, "abort-on", `stop feeding the shadow when a rule holds over the window (default "error_rate>20%,p99>5s"; "none" for no guard)`)
	f.DurationVar(&o.abortWindow, "abort-window", 10*time.Second, "sliding window of --abort-on")
	f.StringArrayVar(&o.ignore, "ignore", nil, "JSON path ($.items[*].updated_at) or header name left out of the comparison (repeatable)")
	f.StringSliceVar(&o.headers, "compare-header", compare.DefaultHeaders(), "headers compared")
	f.BoolVar(&o.noHeuristics, "no-heuristics", false, "count timestamps, UUIDs, JWTs and random ids that differ as differences")
	f.Float64Var(&o.noiseShare, "noise-share", shadow.DefaultNoiseShare, "share of safe requests sent twice to learn noise (0: only the first of each route; -1: none)")
	f.Float64Var(&o.margin, "margin", compare.DefaultMargin, "how far above its noise rate a field's difference rate must be to be reported")
	f.IntVar(&o.minCount, "min-count", compare.DefaultMinCount, "differences a field needs on a route to be reported")
	f.DurationVar(&o.timeout, "timeout", shadow.DefaultTimeout, "per request to the shadow")
	f.DurationVar(&o.duration, "duration", 0, "stop by itself after this long (default: until SIGINT/SIGTERM)")
	f.DurationVar(&o.drain, "drain", 5*time.Second, "time the session queues get to empty at the end")
	f.BoolVar(&o.insecure, "insecure", false, "skip TLS certificate checks toward the shadow")
	f.StringVarP(&o.output, "output", "o", "", "also record the real traffic to this file (redacted as 'reprise proxy' does)")
	f.StringVar(&o.html, "html", "", "write the comparison as a self-contained HTML page")
	addJSONFlag(f, &o.asJSON)
	f.BoolVar(&o.redactExamples, "redact-examples", false, "show example values as keyed hashes (always so with -o)")
	o.sessions.add(f, false)
	o.redact.add(f, "with -o: ", false)
	o.tls.add(f, "upstream-insecure")
}

// shadowSample reads "10%", "0.1" or "1".
func shadowSample(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("--sample %q: give a share such as 10%% or 0.1", s)
	}
	if pct {
		v /= 100
	}
	if v <= 0 || v > 1 {
		return 0, fmt.Errorf("--sample %q: give a share above 0 and at most 100%%", s)
	}
	return v, nil
}

// config checks the flags and returns the mirror's configuration. Its
// errors are command-line mistakes.
func (o *shadowOptions) config() (shadow.Config, error) {
	var cfg shadow.Config
	proxyMode := o.listen != "" || o.upstream != ""
	switch {
	case o.shadowURL == "":
		return cfg, errors.New("no shadow: give --shadow http://HOST:PORT")
	case proxyMode && o.iface != "":
		return cfg, errors.New("give either --listen and --upstream (proxy) or --iface and --port (live), not both")
	case proxyMode && (o.listen == "" || o.upstream == ""):
		return cfg, errors.New("proxy mode needs both --listen ADDR and --upstream URL")
	case !proxyMode && o.iface == "":
		return cfg, errors.New("no source: give --listen and --upstream (proxy) or --iface and --port (live)")
	case o.iface != "" && len(o.ports) == 0:
		return cfg, errors.New("live mode needs the service's --port")
	case o.duration < 0 || o.timeout <= 0 || o.drain < 0:
		return cfg, errors.New("--duration and --drain must not be negative, --timeout must be positive")
	}
	if proxyMode {
		if err := proxy.CheckListen(o.listen, o.allowRemote); err != nil {
			return cfg, err
		}
		if err := o.resolveTLS(); err != nil {
			return cfg, err
		}
	} else if o.tls.any() {
		return cfg, errors.New("the --tls-* and --upstream-* flags are for proxy mode (--listen and --upstream); live capture reads TLS only with 'reprise capture --keylog'")
	}
	if _, err := o.livePorts(); err != nil {
		return cfg, err
	}
	sample, err := shadowSample(o.sample)
	if err != nil {
		return cfg, err
	}
	copts := []compare.Option{compare.WithHeaders(o.headers...), compare.WithIgnore(o.ignore...),
		compare.WithHeuristics(!o.noHeuristics), compare.WithMargin(o.margin), compare.WithMinCount(o.minCount)}
	if _, err := compare.New(copts...); err != nil {
		return cfg, err
	}
	iopts, err := o.sessions.options()
	if err != nil {
		return cfg, err
	}
	noise := o.noiseShare
	if noise == 0 {
		noise = 1e-9 // the first of each route only
	}
	cfg = shadow.Config{
		Shadow: o.shadowURL, Baseline: o.baseline, Sample: sample,
		AllowWrites: o.allowWrites, AllowAuth: o.allowAuth,
		Rate: o.rate, MaxInflight: o.maxInflight, Queue: o.queue,
		Abort: o.abort.Rules(), AbortWindow: o.abortWindow,
		NoiseShare: noise, Compare: copts, Identity: iopts,
		Timeout: o.timeout, Drain: o.drain, Insecure: o.insecure,
	}
	if o.drain == 0 {
		cfg.Drain = time.Nanosecond
	}
	if _, err := shadow.New(cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// resolveTLS checks the proxy's TLS flags and makes their configuration
// (a self-signed certificate once).
func (o *shadowOptions) resolveTLS() error {
	var err error
	if o.listenTLS, o.tlsLine, err = o.tls.listen(); err != nil {
		return err
	}
	o.upstreamTLS, err = o.tls.upstream(o.upstream)
	return err
}

// livePorts are --port as the live source takes them.
func (o *shadowOptions) livePorts() ([]uint16, error) {
	var ports []uint16
	for _, p := range o.ports {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("--port %d: give a port from 1 to 65535", p)
		}
		ports = append(ports, uint16(p))
	}
	return ports, nil
}

// redaction returns the run's redactor when a recording or redacted
// examples need one, and has the comparison hash its examples with it, so
// an example matches the recording's hash of the same value.
func (o *shadowOptions) redaction(cfg *shadow.Config) (*redact.Redactor, error) {
	if o.output == "" && !o.redactExamples {
		return nil, nil
	}
	rd, err := o.redact.redactor()
	if err != nil {
		return nil, err
	}
	cfg.Compare = append(append([]compare.Option(nil), cfg.Compare...), compare.WithRedact(rd.Hash))
	return rd, nil
}

func shadowRun(ctx context.Context, o *shadowOptions, stdout, stderr io.Writer) error {
	cfg, err := o.config()
	if err != nil {
		return usagef(err)
	}
	rd, err := o.redaction(&cfg)
	if err != nil {
		return usagef(err)
	}
	status := newStatusLine(stderr)
	cfg.Status = func(s shadow.Stats) { status.show(shadowStatusLine(s)) }
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	src, err := o.openSource(ctx, cfg.Shadow)
	if err != nil {
		return err
	}
	rec, err := o.record(ctx, src, rd, &cfg)
	if err != nil {
		return errors.Join(err, src.stop())
	}
	m, err := shadow.New(cfg)
	if err != nil {
		return errors.Join(err, rec.finish(), src.stop())
	}
	fmt.Fprintln(stderr, src.banner)
	sum, err := m.Run(ctx, src.Source)
	// The source has ended, or the recording failed and the source must
	// stop too.
	err = errors.Join(err, src.stop(), rec.finish())
	sum.Source = src.counts()
	status.done()
	if o.html != "" {
		if herr := shadowWriteHTML(o.html, sum); herr != nil {
			err = errors.Join(err, herr)
		}
	}
	if o.asJSON {
		if jerr := writeJSON(stdout, shadowJSON{sum, rec.redaction}); jerr != nil {
			err = errors.Join(err, jerr)
		}
	} else {
		shadowSummary(stderr, sum)
		fmt.Fprint(stderr, redactionLines(rec.redaction))
		if o.tls.insecure {
			fmt.Fprintf(stderr, "  %s\n", insecureWarning(o.tls.insecureName))
		}
	}
	return err
}

// tlsBanner is what the start banner adds about TLS in proxy mode.
func (o *shadowOptions) tlsBanner() string {
	var s string
	if o.tlsLine != "" {
		s += "\nshadow: " + o.tlsLine
	}
	if o.tls.insecure {
		s += "\nshadow: " + insecureWarning(o.tls.insecureName)
	}
	return s
}

func shadowWriteHTML(path string, sum shadow.Summary) error {
	f, err := createPrivate(path)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	werr := sum.Compare.WriteHTML(f, "reprise shadow: "+sum.Shadow)
	return errors.Join(werr, f.Close())
}

func shadowStatusLine(s shadow.Stats) string {
	return fmt.Sprintf("%6s  %d seen  %d sessions  %d sent  %d errors  %d shed  %d skipped  %d compared  p50 %s p99 %s",
		s.Elapsed.Round(time.Second), s.Seen, s.Sessions, s.Sent, s.Errors, s.ShedTotal(), shadowSum(s.Skipped)+s.Unsampled,
		s.Compared, s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond))
}

func shadowSum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func shadowCounts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	return countList(m)
}

func shadowSummary(w io.Writer, sum shadow.Summary) {
	s := sum.Stats
	fmt.Fprintf(w, "mirrored %d sessions to %s in %s: %d exchanges seen, %d requests sent, %d without answer, %d answered 5xx\n",
		s.Sessions, sum.Shadow, s.Elapsed.Round(time.Millisecond), s.Seen, s.Sent, s.Errors, s.Status5xx)
	fmt.Fprintf(w, "  not mirrored: %d sampled out; skipped: %s; uncorrelated %d\n", s.Unsampled, shadowCounts(s.Skipped), s.Uncorrelated)
	fmt.Fprintf(w, "  shed (the shadow could not keep up): %s\n", shadowCounts(s.Shed))
	if d := sum.Source["dropped"]; d > 0 {
		fmt.Fprintf(w, "  WARNING: %d exchanges forwarded but not handed to the mirror: it fell behind\n", d)
	}
	fmt.Fprintf(w, "  shadow latency p50 %s, p99 %s\n", s.P50, s.P99)
	if sum.Trip != nil {
		fmt.Fprintf(w, "  STOPPED feeding the shadow: %s\n", sum.Trip.Reason())
	}
	sum.Compare.WriteText(w)
}

// shadowSource is the live traffic a shadow run mirrors, the recording
// proxy or live capture, with what its recording and summary need.
type shadowSource struct {
	session.Source
	meta     session.Metadata // Source and MaxBody, for a recording of it
	counters func() session.Counters
	counts   func() map[string]uint64 // for Summary.Source
	stop     func() error             // stops the source and waits for it
	banner   string
}

// openSource starts the source the flags name: the proxy in front of
// --upstream, or live capture on --iface.
func (o *shadowOptions) openSource(ctx context.Context, shadowURL string) (*shadowSource, error) {
	ctx, cancel := context.WithCancel(ctx)
	if o.iface != "" {
		ports, _ := o.livePorts()
		ls, err := live.Open(ctx, live.Config{Interface: o.iface, Ports: ports})
		if err != nil {
			cancel()
			return nil, err
		}
		pl, err := capture.FromPackets(ctx, ls, capture.WithPorts(o.ports...))
		if err != nil {
			ls.Close()
			cancel()
			return nil, err
		}
		return &shadowSource{Source: pl, counters: pl.Counters,
			meta: session.Metadata{Source: "iface:" + o.iface, MaxBody: capture.DefaultMaxBody},
			counts: func() map[string]uint64 {
				c := pl.Counters()
				return map[string]uint64{"connections": c.Connections, "exchanges": c.Exchanges,
					"incomplete": c.Incomplete, "kernel_drops": c.PacketsDropped}
			},
			stop:   func() error { cancel(); return ls.Close() },
			banner: fmt.Sprintf("shadow: capturing %s port %v, mirroring to %s", o.iface, o.ports, shadowURL),
		}, nil
	}
	var popts []proxy.Option
	if o.listenTLS != nil {
		popts = append(popts, proxy.WithListenTLS(o.listenTLS))
	}
	if o.upstreamTLS != nil {
		popts = append(popts, proxy.WithTLSConfig(o.upstreamTLS))
	}
	p, err := proxy.New(o.upstream, popts...)
	if err != nil {
		cancel()
		return nil, err
	}
	addr, served, err := p.Start(ctx, o.listen, o.allowRemote)
	if err != nil {
		cancel()
		return nil, err
	}
	return &shadowSource{Source: p, counters: p.Counters,
		meta: session.Metadata{Source: p.Source(addr), MaxBody: p.MaxBody()},
		counts: func() map[string]uint64 {
			s := p.Stats()
			return map[string]uint64{"connections": s.Connections, "exchanges": s.Exchanges,
				"dropped": s.Dropped, "bad_gateway": s.Errors, "incomplete": s.Incomplete,
				"tls_terminated": shadowSum(s.TLS)}
		},
		stop:   func() error { cancel(); return served() },
		banner: fmt.Sprintf("shadow: listening on %s, forwarding to %s, mirroring to %s", addr, o.upstream, shadowURL) + o.tlsBanner(),
	}, nil
}

// shadowJSON is the --json summary: the mirror's, and what the summaries
// of the other recording verbs say of a recording's redaction.
type shadowJSON struct {
	shadow.Summary
	Redaction []string `json:"redaction,omitempty"`
}

// shadowRecording records what a shadow run saw (-o): the mirror hands a
// copy of each exchange to a pipe that the one recording loop reads, so
// the file is what 'reprise proxy' or 'reprise capture' would write.
type shadowRecording struct {
	pipe *capture.Pipe
	done chan error
	// redaction is the recording's Metadata.Redaction, once finish
	// returned.
	redaction []string
}

// record starts the recording, if -o asks for one, and sets the mirror to
// feed it.
func (o *shadowOptions) record(ctx context.Context, src *shadowSource, rd *redact.Redactor, cfg *shadow.Config) (*shadowRecording, error) {
	if o.output == "" {
		return &shadowRecording{}, nil
	}
	ropts, err := recordOptions(rd, o.sessions)
	if err != nil {
		return nil, usagef(err)
	}
	meta := src.meta
	meta.Tool = Version()
	rec, err := capture.NewRecorder(append(ropts, capture.WithMetadata(meta), capture.WithCounters(src.counters))...)
	if err != nil {
		return nil, usagef(err)
	}
	fw, err := session.Create(o.output, rec.Metadata(), session.BodyCap(int(meta.MaxBody)), session.FlushInterval(time.Second))
	if err != nil {
		return nil, err
	}
	r := &shadowRecording{pipe: capture.NewPipe(1024), done: make(chan error, 1)}
	go func() {
		// The pipe ends when the mirror is done with it (finish), so the
		// recording holds every exchange the mirror read.
		res, err := rec.Record(context.WithoutCancel(ctx), r.pipe, fw)
		r.redaction = res.Redacted
		r.pipe.Fail(err)
		r.done <- err
	}()
	cfg.Record = r.pipe
	return r, nil
}

// finish ends the recording once the mirror has stopped writing to it.
func (r *shadowRecording) finish() error {
	if r.pipe == nil {
		return nil
	}
	r.pipe.Close()
	return <-r.done
}
