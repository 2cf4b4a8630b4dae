package capture

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/reprise-tool/reprise/capture/httpstream"
	"github.com/reprise-tool/reprise/capture/tlsdecrypt"
)

// TLSErrors returns the first errors that stopped TLS connections from
// being read, each a *tlsdecrypt.RecordError naming the connection, the
// side and the record's offset.
func (p *Pipeline) TLSErrors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.tlsErrs)
}

// maxTLSErrs bounds the TLS errors kept by name, and maxTLSKinds the
// distinct TLS kinds counted (SNIs are many): past it they count as
// "tls other".
const (
	maxTLSErrs  = 32
	maxTLSKinds = 1000
)

// plaintext receives what the TLS reader decrypted. The HTTP parser was
// made with Config.TLS, so it finds HTTP/2 by the client preface (what
// ALPN h2 promises) and records it as h2, and HTTP/1 otherwise.
func (s *stream) plaintext(side int, data []byte, ts int64) {
	s.c.Feed(httpstream.Side(side), data, ts)
}

// room offers the body the HTTP parser is filling on side as the place
// to decrypt its next record to (tlsdecrypt.Config.Room).
func (s *stream) room(side int) []byte {
	if s.c == nil {
		return nil
	}
	return s.c.BodyRoom(httpstream.Side(side))
}

// tlsCheck accounts for a TLS connection that stopped.
func (s *stream) tlsCheck() {
	if s.tlsOff || s.tls.State() != tlsdecrypt.Stopped {
		return
	}
	s.tlsAccount()
}

// tlsAccount counts the connection once: decrypted with its parameters,
// or why it was not.
func (s *stream) tlsAccount() {
	if s.tlsOff {
		return
	}
	s.tlsOff = true
	info, err := s.tls.Info(), s.tls.Err()
	p := s.p
	if err != nil {
		p.mu.Lock()
		if len(p.tlsErrs) < maxTLSErrs {
			p.tlsErrs = append(p.tlsErrs, err)
		}
		p.mu.Unlock()
	}
	st := s.tls.Stats()
	if st.EarlySkipped > 0 {
		// 0-RTT data without its early secret in the key log: what it
		// carried is not recorded.
		p.tlsCount("tls 0-rtt data skipped")
	}
	// Decrypted: application data came out, or the connection was read
	// to its end with its keys and carried none (a handshake, then a
	// close; 0-RTT data the server rejected and never read).
	if st.Plaintext > 0 || s.tls.State() == tlsdecrypt.Decrypting || err == nil && st.Records > 0 {
		p.mu.Lock()
		kind := info.String()
		if _, ok := p.c.TLS[kind]; !ok && len(p.c.TLS) >= maxTLSKinds {
			kind = "other"
		}
		p.c.TLS[kind]++
		p.mu.Unlock()
		if err != nil && !errors.Is(err, tlsdecrypt.ErrTruncated) {
			p.tlsCount("tls " + tlsReason(err))
		}
		return
	}
	p.tlsCount("tls")
	if info.Version == 0 {
		return // not even a ServerHello: nothing more to say
	}
	if errors.Is(err, tlsdecrypt.ErrNoKeys) {
		sni := info.SNI
		if sni == "" {
			sni = "(none)" // the client connected by address
		}
		p.tlsCount("tls no keys sni=" + sni)
		return
	}
	p.tlsCount("tls " + tlsReason(err))
}

// tlsReason is a short kind for what stopped a TLS connection.
func tlsReason(err error) string {
	for _, e := range []struct {
		err  error
		kind string
	}{
		{tlsdecrypt.ErrNoKeys, "no keys"},
		{tlsdecrypt.ErrUnsupportedSuite, "unsupported suite"},
		{tlsdecrypt.ErrNoHandshake, "handshake not captured"},
		{tlsdecrypt.ErrDecrypt, "wrong key"},
		{tlsdecrypt.ErrTruncated, "truncated"},
		{tlsdecrypt.ErrGap, "gap"},
	} {
		if errors.Is(err, e.err) {
			return e.kind
		}
	}
	return "corrupt"
}

// tlsStart reports whether a connection's first bytes are a TLS record
// to read: a handshake record header.
func (p *Pipeline) tlsStart(b []byte) bool {
	return len(b) >= 3 && b[0] == 0x16 && b[1] == 3 && b[2] <= 4
}

func (p *Pipeline) tlsCount(kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.c.Unsupported[kind]; !ok && len(p.c.Unsupported) >= maxTLSKinds {
		kind = "tls other"
	}
	p.c.Unsupported[kind]++
}

// name names the connection in TLS errors.
func (s *stream) name() string {
	return fmt.Sprintf("conn %d %v-%v", s.cfg.ID, s.cfg.Addr[0], s.cfg.Addr[1])
}

// tlsKeyGrace is how long (in packet time) a closed TLS connection still
// waits for its secrets to reach the key log.
const tlsKeyGrace = 5 * time.Second

// waitTLS notes a connection whose records wait for their secrets.
func (p *Pipeline) waitTLS(s *stream) {
	if p.tlsWait == nil {
		p.tlsWait = map[*stream]struct{}{}
	}
	p.tlsWait[s] = struct{}{}
}

// retryTLS re-reads the key log and decrypts what waited for it; closed
// connections still without keys past tlsKeyGrace, or all of them when
// the input ends, are closed and counted.
func (p *Pipeline) retryTLS(final bool) {
	if len(p.tlsWait) == 0 {
		return
	}
	// A bad read is retried at the next flush; the file may be being
	// rotated.
	if p.o.keys != nil {
		_ = p.o.keys.Refresh()
	}
	for s := range p.tlsWait {
		s.tls.Retry(0)
		s.tlsCheck()
		switch {
		case !s.tls.Waiting():
			delete(p.tlsWait, s)
			s.endsDue()
			if s.ended {
				s.close()
			}
		case s.ended && (final || p.clock-s.endedAt > int64(tlsKeyGrace)):
			delete(p.tlsWait, s)
			s.close()
		}
	}
}

// endsDue applies the FINs that waited for the plaintext before them.
func (s *stream) endsDue() {
	for sd, at := range s.endAt {
		if at != 0 {
			s.endAt[sd] = 0
			s.end(httpstream.Side(sd), at-1)
		}
	}
}
