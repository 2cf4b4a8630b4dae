package summary

import (
	"math"

	"github.com/reprise-tool/reprise/session"
)

// Quick summarises recordings from their trailer indexes alone, without
// reading the records: the time span, counts by method, status and token
// event, sessions, truncated and incomplete exchanges, the capture
// counters, and a request-rate chart from the block map. Routes and
// latencies need the records, so Routes is empty and Summary.Quick is set.
// When any file has no trailer (it was cut short) Quick returns an error
// wrapping session.ErrNoIndex; use Files instead.
func Quick(paths []string, opt Options) (*Summary, error) {
	files, err := session.ExpandPaths(paths...)
	if err != nil {
		return nil, err
	}
	b := NewBuilder(opt)
	s := &b.s
	type blk struct {
		first, last int64
		n           int
	}
	var blocks []blk
	for _, p := range files {
		ix, md, err := session.ReadIndex(p)
		if err != nil {
			return nil, err
		}
		f := File{Path: p, Source: md.Source, Filter: md.Filter, Host: md.Host, Tool: md.Tool, MaxBody: md.MaxBody, Finished: true}
		if sz, err := fileSize(p); err == nil {
			f.Bytes = sz
		}
		b.files = append(b.files, f)
		if ix.Exchanges > 0 {
			if s.Start == 0 || ix.First < s.Start {
				s.Start = ix.First
			}
			s.End = max(s.End, ix.Last, md.End)
		}
		s.Exchanges += int64(ix.Exchanges)
		s.Sessions += int64(ix.Sessions)
		s.SessionsCapped = s.SessionsCapped || ix.SessionsCapped
		s.Timelines += int(ix.Timelines)
		for k, v := range ix.Methods {
			bump(b.methods, k, "OTHER", int64(v))
		}
		for k, v := range ix.Statuses {
			bump(b.statuses, k, -1, int64(v))
		}
		for k, v := range ix.TokenEvents {
			bump(b.tokens, k, "other", int64(v))
		}
		s.Losses.Truncated += int64(ix.Truncated)
		s.Losses.Incomplete += int64(ix.Incomplete)
		b.AddCounters(md.Counters)
		for _, bl := range ix.Blocks {
			if bl.First != 0 {
				blocks = append(blocks, blk{bl.First, bl.Last, bl.Records})
			}
		}
	}
	// Spread each block's exchanges evenly over its time range.
	b.rate.hint(s.Start)
	for _, bl := range blocks {
		step := float64(bl.last-bl.first) / math.Max(float64(bl.n-1), 1)
		for i := range bl.n {
			b.rate.add(bl.first + int64(float64(i)*step))
		}
	}
	out := b.Summary()
	out.Sessions = s.Sessions // the sum over files (a session spanning parts counts in each)
	out.DistinctRoutes = 0
	out.Routes = []Route{}
	out.Quick = true
	return out, nil
}
