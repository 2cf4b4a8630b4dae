package main

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/capture/har"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/summary"
)

type exportOptions struct {
	paths  []string
	out    string
	format string
	scheme string
	asJSON bool
}

// exportResult is what export did; --json prints it.
type exportResult struct {
	Output    string `json:"output"`
	Format    string `json:"format"`
	Gzip      bool   `json:"gzip"`
	Exchanges int64  `json:"exchanges"` // exchanges written
	// Skipped counts exchanges that could not be written (a .gor payload
	// whose bytes hold GoReplay's separator).
	Skipped int64 `json:"skipped"`
	// Truncated counts exchanges whose bodies the recording had cut at its
	// body cap: they are written as stored.
	Truncated int64 `json:"truncated"`
	Damaged   int   `json:"damaged"` // damaged regions of the recording passed over
	Bytes     int64 `json:"bytes"`   // bytes written
}

// addExport registers 'reprise export'.
func addExport(root *cobra.Command) {
	var o exportOptions
	c := &cobra.Command{
		Use:   "export REC... -o OUT.har|OUT.gor",
		Short: "Write a recording as HAR (devtools, Playwright) or GoReplay .gor",
		Long: `Export writes the exchanges of one or more recordings (files or glob patterns,
merged in time order) to a file other tools read:

  HAR 1.2   opens in Chromium's devtools (Network, Import HAR) and serves
            Playwright's routeFromHAR; bodies compressed with gzip or deflate
            are written decoded, as HAR requires, and also as sent in the
            custom field _encodedText, so 'reprise import' gets them back
            byte for byte.
  .gor      replays with GoReplay's --input-file; meta lines have four
            fields, so every timestamp survives a round trip.

The format comes from --format or from the name of -o (.har, .gor, and
either with .gz, which is gzip-compressed). A damaged recording is read
past its damage; what was recovered is written and export exits with 1.`,
		Example: `  reprise export traffic.rpz -o traffic.har
  reprise export 'traffic.*.rpz' -o traffic.gor.gz
  reprise export traffic.rpz -o out.json --format har --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.paths = args
			return exportRun(c, &o)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.out, "output", "o", "", "the file to write (required)")
	f.StringVar(&o.format, "format", "", "har or gor (default: from the name of -o)")
	f.StringVar(&o.scheme, "scheme", "http", "HAR only: the scheme of the URLs written (http or https)")
	addJSONFlag(f, &o.asJSON)
	root.AddCommand(c)
}

// exportFormat returns the format and compression asked for.
func exportFormat(out, format string) (string, bool, error) {
	name := strings.ToLower(out)
	gz := strings.HasSuffix(name, ".gz")
	name = strings.TrimSuffix(name, ".gz")
	if format == "" {
		switch filepath.Ext(name) {
		case ".har":
			format = "har"
		case ".gor":
			format = "gor"
		default:
			return "", false, fmt.Errorf("-o %s: name the file .har or .gor (or .gz of either), or give --format har|gor", out)
		}
	}
	if format != "har" && format != "gor" {
		return "", false, fmt.Errorf("--format %q: give har or gor", format)
	}
	return format, gz, nil
}

func exportRun(c *cobra.Command, o *exportOptions) error {
	if o.out == "" {
		return usagef(errors.New("give the file to write with -o, e.g. -o traffic.har"))
	}
	format, gz, err := exportFormat(o.out, o.format)
	if err != nil {
		return usagef(err)
	}
	if o.scheme != "http" && o.scheme != "https" {
		return usagef(fmt.Errorf("--scheme %q: give http or https", o.scheme))
	}
	src, err := session.Open(o.paths...)
	if err != nil {
		return err
	}
	defer src.Close()
	res := exportResult{Output: o.out, Format: format, Gzip: gz}
	var werr error
	res.Bytes, werr = writeAtomic(o.out, func(w io.Writer) error {
		if !gz {
			return exportTo(w, src, format, o, &res)
		}
		zw := gzip.NewWriter(w)
		err := exportTo(zw, src, format, o, &res)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		return err
	})
	res.Damaged = len(src.Damage())
	if werr != nil {
		return werr
	}
	if o.asJSON {
		if err := writeJSON(c.OutOrStdout(), res); err != nil {
			return err
		}
	} else {
		kind := format
		if gz {
			kind += ", gzip"
		}
		fmt.Fprintf(c.OutOrStdout(), "exported %d exchanges to %s (%s, %s)%s\n", res.Exchanges, o.out, kind, summary.HumanBytes(res.Bytes), exportNotes(res))
	}
	if res.Damaged > 0 {
		return fmt.Errorf("%w: %d damaged regions passed over; the export holds what was recovered", session.ErrBadBlock, res.Damaged)
	}
	return nil
}

func exportNotes(r exportResult) string {
	var n []string
	if r.Skipped > 0 {
		n = append(n, fmt.Sprintf("%d skipped: their bytes hold the .gor separator", r.Skipped))
	}
	if r.Truncated > 0 {
		n = append(n, fmt.Sprintf("%d with bodies cut at the recording's body cap", r.Truncated))
	}
	if len(n) == 0 {
		return ""
	}
	return "; " + strings.Join(n, "; ")
}

// exportTo copies every exchange of src to a writer of the format.
func exportTo(w io.Writer, src *session.MultiReader, format string, o *exportOptions, res *exportResult) error {
	var sink interface {
		session.Sink
		Close() error
	}
	if format == "har" {
		sink = har.NewWriter(w, har.Creator(strings.TrimPrefix(Version(), "reprise ")), har.Title(strings.Join(src.Paths(), " ")), har.Scheme(o.scheme))
	} else {
		sink = gor.NewWriter(w)
	}
	for {
		x, err := src.Next()
		if err == io.EOF {
			break
		}
		var ce *session.CorruptError
		if errors.As(err, &ce) {
			continue // counted from src.Damage()
		}
		if err != nil {
			return err
		}
		if x.Flags&(session.FlagRequestTruncated|session.FlagResponseTruncated) != 0 {
			res.Truncated++
		}
		switch err := sink.WriteExchange(x); {
		case errors.Is(err, gor.ErrSeparatorInBody):
			res.Skipped++
		case err != nil:
			return err
		default:
			res.Exchanges++
		}
	}
	return sink.Close()
}

// writeAtomic writes path through a temporary file renamed into place, so
// a failed export never leaves a half-written file under the name asked,
// and returns the file's size.
func writeAtomic(path string, write func(io.Writer) error) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return 0, err
	}
	st, err := tmp.Stat()
	if err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	return st.Size(), os.Rename(tmp.Name(), path)
}
