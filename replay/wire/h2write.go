package wire

import (
	"fmt"
	"runtime"
	"time"
)

// This file is how frames reach the socket: one write lock for the
// framer and the HPACK encoder, a flusher that writes without it, and a
// writer goroutine that opens the streams with no body.

// h2WriteBuf appends the framer's frames to wbuf; the write lock is held.
type h2WriteBuf H2Conn

func (b *h2WriteBuf) Write(p []byte) (int, error) {
	b.wbuf = append(b.wbuf, p...)
	return len(p), nil
}

// writeFrames runs write under the write lock (see lockW).
func (c *H2Conn) writeFrames(write func() error) error {
	c.lockW()
	return c.unlockW(write())
}

// h2Backlog bounds the frames waiting in wbuf while the flusher writes:
// past it, writers wait for the socket (see lockW).
const h2Backlog = 256 << 10

// lockW takes the write lock, waiting while the frames not yet written
// exceed h2Backlog, writes the HEADERS queued before any other frame
// (see queueHeaders), and moves the write deadline once it has aged by 1/64
// of the timeout (as Conn does).
func (c *H2Conn) lockW() {
	c.wmu.Lock()
	for c.flushing && len(c.wbuf) >= h2Backlog {
		c.wcond.Wait()
	}
	if len(c.hq) > 0 {
		c.writeQueued()
	}
	if to := c.w.cfg.Timeout; to > 0 {
		if d := time.Now().Add(to); d.Sub(c.wdeadline) > to/64 {
			c.nc.SetWriteDeadline(d)
			c.wdeadline = d
		}
	}
}

// unlockW releases the write lock and sees the frames written go out.
// The first writer to find no flush under way becomes the flusher: it
// takes wbuf and writes it to the socket without the lock, then takes
// what others wrote meanwhile, until nothing is left. The others only add
// their frames to wbuf and go on. So streams opened together share a
// write (one system call for many HEADERS frames, as h2load's event loop
// does) and no writer waits for another's system call. A failed write
// ends the connection, and with it every stream whose frames it held.
func (c *H2Conn) unlockW(err error) error {
	if c.flushing || len(c.wbuf) == 0 {
		c.wmu.Unlock()
		return err
	}
	c.flushing = true
	// Let the goroutines ready to run add their frames first: streams
	// the dispatcher starts together then share the system call.
	c.wmu.Unlock()
	runtime.Gosched()
	c.wmu.Lock()
	var werr error
	for len(c.wbuf) > 0 && werr == nil {
		c.wbuf, c.sbuf = c.sbuf[:0], c.wbuf
		c.wcond.Broadcast()
		c.wmu.Unlock()
		_, werr = c.nc.Write(c.sbuf)
		c.wmu.Lock()
	}
	c.flushing = false
	if werr != nil {
		c.wbuf = c.wbuf[:0]
	}
	c.wcond.Broadcast()
	c.wmu.Unlock()
	if werr != nil {
		c.close(werr, true)
		if err == nil {
			err = werr
		}
	}
	return err
}

// The states of a stream's queued HEADERS (h2Stream.hstate).
const (
	hQueued  = iota // in hq, not written yet
	hWritten        // written to the framer
	hDropped        // never to be written: the stream ended first
)

// h2Job is a stream waiting in hq for its HEADERS.
type h2Job struct {
	st  *h2Stream
	req *H2Request
}

// queueHeaders opens a stream that has no body: it takes the next id,
// registers st and queues its HEADERS for writeLoop, which encodes and
// writes them with those of the streams queued beside it. The HPACK
// encoding, the framing and the system call thus run on the connection's
// own goroutine (whose stack has long grown to fit them), not on one of
// the many short-lived goroutines of the streams, and the streams opened
// together share one write. Ids are taken in queue order and every other
// writer first writes what is queued (see lockW), so HEADERS go out in
// increasing id order. The caller must call settle before it lets go of
// req.
func (c *H2Conn) queueHeaders(st *h2Stream, req *H2Request) error {
	c.wmu.Lock()
	if err := c.open(st); err != nil {
		c.wmu.Unlock()
		return err
	}
	c.hq = append(c.hq, h2Job{st, req})
	kick := len(c.hq) == 1
	c.wmu.Unlock()
	if kick {
		select {
		case c.hkick <- struct{}{}:
		default:
		}
	}
	return nil
}

// settle makes sure a queued stream's request is no longer read: its
// HEADERS were written, or now never will be.
func (c *H2Conn) settle(st *h2Stream) {
	if st.hstate.Load() == hWritten {
		return
	}
	c.wmu.Lock() // the writer encodes under it: when we hold it, it does not
	st.hstate.CompareAndSwap(hQueued, hDropped)
	c.wmu.Unlock()
}

// open takes the next stream id for st and registers it, or says why no
// stream may open; the write lock is held.
func (c *H2Conn) open(st *h2Stream) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.goAway != nil {
		c.release() // the waiters for a slot were woken when err or goAway was set
		if c.err != nil {
			return fmt.Errorf("%w: %w", errNotSent, c.err)
		}
		g := *c.goAway
		g.Unprocessed = true
		return &g
	}
	st.id = c.nextID
	if c.nextID += 2; c.nextID >= 1<<31-1 {
		c.spent.Store(true)
	}
	st.sendWin = int64(c.initWin)
	c.streams[st.id] = st
	return nil
}

// writeQueued encodes and writes the HEADERS of the queued streams that
// are still waiting; the write lock is held. An encoding error ends the
// connection.
func (c *H2Conn) writeQueued() {
	c.mu.Lock()
	maxFrame := int(c.maxFrame)
	c.mu.Unlock()
	for i, j := range c.hq {
		c.hq[i] = h2Job{}
		if j.st.hstate.Load() != hQueued || j.st.ended() {
			continue
		}
		c.encBuf = c.encBuf[:0]
		c.encodeRequest(j.req)
		err := c.writeBlock(j.st.id, c.encBuf, true, maxFrame)
		j.st.hstate.Store(hWritten)
		if err != nil {
			c.close(err, true)
		}
	}
	c.hq = c.hq[:0]
}

// writeLoop writes the queued HEADERS until the connection ends.
//
// Before it writes, it yields while the queue grows: the streams a read
// completed wake their goroutines together, and each of them opens its
// next stream after its own work, so the queue fills over a few turns of
// the scheduler. Writing once they are done (or after h2Yields turns)
// sends them in one system call, as an event loop like h2load's writes
// once per read; a loopback write costs as much as a request's HPACK,
// framing and bookkeeping together.
func (c *H2Conn) writeLoop() {
	for {
		select {
		case <-c.hkick:
		case <-c.done:
			return
		}
		for i, n := 0, c.queued(); i < h2Yields; i++ {
			runtime.Gosched()
			m := c.queued()
			if m == n {
				break
			}
			n = m
		}
		c.lockW()
		_ = c.unlockW(nil) // a failed write ends the connection and its streams
	}
}

// h2Yields bounds the turns writeLoop yields for before it writes.
const h2Yields = 16

// queued returns the number of streams waiting for their HEADERS.
func (c *H2Conn) queued() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.hq)
}
