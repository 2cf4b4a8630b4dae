package capture

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/identity"
)

// RecordSink is where Record writes: a recording writer that also keeps
// the run's counters in its metadata and the sessions' timelines
// (session.FileWriter is one).
type RecordSink interface {
	session.Sink
	UpdateCounters(session.Counters)
	WriteTimeline(*session.Timeline) error
}

// RecordOptions tune Record.
type RecordOptions struct {
	// Limit stops after this many exchanges; 0 means no limit.
	Limit int64
	// Progress, when set, is called every ProgressEvery (default one
	// second) from another goroutine with the counters so far, and once
	// more at the end.
	Progress      func(session.Counters)
	ProgressEvery time.Duration
	// Identity, when set, tells which session each exchange belongs to
	// and follows its tokens (identity.Tracker.Annotate) before it is
	// written; the timelines of finished sessions are written as they
	// close, and the rest at the end.
	Identity *identity.Tracker
}

// RecordResult is what a Record run did.
type RecordResult struct {
	Counters session.Counters
	// Start and End are the earliest request start and latest exchange end
	// written, in Unix nanoseconds (packet time).
	Start, End int64
	// LimitReached says Record stopped at RecordOptions.Limit.
	LimitReached bool
}

// Record writes every exchange from p to w until p ends (its input ended or
// its context was done) or the limit is reached. p runs in a goroutine of
// its own ahead of the writer; after Record returns early (limit, write
// error) that goroutine ends when p's source is closed or its context done. The counters are passed
// to w as they change, so a recording closed at any time holds them. A
// source error is returned after everything before it was written.
func Record(p *Pipeline, w RecordSink, o RecordOptions) (RecordResult, error) {
	var res RecordResult
	stop := func() {}
	if o.Progress != nil {
		every := o.ProgressEvery
		if every <= 0 {
			every = time.Second
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					o.Progress(p.Counters())
				}
			}
		}()
		stop = func() { cancel(); wg.Wait() }
	}
	// The pipeline runs in its own goroutine, a bounded queue ahead of the
	// writer: with more than one core, compression overlaps packet
	// processing, and a live source's ring drains while a block is being
	// compressed.
	// The tracker is used by the producer goroutine only: it hands
	// finished timelines to the writer through the queue.
	type item struct {
		x   *session.Exchange
		tls []session.Timeline
		err error
	}
	var src session.Source = p
	if o.Identity != nil {
		src = o.Identity.Annotate(p)
	}
	queue := make(chan item, 1024)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		send := func(it item) bool {
			select {
			case queue <- it:
				return true
			case <-quit:
				return false
			}
		}
		for n := 1; ; n++ {
			x, err := src.Next()
			if err != nil && o.Identity != nil {
				if tls := o.Identity.Close(); len(tls) > 0 && !send(item{tls: tls}) {
					return
				}
			}
			if !send(item{x: x, err: err}) || err != nil {
				return
			}
			if o.Identity != nil && n%4096 == 0 {
				if tls := o.Identity.TakeFinished(); len(tls) > 0 && !send(item{tls: tls}) {
					return
				}
			}
		}
	}()
	var err error
	var n int64
	producerDone := true
	for it := range queue {
		producerDone = false
		if it.tls != nil {
			for i := range it.tls {
				if werr := w.WriteTimeline(&it.tls[i]); werr != nil {
					err = werr
					break
				}
			}
			if err != nil {
				break
			}
			continue
		}
		if it.err != nil {
			if !errors.Is(it.err, io.EOF) {
				err = it.err
			}
			producerDone = true
			break
		}
		x := it.x
		if werr := w.WriteExchange(x); werr != nil {
			err = werr
			break
		}
		n++
		if s := x.Timing.RequestStart; s != 0 && (res.Start == 0 || s < res.Start) {
			res.Start = s
		}
		if e := max(x.Timing.ResponseEnd, x.Timing.RequestEnd); e > res.End {
			res.End = e
		}
		if n&1023 == 0 {
			w.UpdateCounters(p.Counters())
		}
		if o.Limit > 0 && n >= o.Limit {
			break
		}
	}
	close(quit)
	if producerDone {
		wg.Wait()
	}
	// Otherwise (the limit, or a write error) the pipeline's goroutine may
	// be waiting for a packet; it ends when its source is closed or its
	// context is done, and never touches w.
	stop()
	res.LimitReached = o.Limit > 0 && n >= o.Limit
	res.Counters = p.Counters()
	if res.LimitReached {
		// Exchanges finished but not written are not in the recording.
		res.Counters.Exchanges = uint64(n)
	}
	w.UpdateCounters(res.Counters)
	if o.Progress != nil {
		o.Progress(res.Counters)
	}
	return res, err
}
