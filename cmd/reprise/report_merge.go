package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/replay"
)

// mergeOptions are the flags of 'reprise report merge'.
type mergeOptions struct {
	paths  []string
	out    string
	html   string
	stdout io.Writer
	stderr io.Writer
}

// newCmdReportMerge builds 'reprise report merge'; runF, when not nil,
// replaces mergeRun (for tests of the flags).
func newCmdReportMerge(runF func(*mergeOptions) error) *cobra.Command {
	o := &mergeOptions{}
	c := &cobra.Command{
		Use:   "merge SHARD.json|PODS.log... -o RUN.json [--html RUN.html]",
		Short: "Merge the reports of a replay's shards (--shard K/N) into the report of the whole run",
		Long: `Read the run reports of the N shards of one replay ('reprise replay --shard K/N
--report shard-K.json') and write the whole run's report: counts are the
shards' sums, latency percentiles those of one histogram fed every sample
(the reports carry their full HDR histograms), per-second series are added
by wall second. Per-second percentiles on the page are the highest shard's.

The reports must be of one recording (its sha256 and format version), one
report version, one target, speed and scale, and hold every shard K of N
exactly once; otherwise nothing is written and the error names the report.

A file may also be the shards' logs ('reprise replay --report -' prints its
report between marker lines, as 'reprise k8s job' pods do):

  kubectl logs -l job-name=reprise-replay --tail=-1 --max-log-requests 64 > shards.log
  reprise report merge shards.log -o run.json`,
		Example: `  # four shards, then one report
  reprise report merge shard-*.json -o run.json --html run.html`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.paths, o.stdout, o.stderr = args, c.OutOrStdout(), c.ErrOrStderr()
			if o.out == "" {
				return usagef(errors.New("no output: give -o run.json"))
			}
			if runF != nil {
				return runF(o)
			}
			return mergeRun(o)
		},
	}
	c.Flags().StringVarP(&o.out, "output", "o", "", "write the merged report (JSON) to this file (required)")
	c.Flags().StringVar(&o.html, "html", "", "also write the merged report's page to this file")
	return c
}

// mergeRun reads the shards' reports, merges them and writes the result.
func mergeRun(o *mergeOptions) error {
	var reps []*replay.Report
	var names []string
	for _, p := range o.paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rs, ns, err := readReports(p, data)
		if err != nil {
			return err
		}
		reps, names = append(reps, rs...), append(names, ns...)
	}
	m, err := replay.MergeReports(reps...)
	var me *replay.MergeError
	if errors.As(err, &me) && me.Index >= 0 && me.Index < len(names) {
		return fmt.Errorf("%s: %w", names[me.Index], err)
	}
	if err != nil {
		return err
	}
	f, err := os.Create(o.out)
	if err != nil {
		return err
	}
	if err := m.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", o.out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if o.html != "" {
		if err := writeHTML(o.html, m); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.stderr, "report: merged %d shards into %s\n", len(reps), o.out)
	return m.WriteSummary(o.stdout)
}
