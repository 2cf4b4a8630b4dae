package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/fixtures/demo"
)

// addDemo registers 'reprise demo'.
func addDemo(root *cobra.Command) {
	root.AddCommand(newDemoCmd(nil))
}

// demoOptions is what the flags of 'reprise demo' fill.
type demoOptions struct {
	users    int
	duration time.Duration
	short    bool
	long     bool
	dir      string
	json     bool
	noLive   bool
	seed     uint64

	stdout, stderr io.Writer
}

// Presets of --short and --long.
const (
	demoShortUsers    = 16
	demoShortDuration = 12 * time.Second
	demoLongUsers     = 150
	demoLongDuration  = 90 * time.Second
)

// newDemoCmd builds the command; runF replaces demoRun in tests.
func newDemoCmd(runF func(context.Context, *demoOptions) error) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show the whole job on loopback in half a minute: record, inspect, check, replay",
		Long: `Demo runs Reprise's whole job against a built-in shop on 127.0.0.1, with
nothing to install and nothing sent off this machine:

  1. start the shop (logins, short-lived tokens, refresh rotation, a cart)
     and record its simulated users: live on lo when this process may open
     a raw socket (root or CAP_NET_RAW on Linux), otherwise through the
     recording proxy;
  2. show the sessions found in the recording (inspect --sessions);
  3. check the replay plan (check);
  4. replay the recording with a ramp of 1x, 5x and 10x, capped and under
     the default guards, against a fresh shop, with progress on stderr;
  5. show the fresh shop's violation counters per stage (zero when every
     session kept its order and its live tokens), the realism verdict
     (check --run) and the HTML report;
  6. end with the same commands for your own service.

The files go to a temporary directory removed at the end unless --dir is
given. Ctrl-C stops the demo and cleans up. Exit code 0 when the demo ran
through, 3 when a guard stopped the replay, 1 on any other failure.`,
		Example: `  # the default demo (about 30 seconds)
  reprise demo

  # a quick one, keeping the recording, run report and HTML page
  reprise demo --short --dir ./demo-out

  # record through the proxy even as root; print one JSON document
  reprise demo --no-live --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.stdout, o.stderr = c.OutOrStdout(), c.ErrOrStderr()
			if runF != nil {
				return runF(c.Context(), o)
			}
			return demoRun(c.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.users, "users", 0, fmt.Sprintf("simulated `N` users (default 40; 1 to %d)", demo.MaxUsers))
	f.DurationVar(&o.duration, "duration", 0, "bound the recording to `DURATION` (default 30s; 2s to 5m)")
	f.BoolVar(&o.short, "short", false, fmt.Sprintf("a quick demo: %d users, %v", demoShortUsers, demoShortDuration))
	f.BoolVar(&o.long, "long", false, fmt.Sprintf("a longer demo: %d users, %v", demoLongUsers, demoLongDuration))
	f.StringVar(&o.dir, "dir", "", "keep the recording, run report and HTML page in `DIR`")
	f.BoolVar(&o.json, "json", false, "print one JSON document on stdout instead of the story")
	f.BoolVar(&o.noLive, "no-live", false, "record through the proxy even where live capture is permitted")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the users' plans")
	return cmd
}

func demoRun(ctx context.Context, o *demoOptions) error {
	if o.short && o.long {
		return usagef(errors.New("give --short or --long, not both"))
	}
	cfg := demo.Config{Users: o.users, Duration: o.duration, Dir: o.dir, NoLive: o.noLive, Seed: o.seed, Progress: o.stderr, Tool: Version()}
	if o.short {
		cfg.Users, cfg.Duration = demoShortUsers, demoShortDuration
	}
	if o.long {
		cfg.Users, cfg.Duration = demoLongUsers, demoLongDuration
	}
	// Explicit --users and --duration win over the presets.
	if o.users != 0 {
		cfg.Users = o.users
	}
	if o.duration != 0 {
		cfg.Duration = o.duration
	}
	if !o.json {
		cfg.Story = o.stdout
	}
	res, err := demo.Run(ctx, cfg)
	if errors.Is(err, demo.ErrConfig) {
		return usagef(err)
	}
	if o.json && res != nil {
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return errors.Join(err, jerr)
		}
	}
	return err
}
