package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/reprise-tool/reprise/session"
)

// InspectOptions configure Inspect.
type InspectOptions struct {
	// Session, when set, asks for that session's timeline (a Detail)
	// besides the report.
	Session string
	// Top is how many sessions the report lists (0: none, negative: all).
	Top int
	// Recompute ignores the timelines stored in the recording and runs the
	// tracker over the exchanges again (with Tracker's options).
	Recompute bool
	Tracker   []Option
	// Progress, when set, is called now and then with the bytes of the
	// recording read so far and in all (a recompute reads them twice).
	Progress func(done, total int64)
}

// InspectResult is what Inspect found.
type InspectResult struct {
	Report Report
	Detail *Detail // nil unless InspectOptions.Session was set
	// Damage lists the damaged regions the reader skipped; their exchanges
	// are missing from the figures.
	Damage []*session.CorruptError
}

// ErrNoSession is returned (wrapped) when --session names a key the
// recording does not hold.
var ErrNoSession = errors.New("no such session")

// Inspect computes the session report of the recordings at paths. It uses
// the timelines stored in the recording when there are any (capture
// computes them), and otherwise recomputes them by running a Tracker over
// the exchanges, so older and imported recordings gain them too. The
// recording is read as a stream, once or (when recomputing) twice; memory
// grows with sessions, not exchanges.
func Inspect(ctx context.Context, paths []string, o InspectOptions) (*InspectResult, error) {
	res := &InspectResult{}
	// First pass: the recording as stored.
	sum := NewSummary()
	var det *Detail
	if o.Session != "" {
		det = NewDetail(o.Session)
	}
	var stored []session.Timeline
	if !o.Recompute {
		var err error
		stored, err = inspectPass(ctx, paths, nil, sum, det, res, o.Progress)
		if err != nil {
			return nil, err
		}
	}
	from := "recording"
	var stats *Stats
	if len(stored) == 0 || duplicateKeys(stored) {
		// Nothing stored, or recordings made by separate captures whose
		// keys collide: recompute over all of them as one.
		// Recompute: clear what the recording says and track afresh.
		tr, err := NewTracker(o.Tracker...)
		if err != nil {
			return nil, err
		}
		sum, res.Damage = NewSummary(), nil
		if det != nil {
			det = NewDetail(o.Session)
		}
		if _, err := inspectPass(ctx, paths, tr, sum, det, res, o.Progress); err != nil {
			return nil, err
		}
		stored = tr.Close()
		st := tr.Stats()
		stats, from = &st, "recomputed"
	}
	res.Report = sum.Report(stored, o.Top)
	res.Report.From = from
	res.Report.Tracking = stats
	res.Report.Damaged = len(res.Damage)
	if det != nil {
		if !det.Finish(stored) {
			return res, fmt.Errorf("%w %q in %v: list the keys with 'reprise inspect --sessions'", ErrNoSession, o.Session, paths)
		}
		res.Detail = det
	}
	return res, nil
}

func duplicateKeys(tls []session.Timeline) bool {
	seen := make(map[string]bool, len(tls))
	for _, tl := range tls {
		if seen[tl.Key] {
			return true
		}
		seen[tl.Key] = true
	}
	return false
}

func inspectPass(ctx context.Context, paths []string, tr *Tracker, sum *Summary, det *Detail, res *InspectResult, progress func(done, total int64)) ([]session.Timeline, error) {
	mr, err := session.Open(paths...)
	if err != nil {
		return nil, err
	}
	defer mr.Close()
	var total int64
	for _, p := range mr.Paths() {
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	var src session.Source = mr
	if tr != nil {
		src = tr.Recompute(mr)
	}
	var n uint64
	for {
		x, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var ce *session.CorruptError
		if errors.As(err, &ce) {
			res.Damage = append(res.Damage, ce)
			continue
		}
		if err != nil {
			return nil, err
		}
		sum.Add(x)
		if det != nil {
			det.Add(x)
		}
		if n++; n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if progress != nil {
				progress(mr.Stats().Bytes, total)
			}
		}
	}
	if progress != nil {
		progress(total, total)
	}
	return mr.Timelines(), nil
}
