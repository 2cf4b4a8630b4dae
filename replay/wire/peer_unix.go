//go:build unix && !aix

package wire

import (
	"net"
	"syscall"
)

// Peeks says whether peerClosed looks at the socket here.
const Peeks = true

// peerClosed reports whether the server has closed c or sent on it
// unasked, by peeking at the socket without waiting: a read through
// net.Conn with a deadline already past does not reach the socket at all.
// Connections that are not TCP are taken as open.
func peerClosed(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// 0 bytes and no error is the server's close; bytes are a
		// response to nothing; EAGAIN is an open, quiet connection.
		closed = n > 0 || (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR)
		return true
	})
	return closed || err != nil
}
