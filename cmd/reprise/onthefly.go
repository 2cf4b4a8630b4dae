package main

import (
	"context"
	"fmt"

	"github.com/reprise-tool/reprise/capture/gor"
	"github.com/reprise-tool/reprise/capture/importer"
	"github.com/reprise-tool/reprise/replay/check"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/http2"
	"github.com/reprise-tool/reprise/session/identity"
	"github.com/reprise-tool/reprise/session/summary"
)

// importable reports whether paths (globs expanded) name GoReplay .gor or
// HAR files only, which inspect and check then import on the fly. A
// recording, a pcap or a file that cannot be read leaves the paths to the
// recording reader, whose errors say what the file is.
func importable(paths []string) bool {
	files, err := session.ExpandPaths(paths...)
	if err != nil || len(files) == 0 {
		return false
	}
	for _, p := range files {
		if _, err := importer.FormatOf(p); err != nil {
			return false
		}
	}
	return true
}

// onTheFly is an import read without writing a recording, counting the
// damaged payloads or entries it passed over.
type onTheFly struct {
	*importer.Source
	damaged int
}

func openImport(paths []string) (*onTheFly, error) {
	im := &onTheFly{}
	src, err := importer.Open(paths, importer.Options{MaxBody: gor.DefaultMaxBody, OnDamage: func(error) { im.damaged++ }})
	if err != nil {
		return nil, err
	}
	im.Source = src
	return im, nil
}

// damage is the error that says what the import passed over, or nil.
func (im *onTheFly) damage() error {
	if im.damaged == 0 {
		return nil
	}
	return fmt.Errorf("%d damaged payloads or entries passed over; the figures cover every good one", im.damaged)
}

// inspectImport summarises .gor or HAR files as inspect summarises a
// recording: sessions come from the identity tracker, as an import into a
// recording would give them, and the HTTP/2 figures from the same pass.
func inspectImport(ctx context.Context, paths []string, opt summary.Options) (*summary.Summary, *http2.Summary, error) {
	im, err := openImport(paths)
	if err != nil {
		return nil, nil, err
	}
	defer im.Close()
	tr, err := identity.NewTracker()
	if err != nil {
		return nil, nil, err
	}
	files := make([]summary.File, len(im.Paths()))
	for i, p := range im.Paths() {
		files[i] = summary.File{Path: p, Source: importSource([]string{p}), Finished: true}
	}
	z := http2.NewSummarizer()
	s, err := summary.FromSource(ctx, teeSource{tr.Recompute(im), z.Add}, files, im.Counters, opt)
	if err != nil {
		return nil, nil, err
	}
	var h2 *http2.Summary
	if f := z.Summary(); f.HasHTTP2() {
		h2 = &f
	}
	return s, h2, im.damage()
}

// teeSource hands each exchange of a source to a second reader as well.
type teeSource struct {
	session.Source
	also func(*session.Exchange)
}

func (t teeSource) Next() (*session.Exchange, error) {
	x, err := t.Source.Next()
	if err == nil {
		t.also(x)
	}
	return x, err
}

// loadForCheck reads recordings, or .gor and HAR files imported on the
// fly; an import carries no sessions, so unless --session-keys says
// otherwise the identity tracker gives them.
func loadForCheck(ctx context.Context, paths []string, lo check.LoadOptions) (*check.Recording, error) {
	if !importable(paths) {
		return check.Load(ctx, paths, lo)
	}
	im, err := openImport(paths)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	// Resolved without metadata, auto recomputes: an import has none.
	lo.Keys = lo.Keys.Resolve(nil)
	rec, err := check.Build(im, lo)
	if err != nil {
		return nil, err
	}
	rec.Paths = im.Paths()
	return rec, nil
}
