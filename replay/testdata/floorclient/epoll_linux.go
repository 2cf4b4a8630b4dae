package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"

	"syscall"
	"unsafe"

	"github.com/reprise-tool/reprise/session/http1"
)

// econn is one connection of an epoll loop: its socket, its requests,
// and the bytes of the response being read.
type econn struct {
	*conn
	fd   int
	next int     // the request whose response is awaited
	cur  request // that request
	buf  []byte  // what has been read of that response
}

// runEpoll shares the connections among GOMAXPROCS loops, each a
// goroutine running its own epoll set.
func runEpoll(target string, conns []*conn) (int, error) {
	addr, err := net.ResolveTCPAddr("tcp4", target)
	if err != nil {
		return 0, err
	}
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	loops := runtime.GOMAXPROCS(0)
	return each(loops, func(l int) (int, error) {
		var mine []*conn
		for i := l; i < len(conns); i += loops {
			mine = append(mine, conns[i])
		}
		return loop(sa, mine)
	})
}

// loop runs conns on one epoll set to their ends. A connection writes its
// first request once the connect completes (EPOLLOUT), then each next
// one as soon as the response before it is whole; the set is
// edge-triggered, so a readable connection is read until EAGAIN.
func loop(sa *syscall.SockaddrInet4, conns []*conn) (int, error) {
	if len(conns) == 0 {
		return 0, nil
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(ep)
	byFD := map[int32]*econn{}
	for _, c := range conns {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		defer syscall.Close(fd)
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		if err := syscall.Connect(fd, sa); err != nil && err != syscall.EINPROGRESS {
			return 0, err
		}
		byFD[int32(fd)] = &econn{conn: c, fd: fd, next: -1, buf: make([]byte, 0, 16<<10)}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | -syscall.EPOLLET&0xffffffff, Fd: int32(fd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return 0, err
		}
	}
	var total int
	active := len(conns)
	events := make([]syscall.EpollEvent, 128)
	for active > 0 {
		k, err := syscall.EpollWait(ep, events, int(stall.Milliseconds()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if k == 0 {
			return total, fmt.Errorf("no response in %v (%d connections waiting)", stall, active)
		}
		for _, ev := range events[:k] {
			c := byFD[ev.Fd]
			if c.next == c.n {
				continue // done: a late event (the peer's idle close) is no news
			}
			if ev.Events&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 && c.next < c.n {
				err := errors.New("closed by the server")
				if e, _ := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); e != 0 {
					err = syscall.Errno(e) // a refused connect, a reset
				}
				return total, c.failed(max(c.next, 0), err)
			}
			if c.next < 0 {
				if ev.Events&syscall.EPOLLOUT == 0 {
					continue
				}
				c.next = 0
				if err := c.write(); err != nil {
					return total, c.failed(0, err)
				}
				continue
			}
			n, err := c.read()
			total += n
			if err != nil {
				return total, c.failed(c.next, err)
			}
			if c.next == c.n {
				active--
			}
		}
	}
	return total, nil
}

func (c *econn) write() error {
	var ok bool
	if c.cur, ok = c.request(c.next); !ok {
		return errRecordingEnded
	}
	req := c.cur.wire
	for len(req) > 0 {
		n, err := syscall.Write(c.fd, req)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		req = req[n:]
	}
	return nil
}

// read reads what the socket holds and completes every whole response
// in it, writing the next request after each; it returns the responses
// completed.
func (c *econn) read() (int, error) {
	done := 0
	for c.next < c.n {
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, 0)[:len(c.buf)]
		}
		n, err := syscall.Read(c.fd, c.buf[len(c.buf):cap(c.buf)])
		if err == syscall.EAGAIN {
			return done, nil
		}
		if err != nil {
			return done, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return done, errors.New("closed by the server")
		}
		c.buf = c.buf[:len(c.buf)+n]
		for {
			end := bytes.Index(c.buf, []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			end += 4
			status, length, err := contentLength(unsafe.String(&c.buf[0], end), c.cur.method)
			if err != nil {
				return done, err
			}
			if len(c.buf) < end+length {
				break
			}
			c.buf = c.buf[:copy(c.buf, c.buf[end+length:])]
			if status/100 != 2 {
				c.not2xx++
			}
			c.next++
			done++
			if c.next == c.n {
				return done, nil
			}
			if err := c.write(); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// contentLength parses the head (status line and fields, up to the empty
// line) with the replay's parser and returns the status and the body's
// length.
func contentLength(head string, method string) (status, length int, err error) {
	var f http1.Framing
	start, _ := http1.ParseHead(head, &f, nil)
	_, status, _, ok := http1.ParseStatusLine(start)
	if !ok {
		return 0, 0, fmt.Errorf("bad status line %q", start)
	}
	body, err := f.ResponseBody(method, status)
	if err != nil {
		return 0, 0, err
	}
	if body.Kind != http1.LengthBody && body.Kind != http1.NoBody {
		return 0, 0, errors.New("only Content-Length bodies are read here")
	}
	return status, int(body.Length), nil
}
