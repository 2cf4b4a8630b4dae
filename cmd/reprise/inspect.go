package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/summary"
)

type inspectOptions struct {
	paths     []string
	asJSON    bool
	top       int
	sessions  bool
	sessionID string
	quick     bool
}

// addInspect registers 'reprise inspect'.
func addInspect(root *cobra.Command) {
	var o inspectOptions
	c := &cobra.Command{
		Use:   "inspect FILE...",
		Short: "Summarise recordings: traffic, routes, sessions, and what was lost or damaged",
		Long: `Inspect reads one or more recordings (files or glob patterns; parts of a
rotated recording are merged in time order) and prints what they hold: the
time span, requests per second over time, methods, the busiest routes with
their median latency, statuses, sessions and token events, the TLS
connections decrypted and, by server name, those the capture had no keys
for (bring their key log: --keylog FILE, as SSLKEYLOGFILE writes it), and
everything dropped, truncated, incomplete or damaged.

GoReplay .gor and HAR files (gzip'd or not) are summarised the same way,
imported on the fly without writing a recording.

A damaged file is read past the damage; inspect prints what it recovered
and exits with status 1.`,
		Example: `  reprise inspect traffic.rpz
  reprise inspect 'traffic.*.rpz' --top 20
  reprise inspect traffic.rpz --json | jq .routes
  reprise inspect goreplay.gor session.har
  reprise inspect big.rpz --quick
  reprise inspect traffic.rpz --sessions
  reprise inspect traffic.rpz --session user-42`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.paths = args
			return inspectRun(c, &o)
		},
	}
	f := c.Flags()
	f.BoolVar(&o.asJSON, "json", false, "print one JSON document (field names in session/FORMAT.md)")
	f.IntVar(&o.top, "top", 10, "how many routes to list")
	f.BoolVar(&o.quick, "quick", false, "summarise from the files' trailer indexes only (no routes or latencies; falls back to a full read for a file without one)")
	f.BoolVar(&o.sessions, "sessions", false, "show the sessions and their token timelines instead")
	f.StringVar(&o.sessionID, "session", "", "show one session's timeline (by session key)")
	root.AddCommand(c)
}

func inspectRun(c *cobra.Command, o *inspectOptions) error {
	if o.top < 1 {
		return usagef(fmt.Errorf("--top %d: give at least 1", o.top))
	}
	out, errw := c.OutOrStdout(), c.ErrOrStderr()
	if o.sessions || o.sessionID != "" {
		return sessionsView(c.Context(), out, o.paths, o.sessionID, o.asJSON)
	}
	warnClearSecrets(errw, o.paths)
	opt := summary.Options{TopRoutes: o.top, Progress: byteProgress(errw, "reading")}
	var s *summary.Summary
	var h2 *http2.Summary
	var err error
	if importable(o.paths) {
		s, h2, err = inspectImport(c.Context(), o.paths, opt)
	} else {
		s, h2, err = inspectRecordings(c.Context(), o, opt, errw)
	}
	if s == nil {
		return err
	}
	if werr := writeInspect(c.Context(), out, errw, s, h2, o); werr != nil {
		return werr
	}
	if errors.Is(err, summary.ErrDamaged) {
		return fmt.Errorf("%w: the summary covers what was recovered", err)
	}
	return err
}

// inspectRecordings summarises recording files, from their trailer
// indexes alone with --quick.
func inspectRecordings(ctx context.Context, o *inspectOptions, opt summary.Options, errw io.Writer) (*summary.Summary, *http2.Summary, error) {
	var s *summary.Summary
	var err error
	if o.quick {
		s, err = summary.Quick(o.paths, opt)
		if errors.Is(err, session.ErrNoIndex) {
			fmt.Fprintf(errw, "reprise: %v; reading in full\n", err)
			s = nil
		}
	}
	if s == nil {
		s, err = summary.Files(ctx, o.paths, opt)
	}
	if s == nil {
		return nil, nil, err
	}
	// HTTP/2 and gRPC figures come from a second read (not with --quick):
	// session/summary has no per-exchange hook to add them in its pass.
	var h2 *http2.Summary
	if !o.quick {
		f, herr := http2.SummarizeFiles(ctx, o.paths...)
		if herr != nil && err == nil {
			err = herr
		}
		if f.HasHTTP2() {
			h2 = &f
		}
	}
	return s, h2, err
}
