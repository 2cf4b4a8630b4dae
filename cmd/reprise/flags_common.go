package main

// Flags and output helpers shared by the verbs that record or mirror
// traffic (capture, proxy, shadow) and by those that read recordings
// (inspect, sessions inspect). Each shared flag's name, help text and
// validation is written here once, so the verbs cannot drift apart.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// The libraries' flag values implement the standard library's flag.Value
// plus Type; pflag is the CLI's choice, so the CLI is where that is checked.
var (
	_ pflag.Value = (*ramp.Flag)(nil)
	_ pflag.Value = (*ramp.Mode)(nil)
	_ pflag.Value = (*ramp.Rate)(nil)
	_ pflag.Value = (*guard.Flag)(nil)
)

// redactFlags are the --redact-* flags: what to hash besides what
// redaction covers by default (everything that authenticates), the key
// file that makes hashes stable across recordings, and --keep-secrets.
type redactFlags struct {
	headers, cookies, form, json []string
	keyFile                      string
	keepSecrets                  bool
}

// add registers the flags on f. scope starts each help text (e.g. "with
// -o: " where only a recording is redacted); form adds --redact-form-field.
func (r *redactFlags) add(f *pflag.FlagSet, scope string, form bool) {
	f.StringArrayVar(&r.headers, "redact-header", nil, scope+"hash the values of header `NAME` too (Authorization keeps its scheme); repeatable")
	f.StringArrayVar(&r.cookies, "redact-cookie", nil, scope+"hash the values of cookie `NAME` (every cookie is hashed by default; this one even with --keep-secrets); repeatable")
	if form {
		f.StringArrayVar(&r.form, "redact-form-field", nil, scope+"hash form field `NAME` in bodies and query strings too; repeatable")
	}
	f.StringArrayVar(&r.json, "redact-json-field", nil, scope+"hash JSON member `NAME` at any depth too; repeatable")
	f.StringVar(&r.keyFile, "redact-key-file", "", scope+"key the hashes with the secret in `FILE` (at least 16 bytes), so equal values hash equal across recordings; default a fresh secret per recording, never written")
	f.BoolVar(&r.keepSecrets, "keep-secrets", false, scope+"DANGEROUS: keep tokens, cookies, API keys and passwords in clear (only the --redact-* names are hashed); the recording says so")
}

// config is the redaction the flags ask for. Its errors are about the key
// file.
func (r *redactFlags) config() (redact.Config, error) {
	cfg := redact.Config{Headers: r.headers, Cookies: r.cookies, FormFields: r.form, JSONFields: r.json, NoDefaults: r.keepSecrets}
	if r.keyFile != "" {
		key, err := readRedactKey(r.keyFile)
		if err != nil {
			return cfg, err
		}
		cfg.Secret = key
	}
	return cfg, nil
}

// redactor is redact.New(config()).
func (r *redactFlags) redactor() (*redact.Redactor, error) {
	cfg, err := r.config()
	if err != nil {
		return nil, err
	}
	return redact.New(cfg)
}

// recordOptions are the redaction (with rd) and session tracking a
// recording verb's flags ask of capture.Record. Its errors are
// command-line mistakes.
func recordOptions(rd *redact.Redactor, s sessionFlags) ([]capture.RecordOption, error) {
	iopts, err := s.options()
	if err != nil {
		return nil, err
	}
	opts := []capture.RecordOption{capture.WithRedactor(rd)}
	if !s.off {
		opts = append(opts, capture.WithSessions(iopts...))
	}
	return opts, nil
}

// sessionFlags are --session (the rules that key sessions) and, on the
// verbs that record, --no-sessions.
type sessionFlags struct {
	rules []string
	off   bool
}

// add registers --session on f, and --no-sessions if canTurnOff.
func (s *sessionFlags) add(f *pflag.FlagSet, canTurnOff bool) {
	f.StringArrayVar(&s.rules, "session", nil, "session `RULES` tried in order, e.g. cookie:JSESSIONID, bearer, auto (default auto); repeatable")
	if canTurnOff {
		f.BoolVar(&s.off, "no-sessions", false, "do not track sessions and tokens")
	}
}

// options checks the flags and returns the tracker options they ask for
// (none for the default rules). Its errors are command-line mistakes.
func (s *sessionFlags) options() ([]identity.Option, error) {
	if s.off && len(s.rules) > 0 {
		return nil, errors.New("--session and --no-sessions contradict each other")
	}
	if len(s.rules) == 0 {
		return nil, nil
	}
	if _, err := identity.ParseRules(s.rules...); err != nil {
		return nil, fmt.Errorf("--session: %w", err)
	}
	return []identity.Option{identity.WithRuleText(s.rules...)}, nil
}

// addSessionKeysFlag registers --session-keys, where a replay's sessions
// come from. Replay, its dry run and check read it alike and hand it to
// session.SessionKeys.Resolve, so check predicts the sessions replay plays.
func addSessionKeysFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "session-keys", string(session.KeysAuto), "auto (recorded if the recording has them, else recompute), recorded, recompute, or connection")
}

// parseSessionKeys checks --session-keys; its error is a command-line
// mistake.
func parseSessionKeys(s string) (session.SessionKeys, error) {
	k, err := session.ParseSessionKeys(s)
	if err != nil {
		return "", fmt.Errorf("--session-keys: %w", err)
	}
	return k, nil
}

// addJSONFlag registers --json, which prints a verb's summary as JSON on
// stdout for scripts.
func addJSONFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVar(p, "json", false, "print the summary as JSON on stdout")
}

// writeJSON prints v indented, as every --json summary is.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printSummary prints a recording verb's summary: as JSON on stdout with
// --json, for scripts, else as text on stderr, which is where a person
// watching the command looks.
func printSummary[S any](asJSON bool, stdout, stderr io.Writer, sum S, text func(io.Writer, S)) error {
	if asJSON {
		return writeJSON(stdout, sum)
	}
	text(stderr, sum)
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// statusLine prints a long job's once-a-second status line: rewritten in
// place on a terminal, one whole line each time otherwise, so logs read
// as lines.
type statusLine struct {
	w     io.Writer
	tty   bool
	shown atomic.Bool // show may run on the job's goroutine, done on the caller's
}

func newStatusLine(w io.Writer) *statusLine {
	return &statusLine{w: w, tty: isTerminal(w)}
}

// show prints line as the current status.
func (s *statusLine) show(line string) {
	if s.tty {
		fmt.Fprintf(s.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(s.w, line)
	}
	s.shown.Store(true)
}

// done ends a status line left on a terminal, so what follows starts on a
// line of its own.
func (s *statusLine) done() {
	if s.tty && s.shown.Load() {
		fmt.Fprintln(s.w)
	}
}

// byteProgress returns a progress callback that draws a bar labelled
// label on w for recordings large enough to take a while, or nil when w
// is not a terminal, so scripts and logs stay clean. A pass that starts
// over (a recompute reads a recording twice) gets a new bar.
func byteProgress(w io.Writer, label string) func(done, total int64) {
	if !isTerminal(w) {
		return nil
	}
	var bar *progressbar.ProgressBar
	return func(done, total int64) {
		if total < 64<<20 {
			return
		}
		if bar == nil || done < bar.State().CurrentNum {
			bar = progressbar.DefaultBytes(total, label)
		}
		bar.Set64(done) //nolint:errcheck // drawing only
		if done >= total {
			bar.Finish() //nolint:errcheck
			fmt.Fprintln(w)
		}
	}
}

// recordedSummary is what capture's and import's summaries say alike of
// the recording capture.Record wrote. Embedded, its fields keep their
// place in each summary's JSON.
type recordedSummary struct {
	BytesWritten int64            `json:"bytes_written"`
	Seconds      float64          `json:"seconds"`
	LimitReached bool             `json:"limit_reached,omitempty"`
	Sessions     uint64           `json:"sessions,omitempty"`
	Redaction    []string         `json:"redaction,omitempty"`
	Counters     session.Counters `json:"counters"`
}

// newRecordedSummary sums up res, a recording into files that began then.
func newRecordedSummary(res capture.RecordResult, files []string, began time.Time) recordedSummary {
	s := recordedSummary{BytesWritten: captureBytes(files), Seconds: time.Since(began).Seconds(),
		LimitReached: res.LimitReached, Sessions: res.Sessions, Redaction: res.Redacted, Counters: res.Counters}
	s.Counters.BytesWritten = uint64(s.BytesWritten)
	return s
}

// printTail prints the lines capture's and import's summaries end with:
// the sessions found, what was redacted, a stop at --count and files.
func (s *recordedSummary) printTail(w io.Writer, files []string) {
	if s.Sessions > 0 {
		fmt.Fprintf(w, "  sessions: %s\n", captureNum(s.Sessions))
	}
	fmt.Fprint(w, redactionLines(s.Redaction))
	if s.LimitReached {
		fmt.Fprintln(w, "  stopped at --count")
	}
	fmt.Fprintf(w, "  wrote %s (%.1f MB)\n", strings.Join(files, ", "), float64(s.BytesWritten)/1e6)
}

// countList writes counts by kind as "kind n, kind n", sorted by kind.
func countList(m map[string]uint64) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// parseSize reads a size for --max-body and --rotate-size: plain bytes
// ("1048576"), powers of 1024 ("64k", "64KiB", "1M", "1MiB", "1GiB") or
// powers of 1000 ("100KB", "100MB", "1GB"), as the unit says. Every verb
// reads sizes through it, so one flag value means the same everywhere.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q not understood; give bytes or a size such as 64k, 1MiB or 100MB", s)
	}
	return n * mult, nil
}
