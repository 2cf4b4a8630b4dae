package replay

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// WithRecordedConns gives the replay the recording's connection records
// (format 1.2: session.ConnInfo, from Reader.Conns), so that with
// ConnectionsRecorded each connection opens at its recorded open time
// (scaled by the pacer) rather than at its first request, and ends as
// it ended: a client close is made at its recorded time, after the
// connection's last exchange; a server close is left to the target and
// counted when the target does not make it (the replay then closes the
// connection itself). A connection without a record (a recording made
// before 1.2, or one the reader did not keep) opens at its first request
// and closes after its last, as before.
func WithRecordedConns(conns []session.ConnInfo) Option {
	return func(o *options) error {
		if len(conns) == 0 {
			return nil
		}
		o.recConns = make(connTable, len(conns))
		for i := range conns {
			if conns[i].ID != 0 {
				o.recConns[conns[i].ID] = &conns[i]
			}
		}
		return nil
	}
}

// connTable holds the recording's connection records by id.
type connTable map[uint64]*session.ConnInfo

// serverCloseGrace is how long past a recorded server close the replay
// waits for the target to make it before it closes the connection
// itself and counts the close as not reproduced.
const serverCloseGrace = time.Second

// lifeStats counts what the replay did with the recorded connections'
// opens and closes (see WithRecordedConns).
type lifeStats struct {
	recorded        atomic.Uint64 // lines with a connection record
	openedAhead     atomic.Uint64 // opened at their recorded time, ahead of their first request
	clientCloses    atomic.Uint64 // closed by the replay at their recorded time
	serverCloses    atomic.Uint64 // recorded server closes the target made
	serverCloseMiss atomic.Uint64 // recorded server closes the target did not make
	recordedBy      [3]atomic.Uint64
	atEnd           atomic.Uint64 // closed by the replay when the run ended
}

// lineLife is a line's recorded life: when, on the run's clock, its
// connection opened and closed, who closed it, and how many exchanges
// it carried.
type lineLife struct {
	d         *dispatcher
	openOff   time.Duration
	closeOff  time.Duration
	closedBy  session.Party
	exchanges int64
	finished  atomic.Int64 // its requests done

	mu     sync.Mutex
	timer  *time.Timer // the scheduled open or close
	ended  bool        // the run closed the line
	closed bool        // the recorded close was made (or checked)
	used   bool        // a request was dispatched on it
}

// firstRequest is called when a request is dispatched on the line: its
// scheduled open, if still to come, is dropped, as the request opens it.
func (lf *lineLife) firstRequest() {
	if lf == nil {
		return
	}
	lf.mu.Lock()
	if !lf.used {
		lf.used = true
		if lf.timer != nil {
			lf.timer.Stop()
		}
	}
	lf.mu.Unlock()
}

func (lf *lineLife) isUsed() bool {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return lf.used
}

// lifeOf returns the recorded life of it's connection, or nil when the
// recording has no record of it.
func (d *dispatcher) lifeOf(it *item) *lineLife {
	ci := d.r.o.recConns[it.ex.Conn.ID]
	if ci == nil || ci.Opened == 0 || it.start == 0 {
		return nil
	}
	lf := &lineLife{d: d, closedBy: ci.ClosedBy, exchanges: int64(ci.Exchanges)}
	// Offsets are the item's, moved by the recorded distance, so that a
	// clone's shift carries over.
	lf.openOff = max(0, it.offset-time.Duration(it.start-ci.Opened))
	if ci.Closed != 0 {
		lf.closeOff = it.offset + time.Duration(ci.Closed-it.start)
	}
	d.r.lives.recorded.Add(1)
	d.r.lives.recordedBy[min(ci.ClosedBy, session.PartyServer)].Add(1)
	return lf
}

// openAhead makes the lines of the batch's connections that have a
// record and opens each at its recorded open time, scaled, which may
// come well before its first request (a browser's preconnect). The
// dispatcher calls it on each batch it takes from the look-ahead window,
// so a connection opens ahead by as much as the window reaches.
func (d *dispatcher) openAhead(batch []*item) {
	if d.lines == nil || d.r.o.recConns == nil || d.max {
		return
	}
	for _, it := range batch {
		k := lineKey{it.ex.Conn.ID, it.clone}
		if k.id == 0 || d.lines[k] != nil {
			continue
		}
		if d.r.o.recConns[k.id] == nil {
			continue // opened at its first request
		}
		ln := d.newLine(it)
		lf := ln.life
		if lf == nil {
			continue
		}
		ln.lastOff = lf.openOff
		d.lines[k] = ln
		ctx := d.ctx
		lf.after(d.start.Add(d.r.o.pacer.Due(lf.openOff)), func() {
			if lf.isUsed() {
				return // its first request came first, and opened it
			}
			if ln.open(ctx) == nil {
				d.r.lives.openedAhead.Add(1)
			}
		})
	}
}

// after runs f at t (at once when t has passed) unless the line ends
// first; a line keeps one scheduled action at a time.
func (lf *lineLife) after(t time.Time, f func()) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.ended {
		return
	}
	if lf.timer != nil {
		lf.timer.Stop()
	}
	lf.timer = time.AfterFunc(time.Until(t), func() {
		lf.mu.Lock()
		ended := lf.ended
		lf.mu.Unlock()
		if !ended {
			f()
		}
	})
}

// end stops the line's scheduled action: the run closes the line.
func (lf *lineLife) end() {
	if lf == nil {
		return
	}
	lf.mu.Lock()
	lf.ended = true
	if lf.timer != nil {
		lf.timer.Stop()
	}
	lf.mu.Unlock()
}

// requestDone is called when one of the line's requests is done; after
// the last one the recording gives, it schedules the recorded close.
func (ln *line) requestDone() {
	lf := ln.life
	if lf == nil || lf.finished.Add(1) != lf.exchanges || lf.closeOff == 0 {
		return
	}
	d := lf.d
	switch lf.closedBy {
	case session.PartyClient:
		lf.after(d.start.Add(d.r.o.pacer.Due(lf.closeOff)), func() {
			if ln.busy.Load() == 0 && lf.closeOnce() {
				ln.close()
				d.r.lives.clientCloses.Add(1)
			}
		})
	case session.PartyServer:
		if ln.wl == nil {
			return // an HTTP/2 connection: its GOAWAY and close are the server's affair
		}
		lf.after(d.start.Add(d.r.o.pacer.Due(lf.closeOff)+serverCloseGrace), func() {
			if ln.busy.Load() != 0 || !lf.closeOnce() {
				return
			}
			if ln.wl.ServerClosed() {
				d.r.lives.serverCloses.Add(1)
				return
			}
			d.r.lives.serverCloseMiss.Add(1)
			ln.close()
		})
	}
}

// closeOnce reports whether the recorded close is still to be made, and
// marks it made.
func (lf *lineLife) closeOnce() bool {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.closed || lf.ended {
		return false
	}
	lf.closed = true
	return true
}

// LifeReport says how the replay followed the recorded connections'
// opens and closes (recordings of format 1.2; see WithRecordedConns).
type LifeReport struct {
	// Recorded counts the connections replayed with a record, and
	// RecordedByClient, RecordedByServer and RecordedOpen how they ended
	// in the recording (open: idle or open when the capture ended).
	Recorded         uint64 `json:"recorded"`
	RecordedByClient uint64 `json:"recorded_closed_by_client"`
	RecordedByServer uint64 `json:"recorded_closed_by_server"`
	RecordedOpen     uint64 `json:"recorded_open"`
	// OpenedAhead counts those opened at their recorded time ahead of
	// their first request.
	OpenedAhead uint64 `json:"opened_ahead"`
	// ClientCloses counts the recorded client closes the replay made at
	// their recorded time; ServerCloses the recorded server closes the
	// target made, ServerClosesMissed those it did not make within a
	// second of their recorded time (the replay then closed them).
	ClientCloses       uint64 `json:"client_closes"`
	ServerCloses       uint64 `json:"server_closes"`
	ServerClosesMissed uint64 `json:"server_closes_missed"`
}

// lifeReport makes the run's LifeReport; nil when no connection had a
// record.
func (r *Replayer) lifeReport() *LifeReport {
	s := &r.lives
	if s.recorded.Load() == 0 {
		return nil
	}
	return &LifeReport{
		Recorded: s.recorded.Load(), RecordedByClient: s.recordedBy[session.PartyClient].Load(),
		RecordedByServer: s.recordedBy[session.PartyServer].Load(), RecordedOpen: s.recordedBy[session.PartyNone].Load(),
		OpenedAhead: s.openedAhead.Load(), ClientCloses: s.clientCloses.Load(),
		ServerCloses: s.serverCloses.Load(), ServerClosesMissed: s.serverCloseMiss.Load(),
	}
}

// summary writes the recorded connections' line of the summary.
func (l *LifeReport) summary(b *strings.Builder) {
	if l == nil {
		return
	}
	fmt.Fprintf(b, "  connections  %d as recorded (%d closed by the client, %d by the server, %d left open): %d opened ahead of their first request; %d client closes made at their time; server closes: %d made by the target, %d not (the replay closed them)\n",
		l.Recorded, l.RecordedByClient, l.RecordedByServer, l.RecordedOpen, l.OpenedAhead, l.ClientCloses, l.ServerCloses, l.ServerClosesMissed)
}

// mergeLife sums the shards' LifeReports.
func mergeLife(m, l *LifeReport) *LifeReport {
	if l == nil {
		return m
	}
	if m == nil {
		m = &LifeReport{}
	}
	m.Recorded += l.Recorded
	m.RecordedByClient += l.RecordedByClient
	m.RecordedByServer += l.RecordedByServer
	m.RecordedOpen += l.RecordedOpen
	m.OpenedAhead += l.OpenedAhead
	m.ClientCloses += l.ClientCloses
	m.ServerCloses += l.ServerCloses
	m.ServerClosesMissed += l.ServerClosesMissed
	return m
}

// connRecords returns the connection records src read (a Reader or a
// MultiReader), once it has been read to its end.
func connRecords(src session.Source) []session.ConnInfo {
	if s, ok := src.(interface{ Conns() []session.ConnInfo }); ok {
		return s.Conns()
	}
	return nil
}
