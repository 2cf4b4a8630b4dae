package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/session/identity"
)

// proxyOptions are the flags of 'reprise proxy'.
type proxyOptions struct {
	listen, upstream, output string
	maxBody                  string
	rotateSize               string
	rotateEvery, duration    time.Duration
	allowRemote, asJSON      bool
	redactHeaders            []string
	redactCookies            []string
	redactForm, redactJSON   []string
	noDefaultRedaction       bool
	sessions                 []string
	noSessions               bool
}

// addProxy registers 'reprise proxy' on the root command.
func addProxy(root *cobra.Command) {
	o := &proxyOptions{}
	c := &cobra.Command{
		Use:   "proxy --upstream URL -o FILE",
		Short: "Record traffic as a reverse proxy (no privileges needed)",
		Long: `Forward HTTP/1.x traffic to one upstream and record what was forwarded.

The proxy relays bytes as they were sent: header case and order, bodies,
streaming, keep-alive and pipelining are what client and upstream would see
directly; nothing is added. It needs no privileges and works where TLS ends
at the service. WebSocket and other upgrades are tunnelled but not recorded.

It listens on loopback only unless --allow-remote is given. Passwords in login
forms and JSON bodies and Basic credentials are replaced by keyed hashes by
default; name more with the --redact-* flags. The hashing secret is made per
recording and never written, so equal values stay equal in the recording.

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

  # follow sessions by the JSESSIONID cookie rather than the default rules
  reprise proxy --upstream http://127.0.0.1:8080 -o traffic.rpz --session cookie:JSESSIONID

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
	f.StringVar(&o.maxBody, "max-body", "1MiB", "bytes of each body to record (bodies are always forwarded whole); 0 records none")
	f.StringVar(&o.rotateSize, "rotate-size", "", "start a new recording part after this size, e.g. 100MB")
	f.DurationVar(&o.rotateEvery, "rotate-every", 0, "start a new recording part this often, e.g. 1h")
	f.DurationVar(&o.duration, "duration", 0, "stop by itself after this long (default: run until SIGINT/SIGTERM)")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow listening on a non-loopback address")
	f.BoolVar(&o.asJSON, "json", false, "print the summary as JSON on stdout")
	f.StringArrayVar(&o.redactHeaders, "redact-header", nil, "hash this header's value (repeatable); Authorization keeps its scheme")
	f.StringArrayVar(&o.redactCookies, "redact-cookie", nil, "hash this cookie's value in Cookie and Set-Cookie (repeatable)")
	f.StringArrayVar(&o.redactForm, "redact-form-field", nil, "hash this form field in bodies and query strings (repeatable)")
	f.StringArrayVar(&o.redactJSON, "redact-json-field", nil, "hash this JSON member at any depth (repeatable)")
	f.BoolVar(&o.noDefaultRedaction, "no-default-redaction", false, "do not hash passwords and Basic credentials by default")
	f.StringArrayVar(&o.sessions, "session", nil, "session `RULES` tried in order, e.g. cookie:JSESSIONID, bearer, auto (default auto); repeatable")
	f.BoolVar(&o.noSessions, "no-sessions", false, "do not track sessions and tokens")
	root.AddCommand(c)
}

func proxyRun(ctx context.Context, o *proxyOptions, stdout, stderr io.Writer) error {
	if o.upstream == "" {
		return usagef(errors.New("no upstream: give --upstream http://HOST:PORT"))
	}
	if o.output == "" {
		return usagef(errors.New("no output file: give -o FILE"))
	}
	if err := proxy.CheckListen(o.listen, o.allowRemote); err != nil {
		return usagef(err)
	}
	maxBody, err := proxyParseSize(o.maxBody)
	if err != nil {
		return usagef(fmt.Errorf("--max-body: %w", err))
	}
	var rotate int64
	if o.rotateSize != "" {
		if rotate, err = proxyParseSize(o.rotateSize); err != nil {
			return usagef(fmt.Errorf("--rotate-size: %w", err))
		}
	}
	if o.duration < 0 || o.rotateEvery < 0 {
		return usagef(errors.New("--duration and --rotate-every must not be negative"))
	}
	if o.noSessions && len(o.sessions) > 0 {
		return usagef(errors.New("--session and --no-sessions contradict each other"))
	}
	if _, err := identity.ParseRules(o.sessions...); err != nil {
		return usagef(fmt.Errorf("--session: %w", err))
	}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	cfg := proxy.RecordConfig{
		Listen: o.listen, AllowRemote: o.allowRemote, Upstream: o.upstream, Output: o.output,
		MaxBody: maxBody, NoBodies: maxBody == 0, RotateSize: rotate, RotateEvery: o.rotateEvery,
		Duration: o.duration, Tool: Version(),
		Redact: &redact.Config{
			Headers: o.redactHeaders, Cookies: o.redactCookies,
			FormFields: o.redactForm, JSONFields: o.redactJSON,
			NoDefaults: o.noDefaultRedaction,
		},
		Sessions: o.sessions, NoSessions: o.noSessions,
		OnListen: func(addr string) {
			fmt.Fprintf(stderr, "proxy: listening on %s, forwarding to %s, recording to %s\n", addr, o.upstream, o.output)
		},
		Status: func(p proxy.Progress) {
			line := proxyStatusLine(p)
			if tty {
				fmt.Fprintf(stderr, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(stderr, line)
			}
		},
	}
	sum, err := proxy.Record(ctx, cfg)
	if tty {
		fmt.Fprintln(stderr)
	}
	if sum.Listen == "" { // nothing started
		return err
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(sum); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		proxySummary(stderr, sum)
	}
	return err
}

func proxyStatusLine(p proxy.Progress) string {
	s := p.Stats
	return fmt.Sprintf("%6s  %d exchanges  %d open conns  %d incomplete  %d dropped  %d bad gateway  %s written",
		p.Elapsed.Round(time.Second), s.Exchanges, s.Open, s.Incomplete, s.Dropped, s.Errors, proxyBytes(p.BytesWritten))
}

func proxySummary(w io.Writer, s proxy.Summary) {
	fmt.Fprintf(w, "recorded %d exchanges from %d connections in %s to %s (%s)\n",
		s.Exchanges, s.Connections, s.Duration.Round(time.Millisecond), strings.Join(s.Files, ", "), proxyBytes(s.BytesWritten))
	fmt.Fprintf(w, "  forwarded %s up, %s down; incomplete %d; answered 502 %d\n",
		proxyBytes(int64(s.BytesUp)), proxyBytes(int64(s.BytesDown)), s.Incomplete, s.BadGateway)
	if s.Dropped > 0 {
		fmt.Fprintf(w, "  WARNING: %d exchanges forwarded but not recorded: the disk could not keep up\n", s.Dropped)
	}
	if len(s.Unsupported) > 0 {
		var kinds []string
		for k, n := range s.Unsupported {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "  relayed, not recorded: %s\n", strings.Join(kinds, ", "))
	}
	if s.Sessions > 0 {
		fmt.Fprintf(w, "  sessions: %d\n", s.Sessions)
	}
	if len(s.Redacted) > 0 {
		fmt.Fprintf(w, "  redacted: %s\n", strings.Join(s.Redacted, ", "))
	}
}

func proxyBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// proxyParseSize reads "1048576", "64k", "100MB" or "1MiB" (powers of
// 1024 either way, as sizes of files and bodies usually are meant).
func proxyParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q not understood; give bytes or a size such as 64k, 1MiB or 100MB", s)
	}
	return n * mult, nil
}
