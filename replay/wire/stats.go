package wire

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ConnStats says what a Client's connections did: how many it opened, how
// many exchanges went on a connection that had carried one before, which
// side ended them, and how long opening one took (the TCP connect and,
// for https, the TLS handshake).
type ConnStats struct {
	Opened         uint64
	Reused         uint64 // exchanges written on a connection already used
	ClosedByClient uint64 // the client closed it, or asked the server to (Connection: close)
	ClosedByServer uint64 // the server said close, or closed or reset it
	// Connect holds the connect latencies, in the order they happened,
	// up to maxConnectSamples of them.
	Connect []time.Duration
	// TLS says what the https connections' handshakes cost (zero for http).
	TLS TLSStats
}

// maxConnectSamples bounds the connect latencies a Client keeps: a run
// that opens more connections keeps the first ones.
const maxConnectSamples = 1 << 16

// connStats is ConnStats under the Client, counted by every goroutine
// that dials, writes or closes.
type connStats struct {
	opens, reuses, byClient, byServer atomic.Uint64

	mu      sync.Mutex
	connect []time.Duration
	tls     tlsStats
}

func (s *connStats) opened(d time.Duration) {
	s.opens.Add(1)
	s.mu.Lock()
	if len(s.connect) < maxConnectSamples {
		s.connect = append(s.connect, d)
	}
	s.mu.Unlock()
}

func (s *connStats) closed(byServer bool) {
	if byServer {
		s.byServer.Add(1)
	} else {
		s.byClient.Add(1)
	}
}

// Stats returns what the client's connections did so far.
func (w *Client) Stats() ConnStats { return w.stats.snapshot() }

func (s *connStats) snapshot() ConnStats {
	s.mu.Lock()
	connect := slices.Clone(s.connect)
	ts := s.tls.snapshot()
	s.mu.Unlock()
	return ConnStats{
		Opened: s.opens.Load(), Reused: s.reuses.Load(),
		ClosedByClient: s.byClient.Load(), ClosedByServer: s.byServer.Load(),
		Connect: connect, TLS: ts,
	}
}
