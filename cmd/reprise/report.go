package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/replay"
)

// reportOptions are the flags of 'reprise report'.
type reportOptions struct {
	html string
}

// addReport registers 'reprise report' on the root command.
func addReport(root *cobra.Command) {
	o := &reportOptions{}
	c := &cobra.Command{
		Use:   "report RUN.json --html OUT.html",
		Short: "Draw a saved replay report (--report run.json) as a self-contained HTML page",
		Long: `Read a run report written by 'reprise replay --report run.json' and write the
same page 'reprise replay --html' writes: requests per second intended and
achieved, latency percentiles over time, errors over time, the ramp stages and
the abort point marked, the summary and per-route tables. The page has no
script and no external URL: it opens offline.

Without --html the report's summary is printed on stdout.`,
		Example: `  reprise replay traffic.rpz --target http://127.0.0.1:8089 --report run.json
  reprise report run.json --html run.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := replay.ReadReport(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if o.html == "" {
				return rep.WriteSummary(c.OutOrStdout())
			}
			if len(rep.Series) == 0 && rep.Requests.Sent > 0 {
				return errors.New(args[0] + ": the report has no per-second series (written by an older reprise): the page would be empty")
			}
			if err := writeHTML(o.html, rep); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "report: wrote %s\n", o.html)
			return nil
		},
	}
	c.Flags().StringVar(&o.html, "html", "", "write the page to this file")
	c.AddCommand(newCmdReportMerge(nil))
	root.AddCommand(c)
}
