package capture

import (
	"io"
	"sync"

	"github.com/reprise-tool/reprise/session"
)

// Pipe turns exchanges pushed by a consumer of another source (a
// session.Sink: WriteExchange) into a source Record can pull (Next), so a
// program that already reads a stream, such as a shadow mirror, records a
// copy of it through the one recording loop. WriteExchange blocks while the
// pipe's queue is full, as a recording writer blocks on its disk.
//
// One goroutine writes and then calls Close; one reads. After the reader
// gave up (Fail), writes return its error at once.
type Pipe struct {
	ch   chan *session.Exchange
	done chan struct{}
	once sync.Once
	err  error
}

var (
	_ session.Sink   = (*Pipe)(nil)
	_ session.Source = (*Pipe)(nil)
)

// NewPipe returns a Pipe that holds up to size exchanges (at least 1).
func NewPipe(size int) *Pipe {
	return &Pipe{ch: make(chan *session.Exchange, max(size, 1)), done: make(chan struct{})}
}

// WriteExchange queues x for Next; the reader owns x from then on.
func (p *Pipe) WriteExchange(x *session.Exchange) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	select {
	case p.ch <- x:
		return nil
	case <-p.done:
		return p.err
	}
}

// Close says no more exchanges come: Next returns io.EOF after the queued
// ones. It must not be called twice, nor during a WriteExchange.
func (p *Pipe) Close() error {
	close(p.ch)
	return nil
}

// Fail tells the writer the reader has stopped (its recording failed):
// WriteExchange returns err from now on. Later calls do nothing.
func (p *Pipe) Fail(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	p.once.Do(func() {
		p.err = err
		close(p.done)
	})
}

// Buffered returns how many exchanges are queued for Next: with none,
// Next blocks, and the recording loop hands over what it holds first.
func (p *Pipe) Buffered() int { return len(p.ch) }

// Next returns the next exchange written, blocking until one is, and
// io.EOF after Close once the queue is empty.
func (p *Pipe) Next() (*session.Exchange, error) {
	x, ok := <-p.ch
	if !ok {
		return nil, io.EOF
	}
	return x, nil
}
