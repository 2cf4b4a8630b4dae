//go:build !unix || aix

package wire

import "net"

// Peeks says whether peerClosed looks at the socket here.
const Peeks = false

// peerClosed is not checked here (no MSG_DONTWAIT on AIX, no MSG_PEEK
// through syscall on Windows): a request that meets a closed pooled
// connection fails as it would without the check (see Client.DoOn).
func peerClosed(net.Conn) bool { return false }
