package summary

import (
	"context"
	"errors"
	"io"

	"github.com/reprise-tool/reprise/session"
)

// FromSource summarises the exchanges of src, a source other than
// recording files: an import of .gor or HAR files read on the fly, a
// capture. files names what src reads. counters, when set, is called once
// src is exhausted for what the source counted of what it saw and lost
// (an importer's or capture's Counters), which a recording would have
// kept in its metadata. An error from src other than io.EOF ends the
// summary.
func FromSource(ctx context.Context, src session.Source, files []File, counters func() session.Counters, opt Options) (*Summary, error) {
	b := NewBuilder(opt)
	b.files = append(b.files, files...)
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		x, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		b.Add(x)
	}
	if counters != nil {
		b.AddCounters(counters())
	}
	return b.Summary(), nil
}
