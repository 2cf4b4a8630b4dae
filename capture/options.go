package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
	"github.com/reprise-tool/reprise/session"
)

// Defaults of the packet pipeline.
const (
	// DefaultMaxBody is the per-body cap: longer bodies keep their first
	// DefaultMaxBody bytes and are flagged truncated.
	DefaultMaxBody = 1 << 20
	// DefaultIdleTimeout closes a connection that sent no packet for this
	// long (in packet time), emitting what it holds.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultGapTimeout is how long out-of-order data waits for a missing
	// segment before the segment is declared lost and the stream moves on.
	DefaultGapTimeout = 2 * time.Second
	// DefaultReorderWindow bounds how long a finished exchange waits for
	// earlier-started ones, so exchanges come out in RequestStart order.
	DefaultReorderWindow = 10 * time.Second
	// DefaultDedupeWindow is how many recent packets are remembered to
	// drop a packet seen twice (on lo, each packet shows up outgoing and
	// incoming).
	DefaultDedupeWindow = 256
)

// Option configures the packet pipeline. Options are validated when the
// pipeline is built.
type Option func(*options) error

type options struct {
	ports         []uint16
	hosts         []netip.Addr
	maxBody       int64
	idle          time.Duration
	gap           time.Duration
	reorder       time.Duration
	maxHeld       int
	dedupe        int
	hooks         []func(*session.Exchange)
	pagesPerConn  int
	pagesTotal    int
	maxPending    int
	flushInterval time.Duration
	hookWorkers   int
	keys          *tlsdecrypt.KeyLog
	keyWait       int
}

func defaultOptions() options {
	return options{
		maxBody:       DefaultMaxBody,
		idle:          DefaultIdleTimeout,
		gap:           DefaultGapTimeout,
		reorder:       DefaultReorderWindow,
		maxHeld:       100_000,
		dedupe:        DefaultDedupeWindow,
		pagesPerConn:  1024,    // 1024 pages of 1900 bytes: about 2 MB waiting per connection
		pagesTotal:    131_072, // about 250 MB of out-of-order data in all
		flushInterval: time.Second,
	}
}

// WithPorts keeps only TCP packets to or from these ports, and says the
// side using one of them is the server when a connection's SYN was not
// seen. The live source also puts them in its kernel filter.
func WithPorts(ports ...int) Option {
	return func(o *options) error {
		for _, p := range ports {
			if p <= 0 || p > 65535 {
				return fmt.Errorf("capture: port %d out of range 1-65535", p)
			}
			o.ports = append(o.ports, uint16(p))
		}
		return nil
	}
}

// WithHosts keeps only packets to or from these addresses.
func WithHosts(hosts ...netip.Addr) Option {
	return func(o *options) error {
		for _, h := range hosts {
			if !h.IsValid() {
				return errors.New("capture: invalid host address")
			}
			o.hosts = append(o.hosts, h.Unmap())
		}
		return nil
	}
}

// WithMaxBody caps the bytes kept of each body (default DefaultMaxBody);
// zero keeps headers only. BodySize always holds the full size.
func WithMaxBody(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("capture: max body %d is negative; use 0 to keep no body bytes", n)
		}
		o.maxBody = n
		return nil
	}
}

// WithIdleTimeout sets how long (in packet time) a silent connection is
// kept before it is closed and its exchanges emitted.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("capture: idle timeout %v must be positive", d)
		}
		o.idle = d
		return nil
	}
}

// WithGapTimeout sets how long (in packet time) out-of-order data waits
// for a missing segment before the gap is accepted as a loss.
func WithGapTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("capture: gap timeout %v must be positive", d)
		}
		o.gap = d
		return nil
	}
}

// WithReorderWindow bounds how long (in packet time) a finished exchange
// waits for exchanges that started earlier but are still in flight. An
// exchange in flight for longer than the window is emitted when it finishes,
// out of order. Zero emits exchanges as they finish.
func WithReorderWindow(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("capture: reorder window %v is negative", d)
		}
		o.reorder = d
		return nil
	}
}

// WithDedupe sets how many recent packets are remembered to drop exact
// duplicates (the same IP packet, byte for byte). Loopback capture through
// AF_PACKET sees every packet twice; a source that already drops outgoing
// copies on lo makes this a no-op. Zero turns it off.
func WithDedupe(window int) Option {
	return func(o *options) error {
		if window < 0 {
			return fmt.Errorf("capture: dedupe window %d is negative", window)
		}
		o.dedupe = window
		return nil
	}
}

// WithExchangeFunc adds a function applied to every exchange before Next
// returns it, in the order added: redaction and session identity plug in
// here.
func WithExchangeFunc(f func(*session.Exchange)) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("capture: nil exchange func")
		}
		o.hooks = append(o.hooks, f)
		return nil
	}
}

// WithHookWorkers runs the exchange funcs (WithExchangeFunc) on n
// goroutines, so costly ones such as body redaction use more than one core;
// exchanges still come out of Next in order. The funcs must then be safe
// for concurrent use. n <= 1 runs them in the goroutine that calls Next.
func WithHookWorkers(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("capture: hook workers %d is negative", n)
		}
		o.hookWorkers = n
		return nil
	}
}

// WithMaxPending bounds the requests waiting for responses on one
// connection (default 256).
func WithMaxPending(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("capture: max pending %d must be positive", n)
		}
		o.maxPending = n
		return nil
	}
}

// WithKeyLog decrypts TLS connections with the secrets in k (NSS key log
// format, as written by SSLKEYLOGFILE or tls.Config.KeyLogWriter) and
// parses their plaintext as HTTP/1.x. Without it, or for a connection
// whose secrets k lacks, the connection is counted as "tls" and as
// "tls no keys sni=NAME", so the user knows which key log to bring. The
// secrets are never written to the recording.
func WithKeyLog(k *tlsdecrypt.KeyLog) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("capture: nil key log")
		}
		o.keys = k
		return nil
	}
}

// WithKeyLogWait holds up to n bytes of a TLS connection's records while
// its secrets are not in the key log yet, and re-reads the key log's files
// once a flush interval: live capture sees the handshake a little before
// the client writes the key log line. Zero (the default, right for pcap
// files whose key log is complete) gives up at once. It applies with
// WithKeyLog only.
func WithKeyLogWait(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("capture: key log wait %d is negative", n)
		}
		o.keyWait = n
		return nil
	}
}
