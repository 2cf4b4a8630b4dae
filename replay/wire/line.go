package wire

import (
	"context"
	"sync"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// Line is one connection that a caller keeps for one sequence of
// exchanges, as a recorded client kept its own: it never goes to the pool
// nor comes from it. It opens when first used (or ahead of that, by Open)
// and ends when its caller closes it, when a request asks the server to
// close it (Request.Close), or when the server closes it; used again, it
// opens a new connection.
//
// Requests may be pipelined: Write puts a request on the wire and returns
// the connection that carries it, and Read, given that connection, reads
// the response of the oldest request not answered yet. Writes come one at
// a time in the line's order, and so do Reads; a Write may run while a
// Read waits for an earlier response.
type Line struct {
	w *Client

	mu     sync.Mutex
	c      *Conn // nil when closed
	queued int   // requests written on c and not yet read
}

// NewLine returns a line of w, with no connection open yet.
func (w *Client) NewLine() *Line { return &Line{w: w} }

// Open opens the line's connection unless it has one, so that its first
// request does not wait for the connect.
func (l *Line) Open(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.conn(ctx)
	return err
}

// conn returns the line's connection, dialling one if it has none; l.mu
// is held.
func (l *Line) conn(ctx context.Context) (*Conn, error) {
	if l.c == nil {
		c, err := l.w.dial(ctx)
		if err != nil {
			return nil, err
		}
		l.c = c
	}
	return l.c, nil
}

// drop forgets c, when it is the line's, and closes it; l.mu is held.
func (l *Line) drop(c *Conn, byServer bool) {
	if l.c == c {
		l.c, l.queued = nil, 0
	}
	l.w.discard(c, byServer)
}

// Write writes req on the line's connection, opening one if needed, and
// returns that connection for Read. Like DoOn, it does not put a request
// that must not be sent twice on a kept connection the server has closed
// meanwhile (see alive), and a write that fails on a kept connection with
// no response awaited is tried once more on a new one.
func (l *Line) Write(ctx context.Context, req *Request) (*Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt := 0; ; attempt++ {
		c, err := l.conn(ctx)
		if err != nil {
			return nil, err
		}
		idle := c.used && l.queued == 0
		if idle && !req.idempotent() && !c.sendable() {
			l.drop(c, true)
			continue
		}
		c.writeDeadline(req.now(), l.w.cfg.Timeout)
		again, err := c.write(req)
		if err == nil {
			if again {
				l.w.stats.reuses.Add(1)
			}
			l.queued++
			return c, nil
		}
		l.drop(c, Kind(err) == KindReset)
		if !idle || attempt > 0 {
			return nil, err
		}
	}
}

// Read reads the response to req, which Write put on c; its deadline
// counts from req.At, when set (see Request). When the
// response ends the connection (the server said so, or req asked it to),
// or reading it failed, the line closes the connection. A request that
// was alone on a kept connection and got no byte of answer, the server
// having closed the connection as it arrived, is sent once more on a new
// connection when sending it twice does no harm (see idempotent).
func (l *Line) Read(ctx context.Context, c *Conn, req *Request) (*session.Response, int64, error) {
	for attempt := 0; ; attempt++ {
		now := req.now()
		if attempt > 0 {
			now = time.Now()
		}
		c.readDeadline(now, l.w.cfg.Timeout)
		resp, n, keep, got, err := c.read(req, l.w.readLimit, l.w.cfg.KeepReason)
		if err == nil && keep {
			l.mu.Lock()
			if l.c == c {
				l.queued--
			}
			l.mu.Unlock()
			return resp, n, nil
		}
		l.mu.Lock()
		alone := l.c == c && l.queued == 1 && c.used && c.writes > 1
		if err == nil {
			l.drop(c, !req.Close)
			l.mu.Unlock()
			return resp, n, nil
		}
		l.drop(c, Kind(err) == KindReset)
		l.mu.Unlock()
		if !alone || got || attempt > 0 || !retryable(err) || !req.idempotent() {
			return nil, n, err
		}
		if c, err = l.Write(ctx, req); err != nil {
			return nil, 0, err
		}
	}
}

// Close closes the line's connection, if it has one: the client ends it.
func (l *Line) Close() {
	l.mu.Lock()
	if c := l.c; c != nil {
		l.drop(c, false)
	}
	l.mu.Unlock()
}

// ServerClosed reports whether the server has closed the line's idle
// connection (then dropped, counted as closed by the server), or a
// response already ended it; false while it is open or busy.
func (l *Line) ServerClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.c
	if c == nil {
		return true
	}
	if l.queued > 0 || c.alive() {
		return false
	}
	l.drop(c, true)
	return true
}

// writeDeadline and readDeadline bound a write and a read each by the
// timeout, moving a deadline only once it has aged by 1/64 of it (see
// exchange); a line's Write and Read may run at once, so each moves its
// own.
func (c *Conn) writeDeadline(now time.Time, timeout time.Duration) {
	if d := now.Add(timeout); d.Sub(c.wdeadline) > timeout/64 {
		c.c.SetWriteDeadline(d)
		c.wdeadline = d
	}
}

func (c *Conn) readDeadline(now time.Time, timeout time.Duration) {
	if d := now.Add(timeout); d.Sub(c.deadline) > timeout/64 {
		c.c.SetReadDeadline(d)
		c.deadline = d
	}
}
