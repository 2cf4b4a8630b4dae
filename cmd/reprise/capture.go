package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/live"
	"github.com/reprise-tool/reprise/capture/pcapfile"
	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
	"github.com/reprise-tool/reprise/session"
)

// addCapture registers 'reprise capture'.
func addCapture(root *cobra.Command) {
	root.AddCommand(newCaptureCmd(nil))
}

// captureOptions is what the flags of 'reprise capture' fill.
type captureOptions struct {
	pcaps       []string
	keylogs     []string
	iface       string
	filter      string
	ports       []int
	hosts       []string
	output      string
	rotateSize  string
	rotateEvery time.Duration
	maxBody     string
	duration    time.Duration
	count       int64
	json        bool
	idle        time.Duration
	compression int
	sessions    sessionFlags
	redact      redactFlags

	stdout, stderr io.Writer
}

// newCaptureCmd builds the command; runF replaces captureRun in tests.
func newCaptureCmd(runF func(context.Context, *captureOptions) error) *cobra.Command {
	o := &captureOptions{}
	cmd := &cobra.Command{
		Use:   "capture (--pcap FILE | --iface NAME) -o FILE",
		Short: "Record HTTP/1.x and HTTP/2 (h2c, gRPC) traffic from pcap files or an interface",
		Long: `Capture turns packets into a recording: TCP is reassembled, HTTP/1.0 and 1.1
are parsed, HTTP/2 (prior knowledge or an h2c upgrade) is decoded stream by
stream with its gRPC messages, and every exchange is written with its four
packet timestamps. HTTP/2 streams a capture that began mid-connection cannot
decode are counted with the reason. TLS, WebSocket and CONNECT traffic is
counted, never written.

A status line on stderr shows packets, exchanges, incomplete exchanges,
kernel drops and bytes written once a second; a summary follows at the end
(--json prints it as JSON on stdout). Ctrl-C or SIGTERM stops the capture:
exchanges in progress are flushed, flagged incomplete, and the recording is
closed cleanly.

Each exchange is given its session (--session rules, default auto: session
cookies, bearer tokens) and the tokens it issued or refreshed; a timeline
per session is stored in the recording.

Every credential (authorization headers, API keys, cookies, token and
password fields, JWTs anywhere) is replaced by a keyed hash by default; name
more with the --redact-* flags, or keep them in clear with --keep-secrets.`,
		Example: `  # import tcpdump files (plain or .gz, globs allowed) for port 8080
  reprise capture --pcap 'traffic-*.pcap.gz' --port 8080 -o traffic.rpz

  # capture live on lo for a minute, hashing the session cookie
  sudo reprise capture --iface lo --port 8080 --duration 1m --redact-cookie SESSIONID -o shop.rpz

  # rotate the recording every 100 MB, print the summary as JSON
  reprise capture --pcap big.pcapng -o big.rpz --rotate-size 100MB --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.stdout, o.stderr = c.OutOrStdout(), c.ErrOrStderr()
			if runF != nil {
				return runF(c.Context(), o)
			}
			return captureRun(c.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.pcaps, "pcap", nil, "read packets from a pcap or pcapng `FILE` (gzip too); repeatable, globs allowed")
	f.StringArrayVar(&o.keylogs, "keylog", nil, "decrypt TLS with the session secrets in NSS key log `FILE` (as SSLKEYLOGFILE writes it); repeatable; with --iface it is re-read as it grows")
	f.StringVar(&o.iface, "iface", "", "capture live on interface `NAME` (Linux, needs root or CAP_NET_RAW)")
	f.StringVar(&o.filter, "filter", "", "raw filter `EXPR` in tcpdump syntax for --iface (builds with -tags pcap only)")
	f.IntSliceVar(&o.ports, "port", nil, "keep only TCP `PORT` (the server side); repeatable")
	f.StringArrayVar(&o.hosts, "host", nil, "keep only traffic to or from `ADDR`; repeatable")
	f.StringVarP(&o.output, "output", "o", "", "write the recording to `FILE` (required)")
	f.StringVar(&o.rotateSize, "rotate-size", "", "start a new part every `SIZE` (e.g. 100MB); parts are FILE's stem plus .0001, .0002, ...")
	f.DurationVar(&o.rotateEvery, "rotate-every", 0, "start a new part every `DURATION`")
	f.StringVar(&o.maxBody, "max-body", "1MiB", "keep at most `SIZE` of each body (0: headers only; max 16MiB)")
	f.DurationVar(&o.duration, "duration", 0, "stop after `DURATION` (0: until the input ends or Ctrl-C)")
	f.Int64Var(&o.count, "count", 0, "stop after `N` exchanges (0: no limit)")
	addJSONFlag(f, &o.json)
	f.IntVar(&o.compression, "compression", 1, "zstd `LEVEL`: 1 fastest (keeps up with busy links), 2 default, 3 better, 4 best")
	f.DurationVar(&o.idle, "idle-timeout", capture.DefaultIdleTimeout, "close connections silent for `DURATION` (packet time)")
	o.sessions.add(f, true)
	o.redact.add(f, "", true)
	return cmd
}

// captureSummary is the end-of-run report (--json prints it as is).
type captureSummary struct {
	Source string   `json:"source"`
	Filter string   `json:"filter,omitempty"`
	Files  []string `json:"files"`
	recordedSummary
	Error string `json:"error,omitempty"`
}

func captureRun(ctx context.Context, o *captureOptions) error {
	plan, err := o.plan(ctx)
	if err != nil {
		return usagef(err)
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if plan.keys != nil {
		if st := plan.keys.Stats(); st.Bad > 0 {
			fmt.Fprintf(o.stderr, "key log: skipped %d unusable lines (first: %s)\n", st.Bad, st.FirstBad[0])
		}
	}
	src, meta, err := o.open(ctx, plan)
	if err != nil {
		return err
	}
	defer src.Close()
	p, err := capture.FromPackets(ctx, src, plan.pipeline...)
	if err != nil {
		return usagef(err)
	}
	var fw *session.FileWriter
	status := newStatusLine(o.stderr)
	rec, err := capture.NewRecorder(append(plan.record, capture.WithMetadata(meta),
		capture.WithProgress(time.Second, func(c session.Counters) { status.show(captureStatusLine(c, fw)) }))...)
	if err != nil {
		return usagef(err)
	}
	if fw, err = session.Create(o.output, rec.Metadata(), plan.writer...); err != nil {
		return err
	}
	began := time.Now()
	res, err := rec.Record(ctx, p, fw)
	status.done()
	files := fw.Paths()
	sum := captureSummary{Source: meta.Source, Filter: meta.Filter, Files: files, recordedSummary: newRecordedSummary(res, files, began)}
	if err != nil {
		sum.Error = err.Error()
	}
	if o.json {
		if jerr := writeJSON(o.stdout, sum); jerr != nil {
			return jerr
		}
	} else {
		printCaptureSummary(o.stderr, sum)
		for _, e := range p.TLSErrors() {
			fmt.Fprintf(o.stderr, "  %v\n", e)
		}
	}
	return err
}

// capturePlan is what the flags of 'reprise capture' ask of the
// libraries, checked before any packet is read.
type capturePlan struct {
	hosts    []netip.Addr
	ports    []uint16
	maxBody  int64
	keys     *tlsdecrypt.KeyLog // nil without --keylog or pcapng secrets
	pipeline []capture.Option
	record   []capture.RecordOption
	writer   []session.WriterOption
}

// plan checks the flags and turns them into library options. Its errors
// are command-line mistakes.
func (o *captureOptions) plan(ctx context.Context) (capturePlan, error) {
	var pl capturePlan
	switch {
	case (len(o.pcaps) == 0) == (o.iface == ""):
		return pl, errors.New("give --pcap FILE or --iface NAME (one of them)")
	case o.output == "":
		return pl, errors.New("give -o FILE for the recording")
	case o.filter != "" && o.iface == "":
		return pl, errors.New("--filter applies to --iface; use --port and --host with --pcap")
	case o.filter != "" && (len(o.ports) > 0 || len(o.hosts) > 0):
		return pl, errors.New("give either --filter or --port/--host, not both")
	case o.count < 0 || o.duration < 0:
		return pl, errors.New("--count and --duration must not be negative")
	case o.compression < 1 || o.compression > 4:
		return pl, fmt.Errorf("--compression %d: give 1 (fastest) to 4 (best)", o.compression)
	}
	maxBody, err := parseSize(o.maxBody)
	if err != nil || maxBody > session.MaxBodyCap {
		return pl, fmt.Errorf("--max-body %q: give a size from 0 to 16MiB, such as 64KiB or 1MiB", o.maxBody)
	}
	pl.maxBody = maxBody
	pl.writer = []session.WriterOption{session.BodyCap(int(maxBody)), session.Compression(o.compression)}
	if o.iface != "" {
		// Live traffic may be slow: write what was captured every second so
		// a crash loses at most that.
		pl.writer = append(pl.writer, session.FlushInterval(session.LiveFlushInterval))
	}
	if o.rotateSize != "" {
		n, err := parseSize(o.rotateSize)
		if err != nil {
			return pl, fmt.Errorf("--rotate-size %q: give a size such as 100MB", o.rotateSize)
		}
		pl.writer = append(pl.writer, session.RotateSize(n))
	}
	if o.rotateEvery > 0 {
		pl.writer = append(pl.writer, session.RotateEvery(o.rotateEvery))
	}
	for _, p := range o.ports {
		if p <= 0 || p > 65535 {
			return pl, fmt.Errorf("--port %d: give a port from 1 to 65535", p)
		}
		pl.ports = append(pl.ports, uint16(p))
	}
	if pl.hosts, err = captureHosts(ctx, o.hosts); err != nil {
		return pl, err
	}
	rd, err := o.redact.redactor()
	if err != nil {
		return pl, err
	}
	if pl.record, err = recordOptions(rd, o.sessions); err != nil {
		return pl, err
	}
	pl.record = append(pl.record, capture.WithLimit(o.count))
	pl.pipeline = []capture.Option{
		capture.WithMaxBody(maxBody),
		capture.WithIdleTimeout(o.idle),
		capture.WithPorts(o.ports...),
		capture.WithHosts(pl.hosts...),
		// Redaction scans bodies: spread it over the cores.
		capture.WithHookWorkers(runtime.GOMAXPROCS(0)),
	}
	if pl.keys, err = o.keyLog(); err != nil {
		return pl, err
	}
	if pl.keys != nil {
		pl.pipeline = append(pl.pipeline, capture.WithKeyLog(pl.keys))
		if o.iface != "" {
			// Clients write their key log a little after the handshake.
			pl.pipeline = append(pl.pipeline, capture.WithKeyLogWait(captureKeyLogWait))
		}
	}
	return pl, nil
}

// captureKeyLogWait bounds the TLS bytes a live connection holds while its
// secrets are not in the key log yet.
const captureKeyLogWait = 1 << 20

// keyLog reads the --keylog files and the Decryption Secrets Blocks of
// pcapng files; nil when there are none.
func (o *captureOptions) keyLog() (*tlsdecrypt.KeyLog, error) {
	k := tlsdecrypt.NewKeyLog()
	found := len(o.keylogs) > 0
	for _, p := range o.keylogs {
		add := k.AddFile
		if o.iface != "" {
			add = k.Follow // the client may create it after the capture starts
		}
		if err := add(p); err != nil {
			return nil, fmt.Errorf("--keylog %q: %w; give the file SSLKEYLOGFILE or tls.Config.KeyLogWriter wrote", p, err)
		}
	}
	names, _ := pcapfile.Files(o.pcaps...)
	for _, name := range names {
		// A damaged pcapng is reported by the packet reader, with its offset.
		n, _ := k.AddPcapngFile(name)
		found = found || n > 0
	}
	if !found {
		return nil, nil
	}
	return k, nil
}

// open opens the packet source the flags name and says, in the
// recording's metadata, where its traffic comes from.
func (o *captureOptions) open(ctx context.Context, pl capturePlan) (interface {
	capture.PacketSource
	Close() error
}, session.Metadata, error) {
	meta := session.Metadata{Tool: Version(), MaxBody: pl.maxBody}
	if o.iface != "" {
		ls, err := live.Open(ctx, live.Config{Interface: o.iface, Hosts: pl.hosts, Expr: o.filter, Ports: pl.ports})
		if err != nil {
			return nil, meta, err
		}
		meta.Source, meta.Filter = "iface:"+o.iface, ls.Filter()
		return ls, meta, nil
	}
	ps, err := pcapfile.Open(o.pcaps...)
	if err != nil {
		return nil, meta, err
	}
	names, _ := pcapfile.Files(o.pcaps...)
	meta.Source, meta.Filter = "pcap:"+strings.Join(names, ","), captureFilterString(o.ports, pl.hosts)
	return ps, meta, nil
}

// captureHosts parses --host values: addresses, or names resolved now.
func captureHosts(ctx context.Context, in []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, h := range in {
		if a, err := netip.ParseAddr(h); err == nil {
			out = append(out, a)
			continue
		}
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", h)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("--host %q: not an address and not a name that resolves; give an IP such as 10.0.0.5", h)
		}
		out = append(out, addrs...)
	}
	return out, nil
}

func captureFilterString(ports []int, hosts []netip.Addr) string {
	var parts []string
	for _, p := range ports {
		parts = append(parts, "port "+strconv.Itoa(p))
	}
	for _, h := range hosts {
		parts = append(parts, "host "+h.String())
	}
	return strings.Join(parts, " or ")
}

func captureBytes(paths []string) int64 {
	var n int64
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// captureStatusLine is the once-a-second status line.
func captureStatusLine(c session.Counters, fw *session.FileWriter) string {
	return fmt.Sprintf("capture: %s packets, %s exchanges, %s incomplete, %s kernel drops, %.1f MB written",
		captureNum(c.PacketsSeen), captureNum(c.Exchanges), captureNum(c.Incomplete), captureNum(c.PacketsDropped),
		float64(captureBytes(fw.Paths()))/1e6)
}

func printCaptureSummary(w io.Writer, s captureSummary) {
	c := s.Counters
	fmt.Fprintf(w, "captured %s exchanges (%s incomplete) on %s connections from %s packets in %.1fs\n",
		captureNum(c.Exchanges), captureNum(c.Incomplete), captureNum(c.Connections), captureNum(c.PacketsSeen), s.Seconds)
	fmt.Fprintf(w, "  lost: %s dropped by the kernel, %s malformed; %s duplicates counted once\n",
		captureNum(c.PacketsDropped), captureNum(c.PacketsMalformed), captureNum(c.PacketsDuplicate))
	if len(c.Unsupported) > 0 {
		var kinds []string
		for k, v := range c.Unsupported {
			kinds = append(kinds, fmt.Sprintf("%s %s", k, captureNum(v)))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "  not recorded: %s\n", strings.Join(kinds, ", "))
	}
	if len(c.TLS) > 0 {
		fmt.Fprintf(w, "  decrypted TLS: %s\n", countList(c.TLS))
	}
	s.printTail(w, s.Files)
}

// captureNum formats n with thousands separators.
func captureNum(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
