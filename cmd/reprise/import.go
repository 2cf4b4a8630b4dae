package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/capture"
	"github.com/reprise-tool/reprise/capture/importer"
	"github.com/reprise-tool/reprise/session"
)

// importOptions is what the flags of 'reprise import' fill.
type importOptions struct {
	paths       []string
	output      string
	hosts       []string
	maxBody     string
	count       int64
	compression int
	json        bool
	sessions    sessionFlags
	redact      redactFlags

	stdout, stderr io.Writer
}

// importSummary is the end-of-run report (--json prints it as is).
type importSummary struct {
	Files  []importer.FileStats `json:"files"`
	Output []string             `json:"output"`
	recordedSummary
	// Damage lists the damaged payloads and entries passed over, each
	// with its file and offset or entry index (the first 100).
	Damage  []string `json:"damage,omitempty"`
	Damaged int      `json:"damaged"`
	Error   string   `json:"error,omitempty"`
}

// addImport registers 'reprise import'.
func addImport(root *cobra.Command) {
	o := &importOptions{}
	c := &cobra.Command{
		Use:   "import FILE... -o OUT.rpz",
		Short: "Turn GoReplay .gor files and HAR files into a recording",
		Long: `Import reads GoReplay files (.gor, either payload-header version) and HAR 1.2
files (browsers' devtools, Playwright, mitmproxy), gzip'd or not, and writes
their exchanges to a recording as capture would: each exchange is given its
session and token events, every credential is replaced by a keyed hash
(name more with the --redact-* flags; --keep-secrets keeps them in clear),
and a summary follows.

A file's format is told by its content, not its name; globs are expanded.
GoReplay requests are paired with their original responses by ID (responses
GoReplay got when replaying are counted, not kept) and parsed by the same
HTTP/1 parser as packet captures. Damaged payloads and entries are passed
over and listed with their offset or index; every good one is kept, and
import then exits with status 1.`,
		Example: `  reprise import 'requests-*.gor.gz' -o traffic.rpz
  reprise import session.har --host shop.example.com -o shop.rpz
  reprise import a.gor b.har -o mixed.rpz --redact-cookie SESSIONID --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.paths = args
			o.stdout, o.stderr = c.OutOrStdout(), c.ErrOrStderr()
			return importRun(c.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.output, "output", "o", "", "write the recording to `FILE` (required)")
	f.StringArrayVar(&o.hosts, "host", nil, "keep only requests to `HOST` (a HAR's URL host, a .gor's Host field); repeatable")
	f.StringVar(&o.maxBody, "max-body", "1MiB", "keep at most `SIZE` of each body (0: headers only; max 16MiB)")
	f.Int64Var(&o.count, "count", 0, "stop after `N` exchanges (0: no limit)")
	f.IntVar(&o.compression, "compression", 2, "zstd `LEVEL`: 1 fastest, 2 default, 3 better, 4 best")
	addJSONFlag(f, &o.json)
	o.sessions.add(f, true)
	o.redact.add(f, "", true)
	root.AddCommand(c)
}

// importPlan checks the flags and returns the options for the libraries.
func (o *importOptions) plan() (int64, []capture.RecordOption, error) {
	switch {
	case o.output == "":
		return 0, nil, errors.New("give -o FILE for the recording")
	case o.count < 0:
		return 0, nil, errors.New("--count must not be negative")
	case o.compression < 1 || o.compression > 4:
		return 0, nil, fmt.Errorf("--compression %d: give 1 (fastest) to 4 (best)", o.compression)
	}
	maxBody, err := parseSize(o.maxBody)
	if err != nil || maxBody > session.MaxBodyCap {
		return 0, nil, fmt.Errorf("--max-body %q: give a size from 0 to 16MiB, such as 64KiB or 1MiB", o.maxBody)
	}
	rd, err := o.redact.redactor()
	if err != nil {
		return 0, nil, err
	}
	ropts, err := recordOptions(rd, o.sessions)
	if err != nil {
		return 0, nil, err
	}
	return maxBody, append(ropts, capture.WithLimit(o.count)), nil
}

func importRun(ctx context.Context, o *importOptions) error {
	maxBody, ropts, err := o.plan()
	if err != nil {
		return usagef(err)
	}
	var sum importSummary
	onDamage := func(err error) {
		sum.Damaged++
		if len(sum.Damage) < 100 {
			sum.Damage = append(sum.Damage, err.Error())
		}
	}
	src, err := importer.Open(o.paths, importer.Options{Hosts: o.hosts, MaxBody: maxBody, OnDamage: onDamage})
	if err != nil {
		return err
	}
	defer src.Close()
	meta := session.Metadata{Source: importSource(src.Paths()), Tool: Version(), MaxBody: maxBody}
	rec, err := capture.NewRecorder(append(ropts, capture.WithMetadata(meta))...)
	if err != nil {
		return usagef(err)
	}
	fw, err := session.Create(o.output, rec.Metadata(), session.BodyCap(int(maxBody)), session.Compression(o.compression))
	if err != nil {
		return err
	}
	began := time.Now()
	res, err := rec.Record(ctx, src, fw)
	sum.Files, sum.Output = src.Stats(), fw.Paths()
	sum.recordedSummary = newRecordedSummary(res, sum.Output, began)
	if err != nil {
		sum.Error = err.Error()
	}
	if jerr := printSummary(o.json, o.stdout, o.stderr, sum, printImportSummary); jerr != nil {
		return jerr
	}
	if err == nil && sum.Damaged > 0 {
		err = fmt.Errorf("%d damaged payloads or entries passed over (listed above); the recording holds every good one", sum.Damaged)
	}
	return err
}

func printImportSummary(w io.Writer, s importSummary) {
	c := s.Counters
	fmt.Fprintf(w, "imported %s exchanges (%s incomplete) from %d files in %.1fs\n",
		captureNum(c.Exchanges), captureNum(c.Incomplete), len(s.Files), s.Seconds)
	for _, f := range s.Files {
		switch {
		case f.Gor != nil:
			g := f.Gor
			fmt.Fprintf(w, "  %s (gor): %d requests, %d responses, %d replayed responses counted not kept, %d unanswered, %d orphan responses\n",
				f.Path, g.Requests, g.Responses, g.Replayed, g.Unanswered, g.Orphans)
		case f.HAR != nil:
			h := f.HAR
			fmt.Fprintf(w, "  %s (har): %d entries, %d left out by --host, hosts: %s\n", f.Path, h.Entries, h.Filtered, countList64(h.Hosts))
		}
	}
	if len(c.Unsupported) > 0 {
		fmt.Fprintf(w, "  not recorded: %s\n", countList(c.Unsupported))
	}
	for _, d := range s.Damage {
		fmt.Fprintf(w, "  damaged: %s\n", d)
	}
	s.printTail(w, s.Output)
}

// importSource names the files in the recording's metadata: all of them,
// or the first few and how many more, so a glob of thousands stays short.
func importSource(paths []string) string {
	const shown = 4
	if len(paths) <= shown {
		return "import:" + strings.Join(paths, ",")
	}
	return fmt.Sprintf("import:%s,... (%d files)", strings.Join(paths[:shown], ","), len(paths))
}

// countList64 writes counts by name as countList does.
func countList64(m map[string]int64) string {
	u := make(map[string]uint64, len(m))
	for k, v := range m {
		u[k] = uint64(v)
	}
	return countList(u)
}
