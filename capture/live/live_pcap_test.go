//go:build pcap && cgo && linux

package live

import (
	"fmt"
	"testing"
)

// TestLoopbackRawExpression runs the loopback check with a tcpdump
// expression compiled by libpcap instead of the built-in filter.
func TestLoopbackRawExpression(t *testing.T) {
	checkLoopback(t, func(port uint16) Config { return Config{Expr: fmt.Sprintf("tcp port %d", port)} })
}
