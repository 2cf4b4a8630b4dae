package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/session"
	"github.com/reprise-tool/reprise/session/corrplan"
	"github.com/reprise-tool/reprise/session/identity"
)

// RecordSink is where Record writes: a recording writer that keeps the
// run's counters and metadata and the sessions' timelines, and that Record
// closes at the end (session.FileWriter and session.Writer are two).
type RecordSink interface {
	session.Sink
	WriteTimeline(*session.Timeline) error
	UpdateCounters(session.Counters)
	SetMetadata(session.Metadata)
	Close() error
}

// CounterSource is met by exchange sources that count what they saw,
// including what they could not hand over (the packet Pipeline, the
// recording proxy). Record stores those counters in the recording's
// metadata, so losses are reported, never hidden. Counters must be safe
// to call from any goroutine.
type CounterSource interface {
	Counters() session.Counters
}

// DefaultRecordDrain is how long Record waits, once its context is done,
// for the source to hand over what it holds and end (see WithDrain). It is
// longer than the proxy's grace for exchanges in flight.
const DefaultRecordDrain = 30 * time.Second

// RecordOption configures Record. Options are checked by NewRecorder,
// before anything is read or written.
type RecordOption func(*recordOptions) error

type recordOptions struct {
	meta     session.Metadata
	limit    int64
	every    time.Duration
	progress func(session.Counters)
	sessions bool
	identity []identity.Option
	redactor *redact.Redactor
	counters func() session.Counters
	drain    time.Duration
	plan     bool
}

// WithMetadata gives the metadata Record starts from: Source, Filter,
// Tool and MaxBody as the caller knows them. Record fills in Host (when
// empty), Start, End, SessionRules, Redaction and Counters.
func WithMetadata(m session.Metadata) RecordOption {
	return func(o *recordOptions) error {
		o.meta = m
		return nil
	}
}

// WithLimit stops the recording after n exchanges; 0 means no limit.
func WithLimit(n int64) RecordOption {
	return func(o *recordOptions) error {
		if n < 0 {
			return fmt.Errorf("capture: limit %d is negative; use 0 for no limit", n)
		}
		o.limit = n
		return nil
	}
}

// WithProgress calls f every interval (default one second when every is
// 0) from another goroutine with the counters so far, and once more at the
// end, for a status line.
func WithProgress(every time.Duration, f func(session.Counters)) RecordOption {
	return func(o *recordOptions) error {
		if f == nil || every < 0 {
			return errors.New("capture: progress needs a function and an interval not negative")
		}
		o.progress, o.every = f, every
		return nil
	}
}

// WithSessions tracks sessions with an identity tracker made from opts
// (none: the default rules): each exchange is given its session and token
// events before it is written, the timelines of finished sessions are
// written as they close and the rest at the end, and the rules go into the
// metadata. Without it exchanges are written as the source gives them.
func WithSessions(opts ...identity.Option) RecordOption {
	return func(o *recordOptions) error {
		o.sessions = true
		o.identity = append(o.identity, opts...)
		return nil
	}
}

// WithRedactor redacts every exchange with r before the identity tracker
// or the recording sees it, so token events hold only what the recording
// may hold, and stores in the metadata the rules that fired (r.Redacted):
// what a reader of the recording needs to know is which values were
// replaced, and a rule that matched nothing replaced nothing. From a
// packet Pipeline the redaction runs as one of its exchange funcs, on its
// hook workers when it has some (WithHookWorkers).
func WithRedactor(r *redact.Redactor) RecordOption {
	return func(o *recordOptions) error {
		if r == nil {
			return errors.New("capture: nil redactor")
		}
		o.redactor = r
		return nil
	}
}

// WithCounters names where the run's counters come from when the source
// is not a CounterSource itself (a source fed by one that is). Without it
// and without a CounterSource, Record counts the exchanges it writes.
func WithCounters(f func() session.Counters) RecordOption {
	return func(o *recordOptions) error {
		if f == nil {
			return errors.New("capture: nil counters function")
		}
		o.counters = f
		return nil
	}
}

// WithDrain sets how long Record waits for the source to end once ctx is
// done (default DefaultRecordDrain).
func WithDrain(d time.Duration) RecordOption {
	return func(o *recordOptions) error {
		if d <= 0 {
			return fmt.Errorf("capture: drain %v must be positive", d)
		}
		o.drain = d
		return nil
	}
}

// WithCorrelationPlan stores the correlation plan (package
// session/corrplan) in the recording's final metadata, computed as Record
// writes, so that a replay need not compute it in its survey pass. It is
// off by default: the plan reads every JSON response body and costs about
// nine tenths of a pcap import's CPU (BenchmarkPcapToRecording: 16 against
// 170 MB per CPU-second), while a replay computes the same plan from the
// file in one streaming pass.
func WithCorrelationPlan() RecordOption {
	return func(o *recordOptions) error {
		o.plan = true
		return nil
	}
}

// RecordResult is what a Record run did.
type RecordResult struct {
	Counters session.Counters
	// Start and End are the earliest request start and latest exchange end
	// written, in Unix nanoseconds (the source's clock: packet time for
	// packets); both 0 when nothing was written.
	Start, End int64
	// LimitReached says Record stopped at WithLimit.
	LimitReached bool
	// Sessions is how many sessions the tracker found (WithSessions); 0
	// when it was still busy because Record stopped before the source
	// ended.
	Sessions uint64
	// Redacted lists the redaction rules that fired (WithRedactor).
	Redacted []string
	// Metadata is the final metadata written.
	Metadata session.Metadata
}

// Recorder is one run of the recording loop, made by NewRecorder from
// checked options. It is used once.
type Recorder struct {
	o       recordOptions
	tracker *identity.Tracker
	plan    *corrplan.Builder // used by the writing loop alone; nil without a plan
	meta    session.Metadata
	used    atomic.Bool
}

// NewRecorder checks opts and returns a Recorder. Its Metadata is what the
// recording file is created with.
func NewRecorder(opts ...RecordOption) (*Recorder, error) {
	o := recordOptions{every: time.Second, drain: DefaultRecordDrain}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.every == 0 {
		o.every = time.Second
	}
	r := &Recorder{o: o, meta: o.meta}
	if red := o.redactor; red != nil {
		// The tracker sees tokens hashed: it keys subjects with the
		// redaction key and reads JWT claims the redactor kept.
		o.identity = append(o.identity, identity.WithRedaction(red.Hash, red.Claims))
		if red.ClearSecrets() {
			r.meta.Redaction = []string{redact.ClearMark}
		}
	}
	if o.sessions {
		t, err := identity.NewTracker(o.identity...)
		if err != nil {
			return nil, fmt.Errorf("session rules: %w", err)
		}
		r.tracker = t
		r.meta.SessionRules = t.Rules()
	}
	if o.plan {
		r.plan = corrplan.NewBuilder(0)
	}
	if r.meta.Host == "" {
		r.meta.Host, _ = os.Hostname()
	}
	if r.meta.Start == 0 {
		r.meta.Start = time.Now().UnixNano()
	}
	return r, nil
}

// Metadata is the metadata to create the recording with, so that even a
// file cut short says where its traffic came from and how sessions were
// told apart. Nothing is redacted yet, so it names no redaction.
func (r *Recorder) Metadata() session.Metadata { return r.meta }

// Record is NewRecorder(opts...).Record(ctx, src, sink).
func Record(ctx context.Context, src session.Source, sink RecordSink, opts ...RecordOption) (RecordResult, error) {
	r, err := NewRecorder(opts...)
	if err != nil {
		return RecordResult{}, err
	}
	return r.Record(ctx, src, sink)
}

// item is what the reading goroutine hands the writer: an exchange,
// timelines of finished sessions, or the source's end.
type item struct {
	x     *session.Exchange
	tls   []session.Timeline
	conns []session.ConnInfo
	err   error
}

// Record is the one loop that writes a recording, whatever the source: it
// reads every exchange from src (redacted and given its session as the
// options say) and writes it to sink until src ends or the limit is
// reached, then writes the final metadata (counters, the rules that fired,
// the traffic's start and end) and closes sink. A source error is returned
// after everything before it was written.
//
// src is read in a goroutine of its own, a bounded queue ahead of the
// writer, so compression overlaps the source's work and a live source's
// ring drains while a block is compressed. Sources made with ctx (FromPackets,
// a proxy serving on ctx) end when it is done after handing over what they
// hold, so cancelling ctx stops a recording cleanly; Record waits up to the
// drain time (WithDrain) for that, then closes the recording with what it
// has. After Record returns early (limit, write error, drain) the reading
// goroutine ends when src does; it never touches sink.
func (r *Recorder) Record(ctx context.Context, src session.Source, sink RecordSink) (RecordResult, error) {
	if src == nil || sink == nil {
		return RecordResult{}, errors.New("capture: Record needs a source and a sink")
	}
	if r.used.Swap(true) {
		return RecordResult{}, errors.New("capture: a Recorder records once; make a new one per run")
	}
	var own ownCounters
	counters := r.o.counters
	if counters == nil {
		if cs, ok := src.(CounterSource); ok {
			counters = cs.Counters
		} else {
			counters = own.counters
		}
	}
	stopTicker := r.tick(sink, counters)
	// Asked of src itself: the redaction and the session tracker wrap it.
	cs, _ := src.(ConnSource)
	p, _ := src.(*Pipeline)
	pending, _ := src.(buffered)
	queue, quit, producer := r.produce(r.source(src), cs, p, pending)
	res, n, done, err := r.write(ctx, queue, sink, counters, &own)
	close(quit)
	if done {
		producer.Wait()
	}
	// Otherwise (the limit, a write error, the drain time) the reading
	// goroutine may be waiting on src, with the tracker.
	stopTicker()
	res.LimitReached = r.o.limit > 0 && n >= r.o.limit
	res.Counters = counters()
	if res.LimitReached {
		// Exchanges finished but not written are not in the recording.
		res.Counters.Exchanges = uint64(n)
	}
	if r.tracker != nil && done {
		res.Sessions = r.tracker.Stats().Sessions
	}
	meta := r.meta
	if res.Start != 0 {
		meta.Start, meta.End = res.Start, res.End
	} else {
		meta.End = time.Now().UnixNano()
	}
	if r.o.redactor != nil {
		res.Redacted = r.o.redactor.Redacted()
		meta.Redaction = res.Redacted
		if r.o.redactor.ClearSecrets() {
			meta.Redaction = append([]string{redact.ClearMark}, res.Redacted...)
			res.Redacted = meta.Redaction
		}
	}
	meta.Counters = res.Counters
	if r.plan != nil {
		meta.Correlation = r.plan.Plan()
	}
	sink.UpdateCounters(res.Counters)
	sink.SetMetadata(meta)
	res.Metadata = meta
	cerr := sink.Close()
	if r.o.progress != nil {
		r.o.progress(res.Counters)
	}
	return res, errors.Join(err, cerr)
}

// source wraps src with the redaction and the identity tracker, in that
// order.
func (r *Recorder) source(src session.Source) session.Source {
	if red := r.o.redactor; red != nil {
		if p, ok := src.(*Pipeline); ok {
			// On the pipeline's hook workers, in parallel when it has them.
			p.o.hooks = append(p.o.hooks, func(x *session.Exchange) { red.Apply(x) })
		} else {
			src = redacting{src, red}
		}
	}
	if r.tracker != nil {
		src = r.tracker.Annotate(src)
	}
	return src
}

// tick updates the sink's counters, and calls the progress function, every
// interval until the returned function is called.
func (r *Recorder) tick(sink RecordSink, counters func() session.Counters) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.o.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c := counters()
				sink.UpdateCounters(c)
				if r.o.progress != nil {
					r.o.progress(c)
				}
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// produce reads src in a goroutine of its own into the returned queue,
// with the timelines of finished sessions and the connections cs says
// ended (when src is a ConnSource) between the exchanges. The tracker is
// used by that goroutine only. It stops when src ends or quit is closed.
//
// Items go over in batches, not one per channel send, so the writer wakes
// once a batch rather than once an exchange: a batch goes when it holds
// handBatch items or handBytes of bodies, handWait after its first item,
// when the source ends, when a packet Pipeline finds no packet to read
// (a quiet live capture), or before a source that holds none ready is
// asked for the next (pending: src before the redaction and the tracker
// wrapped it; see buffered), so an exchange never waits for the next one.
func (r *Recorder) produce(src session.Source, cs ConnSource, p *Pipeline, pending buffered) (<-chan []item, chan struct{}, *sync.WaitGroup) {
	queue := make(chan []item, handQueue)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var batch []item
	var bytes int
	var first time.Time
	stopped := false
	flush := func() bool {
		if stopped {
			return false
		}
		if len(batch) == 0 {
			return true
		}
		select {
		case <-quit:
			stopped = true
			return false
		default:
		}
		select {
		case queue <- batch:
			batch, bytes = make([]item, 0, handBatch), 0
			return true
		case <-quit:
			stopped = true
			return false
		}
	}
	send := func(it item) bool {
		if len(batch) == 0 {
			first = time.Now()
		}
		batch = append(batch, it)
		if it.x != nil {
			bytes += len(it.x.Request.Body) + len(it.x.Response.Body)
		}
		if it.err != nil || len(batch) >= handBatch || bytes >= handBytes || time.Since(first) >= handWait {
			return flush()
		}
		return !stopped
	}
	if p != nil {
		p.onIdle = func() { flush() }
	}
	go func() {
		defer wg.Done()
		defer close(queue)
		batch = make([]item, 0, handBatch)
		conns := func() bool {
			if cs == nil {
				return true
			}
			c := cs.TakeConns()
			return len(c) == 0 || send(item{conns: c})
		}
		for n := 1; ; n++ {
			// A source that would block (a proxy or a pipe with nothing
			// queued) hands the batch over first: a recording proxy's
			// exchange must not wait for the next user's to be written.
			if pending != nil && len(batch) > 0 && pending.Buffered() == 0 && !flush() {
				return
			}
			x, err := src.Next()
			if (err != nil || n%64 == 0) && !conns() {
				return
			}
			if err != nil && r.tracker != nil {
				if tls := r.tracker.Close(); len(tls) > 0 && !send(item{tls: tls}) {
					return
				}
			}
			if !send(item{x: x, err: err}) || err != nil {
				return
			}
			if r.tracker != nil && n%4096 == 0 {
				if tls := r.tracker.TakeFinished(); len(tls) > 0 && !send(item{tls: tls}) {
					return
				}
			}
		}
	}()
	return queue, quit, &wg
}

// buffered is a source that can say how many exchanges it holds ready:
// Next blocks when it holds none (a recording proxy, a Pipe).
type buffered interface{ Buffered() int }

// The hand-off from produce to write: items per batch, bytes of bodies
// per batch, the longest a batch waits for more, and batches queued.
const (
	handBatch = 64
	handBytes = 4 << 20
	handWait  = 20 * time.Millisecond
	handQueue = 16
)

// write writes what the queue brings until the source ends (done), the
// limit is reached, a write fails, or ctx has been done for the drain
// time. n counts the exchanges written.
func (r *Recorder) write(ctx context.Context, queue <-chan []item, sink RecordSink, counters func() session.Counters, own *ownCounters) (res RecordResult, n int64, done bool, err error) {
	ctxDone := ctx.Done()
	var abort <-chan time.Time
	for {
		var batch []item
		var ok bool
		select {
		case batch, ok = <-queue: // the usual case, without a timer
		default:
			select {
			case batch, ok = <-queue:
			case <-ctxDone:
				ctxDone = nil
				t := time.NewTimer(r.o.drain)
				defer t.Stop()
				abort = t.C
				continue
			case <-abort:
				return res, n, false, fmt.Errorf("capture: the source did not end within %v of the stop (%w); the recording holds what came before", r.o.drain, ctx.Err())
			}
		}
		if !ok {
			return res, n, true, nil
		}
		for i := range batch {
			if stop, done, err := r.writeItem(&batch[i], sink, counters, own, &res, &n); stop {
				return res, n, done, err
			}
		}
	}
}

// writeConns writes connection records to sink, when it stores them.
func writeConns(sink RecordSink, conns []session.ConnInfo) error {
	cw, ok := sink.(session.ConnWriter)
	if !ok {
		return nil
	}
	for i := range conns {
		if err := cw.WriteConn(&conns[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeItem writes one item of the queue. stop says the recording ends
// with it: done at the source's end (err is then the source's error, if
// any), not done at the limit or a write error (err).
func (r *Recorder) writeItem(it *item, sink RecordSink, counters func() session.Counters, own *ownCounters, res *RecordResult, n *int64) (stop, done bool, err error) {
	if it.tls != nil {
		for i := range it.tls {
			if werr := sink.WriteTimeline(&it.tls[i]); werr != nil {
				return true, false, werr
			}
		}
		return false, false, nil
	}
	if it.conns != nil {
		if werr := writeConns(sink, it.conns); werr != nil {
			return true, false, werr
		}
		return false, false, nil
	}
	if it.err != nil {
		if !errors.Is(it.err, io.EOF) {
			return true, true, it.err
		}
		return true, true, nil
	}
	x := it.x
	if r.plan != nil {
		r.plan.Add(x)
	}
	if werr := sink.WriteExchange(x); werr != nil {
		return true, false, werr
	}
	*n++
	own.add(x)
	if s := x.Timing.RequestStart; s != 0 && (res.Start == 0 || s < res.Start) {
		res.Start = s
	}
	if e := max(x.Timing.ResponseEnd, x.Timing.RequestEnd); e > res.End {
		res.End = e
	}
	if *n&1023 == 0 {
		sink.UpdateCounters(counters())
	}
	return r.o.limit > 0 && *n >= r.o.limit, false, nil
}

// redacting applies the redaction to each exchange as it leaves src.
type redacting struct {
	src session.Source
	red *redact.Redactor
}

func (r redacting) Next() (*session.Exchange, error) {
	x, err := r.src.Next()
	if x != nil {
		r.red.Apply(x)
	}
	return x, err
}

// ownCounters counts what Record wrote, for sources that count nothing.
type ownCounters struct {
	exchanges, incomplete atomic.Uint64
}

func (c *ownCounters) add(x *session.Exchange) {
	c.exchanges.Add(1)
	if x.Flags.Incomplete() {
		c.incomplete.Add(1)
	}
}

func (c *ownCounters) counters() session.Counters {
	return session.Counters{Exchanges: c.exchanges.Load(), Incomplete: c.incomplete.Load()}
}
