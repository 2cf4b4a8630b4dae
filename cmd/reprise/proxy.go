package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/session/summary"
)

// proxyOptions are the flags of 'reprise proxy'.
type proxyOptions struct {
	listen, upstream, output string
	maxBody                  string
	rotateSize               string
	rotateEvery, duration    time.Duration
	allowRemote, asJSON      bool
	redact                   redactFlags
	noDefaultRedaction       bool
	sessions                 sessionFlags
	shadow                   string
	tls                      proxyTLSFlags
}

// proxyDefaultMaxBody is --max-body's default; --shadow refuses any other.
const proxyDefaultMaxBody = "1MiB"

// addProxy registers 'reprise proxy' on the root command.
func addProxy(root *cobra.Command) {
	o := &proxyOptions{}
	c := &cobra.Command{
		Use:   "proxy --upstream URL -o FILE",
		Short: "Record traffic as a reverse proxy (no privileges needed)",
		Long: `Forward HTTP/1.x and HTTP/2 traffic to one upstream and record what was forwarded.

The proxy relays bytes as they were sent: header case and order, bodies,
streaming, keep-alive and pipelining are what client and upstream would see
directly; nothing is added. It needs no privileges and works where TLS ends
at the service. WebSocket and other upgrades are tunnelled but not recorded.

HTTP/2 is relayed as HTTP/2, frame for frame: h2c with prior knowledge or
by Upgrade: h2c, and h2 by ALPN when listening with TLS. The upstream is
spoken to in HTTP/2 too (h2c to an http:// upstream, h2 to an https:// one),
gRPC of every kind streams through untouched, and every stream is recorded
as one exchange, as 'reprise capture' records it.

With --tls-cert and --tls-key (or --tls-self-signed for tests and demos) the
proxy listens with TLS (h2 or HTTP/1.1 by ALPN) and records the plaintext; each
connection's TLS version, suite, SNI and ALPN are counted in the metadata.
An https:// upstream's certificate is checked against the system roots and
--upstream-ca; --insecure skips the check, and the summary says so.

It listens on loopback only unless --allow-remote is given. Every credential
(authorization headers, API keys, cookies, token and password fields, JWTs
anywhere) is replaced by a keyed hash by default; name more with the
--redact-* flags, or keep them in clear with --keep-secrets. The hashing
secret is made per recording (or read from --redact-key-file) and never
written, so equal values stay equal in the recording.

Each exchange is given its session (--session rules, default auto: session
cookies, bearer tokens) and the tokens it issued or refreshed; a timeline
per session is stored in the recording, as 'reprise capture' does.

A status line is printed to stderr every second; SIGINT or SIGTERM finish the
exchanges in flight, write the final metadata and close the file.`,
		Example: `  # put the proxy in front of a service on port 8080 and point clients at 9000
  reprise proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080 -o traffic.rpz

  # hash bearer tokens (where sent and where issued) and a session cookie too,
  # and rotate every 100 MB
  reprise proxy --upstream http://127.0.0.1:8080 -o traffic.rpz \
    --redact-header Authorization --redact-json-field access_token \
    --redact-json-field refresh_token --redact-cookie SESSIONID --rotate-size 100MB

  # clients speak TLS to the proxy; a throwaway certificate, written out for curl
  reprise proxy --upstream https://api.internal:8443 --upstream-ca ca.pem -o traffic.rpz \
    --tls-self-signed --tls-host api.test --tls-cert-out proxy.pem
  curl --cacert proxy.pem https://127.0.0.1:9000/health

  # record gRPC: clients dial the proxy with h2c (plaintext) as they dial the service
  reprise proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:50051 -o grpc.rpz

  # follow sessions by the JSESSIONID cookie rather than the default rules
  reprise proxy --upstream http://127.0.0.1:8080 -o traffic.rpz --session cookie:JSESSIONID

  # also mirror each exchange to staging and compare its answers (the same as
  # 'reprise shadow' with its defaults; use that verb for its other options)
  reprise proxy --upstream http://127.0.0.1:8080 -o traffic.rpz --shadow http://127.0.0.1:8090

  # record for ten minutes, then print a JSON summary
  reprise proxy --upstream http://127.0.0.1:8080 -o traffic.rpz --duration 10m --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return proxyRun(c.Context(), o, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:9000", "address to accept clients on (loopback unless --allow-remote)")
	f.StringVar(&o.upstream, "upstream", "", "URL of the service to forward to, e.g. http://127.0.0.1:8080 (required)")
	f.StringVarP(&o.output, "output", "o", "", "recording file to write (required)")
	f.StringVar(&o.maxBody, "max-body", proxyDefaultMaxBody, "bytes of each body to record (bodies are always forwarded whole); 0 records none")
	f.StringVar(&o.rotateSize, "rotate-size", "", "start a new recording part after this size, e.g. 100MB")
	f.DurationVar(&o.rotateEvery, "rotate-every", 0, "start a new recording part this often, e.g. 1h")
	f.DurationVar(&o.duration, "duration", 0, "stop by itself after this long (default: run until SIGINT/SIGTERM)")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow listening on a non-loopback address")
	addJSONFlag(f, &o.asJSON)
	o.redact.add(f, "", true)
	f.BoolVar(&o.noDefaultRedaction, "no-default-redaction", false, "the same as --keep-secrets")
	o.sessions.add(f, true)
	o.tls.add(f, "insecure")
	f.StringVar(&o.shadow, "shadow", "", "also mirror reads to this URL and compare the answers, as 'reprise shadow' does with its defaults")
	root.AddCommand(c)
}

// proxyShadow runs 'reprise proxy --shadow URL': the shadow verb in proxy
// mode, starting from its own flag defaults, with the proxy's flags that
// mean the same thing carried over.
func proxyShadow(ctx context.Context, o *proxyOptions, stdout, stderr io.Writer) error {
	so := &shadowOptions{}
	so.addFlags(pflag.NewFlagSet("shadow", pflag.ContinueOnError))
	so.listen, so.upstream, so.shadowURL = o.listen, o.upstream, o.shadow
	so.allowRemote, so.asJSON, so.duration, so.output = o.allowRemote, o.asJSON, o.duration, o.output
	so.redact, so.sessions, so.tls = o.redact, o.sessions, o.tls
	if o.maxBody != proxyDefaultMaxBody || o.rotateSize != "" || o.rotateEvery != 0 || o.noDefaultRedaction {
		return usagef(errors.New("--shadow records with the shadow verb's defaults: drop --max-body, --rotate-size, --rotate-every and --no-default-redaction, or record with a separate 'reprise proxy'"))
	}
	return shadowRun(ctx, so, stdout, stderr)
}

func proxyRun(ctx context.Context, o *proxyOptions, stdout, stderr io.Writer) error {
	if o.upstream == "" {
		return usagef(errors.New("no upstream: give --upstream http://HOST:PORT"))
	}
	if o.shadow != "" {
		return proxyShadow(ctx, o, stdout, stderr)
	}
	if o.output == "" {
		return usagef(errors.New("no output file: give -o FILE"))
	}
	if err := proxy.CheckListen(o.listen, o.allowRemote); err != nil {
		return usagef(err)
	}
	maxBody, err := parseSize(o.maxBody)
	if err != nil {
		return usagef(fmt.Errorf("--max-body: %w", err))
	}
	var rotate int64
	if o.rotateSize != "" {
		if rotate, err = parseSize(o.rotateSize); err != nil {
			return usagef(fmt.Errorf("--rotate-size: %w", err))
		}
	}
	if o.duration < 0 || o.rotateEvery < 0 {
		return usagef(errors.New("--duration and --rotate-every must not be negative"))
	}
	if _, err := o.sessions.options(); err != nil {
		return usagef(err)
	}
	listenTLS, tlsLine, err := o.tls.listen()
	if err != nil {
		return usagef(err)
	}
	upstreamTLS, err := o.tls.upstream(o.upstream)
	if err != nil {
		return usagef(err)
	}
	status := newStatusLine(stderr)
	rcfg, err := o.redact.config()
	if err != nil {
		return usagef(err)
	}
	rcfg.NoDefaults = rcfg.NoDefaults || o.noDefaultRedaction
	cfg := proxy.RecordConfig{
		Listen: o.listen, AllowRemote: o.allowRemote, Upstream: o.upstream, Output: o.output,
		MaxBody: maxBody, NoBodies: maxBody == 0, RotateSize: rotate, RotateEvery: o.rotateEvery,
		Duration: o.duration, Tool: Version(),
		Redact:   &rcfg,
		Sessions: o.sessions.rules, NoSessions: o.sessions.off,
		ListenTLS: listenTLS, UpstreamTLS: upstreamTLS,
		OnListen: func(addr string) {
			fmt.Fprintf(stderr, "proxy: listening on %s, forwarding to %s, recording to %s\n", addr, o.upstream, o.output)
			if tlsLine != "" {
				fmt.Fprintf(stderr, "proxy: %s\n", tlsLine)
			}
			if o.tls.insecure {
				fmt.Fprintf(stderr, "proxy: %s\n", insecureWarning(o.tls.insecureName))
			}
		},
		Status: func(p proxy.Progress) { status.show(proxyStatusLine(p)) },
	}
	sum, err := proxy.Record(ctx, cfg)
	status.done()
	if sum.Listen == "" { // nothing started
		return err
	}
	if jerr := printSummary(o.asJSON, stdout, stderr, sum, proxySummary); jerr != nil && err == nil {
		err = jerr
	}
	return err
}

func proxyStatusLine(p proxy.Progress) string {
	s := p.Stats
	h2 := ""
	if s.Streams > 0 {
		h2 = fmt.Sprintf("  %d h2 streams", s.Streams)
	}
	return fmt.Sprintf("%6s  %d exchanges  %d open conns%s  %d incomplete  %d dropped  %d bad gateway  %s written",
		p.Elapsed.Round(time.Second), s.Exchanges, s.Open, h2, s.Incomplete, s.Dropped, s.Errors, summary.HumanBytes(p.BytesWritten))
}

func proxySummary(w io.Writer, s proxy.Summary) {
	fmt.Fprintf(w, "recorded %d exchanges from %d connections in %s to %s (%s)\n",
		s.Exchanges, s.Connections, s.Duration.Round(time.Millisecond), strings.Join(s.Files, ", "), summary.HumanBytes(s.BytesWritten))
	fmt.Fprintf(w, "  forwarded %s up, %s down; incomplete %d; answered 502 %d\n",
		summary.HumanBytes(int64(s.BytesUp)), summary.HumanBytes(int64(s.BytesDown)), s.Incomplete, s.BadGateway)
	if len(s.Protocols) > 0 {
		fmt.Fprintf(w, "  connections by protocol: %s", countList(s.Protocols))
		if s.Streams > 0 {
			fmt.Fprintf(w, "; HTTP/2 streams %d", s.Streams)
		}
		fmt.Fprintln(w)
	}
	if s.Dropped > 0 {
		fmt.Fprintf(w, "  WARNING: %d exchanges forwarded but not recorded: the disk could not keep up\n", s.Dropped)
	}
	if len(s.Unsupported) > 0 {
		fmt.Fprintf(w, "  relayed, not recorded: %s\n", countList(s.Unsupported))
	}
	if len(s.TLS) > 0 {
		fmt.Fprintf(w, "  TLS terminated: %s\n", countList(s.TLS))
	}
	if s.Insecure {
		fmt.Fprintf(w, "  %s\n", insecureWarning("insecure"))
	}
	if s.Sessions > 0 {
		fmt.Fprintf(w, "  sessions: %d\n", s.Sessions)
	}
	fmt.Fprint(w, redactionLines(s.Redacted))
}
