package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/session/identity"
)

// sessionsOptions are the flags the session view adds to 'reprise inspect'.
type sessionsOptions struct {
	all       bool
	recompute bool
	rules     []string
	login     []string
	refresh   []string
	logout    []string
	stderr    io.Writer
}

// sessionsOptionsKey carries the flags from the inspect command to
// sessionsView through the command's context.
type sessionsOptionsKey struct{}

// defaultTopSessions is how many sessions the listing shows unless
// --all-sessions is given.
const defaultTopSessions = 20

// addSessionsInspect adds the session view's own flags to 'reprise
// inspect' (registered before it in root.go); the view itself is reached
// through 'reprise inspect --sessions', which calls sessionsView.
func addSessionsInspect(root *cobra.Command) {
	var insp *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "inspect" {
			insp = c
		}
	}
	if insp == nil {
		return
	}
	o := &sessionsOptions{}
	f := insp.Flags()
	f.BoolVar(&o.all, "all-sessions", false, fmt.Sprintf("with --sessions, list every session rather than the %d with the most requests", defaultTopSessions))
	f.BoolVar(&o.recompute, "recompute", false, "with --sessions, recompute sessions from the exchanges even when the recording stores them")
	f.StringSliceVar(&o.rules, "session-rule", nil, "for recomputed sessions (--recompute, or a recording that stores none), session extractors in order: auto, cookie:NAME, header:NAME, bearer, jwt-claim:NAME, query:NAME, connection, client")
	f.StringSliceVar(&o.login, "login-path", nil, "for recomputed sessions, paths (shell patterns) where users log in")
	f.StringSliceVar(&o.refresh, "refresh-path", nil, "for recomputed sessions, paths (shell patterns) where tokens are refreshed")
	f.StringSliceVar(&o.logout, "logout-path", nil, "for recomputed sessions, paths (shell patterns) where users log out")
	insp.Example += `
  reprise inspect traffic.rpz --sessions --all-sessions --json
  reprise inspect old.rpz --sessions --recompute --session-rule cookie:JSESSIONID`
	prev := insp.PreRunE
	insp.PreRunE = func(c *cobra.Command, args []string) error {
		o.stderr = c.ErrOrStderr()
		c.SetContext(context.WithValue(c.Context(), sessionsOptionsKey{}, o))
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// sessionsView prints the session report for 'reprise inspect --sessions'
// over the recordings at paths; a non-empty sessionID shows that one
// session's timeline instead. asJSON prints one JSON document.
func sessionsView(ctx context.Context, w io.Writer, paths []string, sessionID string, asJSON bool) error {
	so, _ := ctx.Value(sessionsOptionsKey{}).(*sessionsOptions)
	if so == nil {
		so = &sessionsOptions{}
	}
	opts := identity.InspectOptions{Session: sessionID, Top: defaultTopSessions, Recompute: so.recompute}
	if so.all {
		opts.Top = -1
	}
	if len(so.rules) > 0 {
		opts.Tracker = append(opts.Tracker, identity.WithRuleText(so.rules...))
	}
	if len(so.login) > 0 {
		opts.Tracker = append(opts.Tracker, identity.WithLoginPaths(so.login...))
	}
	if len(so.refresh) > 0 {
		opts.Tracker = append(opts.Tracker, identity.WithRefreshPaths(so.refresh...))
	}
	if len(so.logout) > 0 {
		opts.Tracker = append(opts.Tracker, identity.WithLogoutPaths(so.logout...))
	}
	if _, err := identity.NewTracker(opts.Tracker...); err != nil {
		return usagef(err)
	}
	if so.stderr != nil {
		opts.Progress = byteProgress(so.stderr, "sessions")
	}
	var res *identity.InspectResult
	var err error
	if importable(paths) { // .gor and HAR, imported on the fly
		res, err = inspectSessionsImport(ctx, paths, opts, so.stderr)
	} else {
		res, err = identity.Inspect(ctx, paths, opts)
	}
	if errors.Is(err, identity.ErrNoSession) {
		return usagef(err)
	}
	if res == nil {
		return err
	}
	var out any = &res.Report
	if res.Detail != nil {
		out = res.Detail
	}
	if asJSON {
		if werr := writeJSON(w, out); werr != nil {
			return werr
		}
	} else if res.Detail != nil {
		if werr := res.Detail.WriteText(w); werr != nil {
			return werr
		}
	} else if werr := res.Report.WriteText(w); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if n := len(res.Damage); n > 0 {
		return fmt.Errorf("%d damaged region(s) skipped, first %v: the figures above leave out their exchanges", n, res.Damage[0])
	}
	return nil
}
