package shadow

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/reprise-tool/reprise/replay/correlate"
	"github.com/reprise-tool/reprise/replay/guard"
	"github.com/reprise-tool/reprise/session"
)

// The reading side of the mirror: which exchanges are mirrored, and the
// per-session queues and workers that keep each session in order without
// ever blocking the reader.

func safeMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "OPTIONS" }

// authExchange reports whether the tracker saw x log in, refresh or out.
func authExchange(x *session.Exchange) bool {
	for _, ev := range x.Tokens {
		switch ev.Kind {
		case session.TokenLogin, session.TokenRefresh, session.TokenLogout, session.TokenIssue:
			return true
		}
	}
	return false
}

// sampled picks whole sessions by a hash of their key.
func (m *Mirror) sampled(key string) bool {
	if m.cfg.Sample >= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return float64(h.Sum64()%1_000_000) < m.cfg.Sample*1_000_000
}

// sessionKey is the session whose queue x joins: the tracker's, or x's
// connection when the tracker left none. The tracker reads gRPC tokens
// out of protobuf logins and refreshes, so a gRPC login and the calls
// carrying its token share a queue, and the shadow's token, learned from
// the shadow's answer to that login (correlate.Table.LearnGRPC), is in
// the table the later calls are rewritten with.
func sessionKey(x *session.Exchange) string {
	if x.Session != "" {
		return x.Session
	}
	return fmt.Sprintf("conn-%d", x.Conn.ID)
}

// dispatch runs on the reading goroutine: it must never block.
func (m *Mirror) dispatch(stopper *guard.Stopper, x *session.Exchange) {
	m.seen.Add(1)
	m.tracker.Observe(x)
	if m.seen.Load()%1024 == 0 {
		// The mirror needs no timelines: forget those of finished
		// sessions, so memory stays bounded by the active ones.
		m.tracker.TakeFinished()
	}
	key := sessionKey(x)
	if !m.sampled(key) {
		m.unsampled.Add(1)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if stopper.Issue().Err() != nil {
		m.shed["stopped"]++
		return
	}
	s := m.sessions[key]
	if s != nil && s.broken {
		m.skipped["broken"]++
		return
	}
	auth := authExchange(x)
	switch {
	case x.Flags&(session.FlagRequestTruncated|session.FlagRequestGap) != 0:
		m.skipped["incomplete"]++
		return
	case safeMethod(x.Request.Method) && !(auth && !m.cfg.AllowAuth && !m.cfg.AllowWrites):
	case m.cfg.AllowWrites:
	case auth && m.cfg.AllowAuth:
	case auth:
		m.skipped["auth"]++
		return
	default:
		m.skipped["write"]++
		return
	}
	now := time.Now()
	if s == nil {
		if len(m.sessions) >= m.cfg.MaxSessions && now.Sub(m.swept) > time.Second {
			m.sweepLocked(now)
			m.swept = now
		}
		if len(m.sessions) >= m.cfg.MaxSessions {
			m.shed["sessions"]++
			return
		}
		s = &sess{key: key, q: make(chan *session.Exchange, m.cfg.Queue), table: correlate.NewTable()}
		if m.baseline != nil {
			s.btable = correlate.NewTable()
		}
		m.sessions[key] = s
		m.sessionsN.Add(1)
	}
	s.lastSeen = now
	for _, ev := range x.Tokens {
		if ev.Kind == session.TokenLogout {
			s.ended = true
		}
	}
	size := int64(len(x.Request.Body) + len(x.Response.Body))
	if m.queued+size > m.cfg.MaxQueuedBytes {
		m.shed["queue"]++
		if auth {
			s.broken = true
		}
		return
	}
	select {
	case s.q <- x:
		m.queued += size
	default:
		m.shed["queue"]++
		if auth {
			s.broken = true
		}
		return
	}
	if !s.running {
		s.running = true
		m.wg.Add(1)
		go m.work(stopper, s)
	}
}

// sweepLocked forgets sessions idle for idleAfter with nothing queued. It
// runs at most once a second, when the session cap is reached.
func (m *Mirror) sweepLocked(now time.Time) {
	for k, s := range m.sessions {
		if !s.running && now.Sub(s.lastSeen) > idleAfter {
			delete(m.sessions, k)
		}
	}
}

// work sends one session's queue in order, then exits; dispatch starts it
// again when more arrives.
func (m *Mirror) work(stopper *guard.Stopper, s *sess) {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		if len(s.q) == 0 {
			s.running = false
			if s.ended && m.sessions[s.key] == s {
				delete(m.sessions, s.key)
			}
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		x := <-s.q
		m.mu.Lock()
		m.queued -= int64(len(x.Request.Body) + len(x.Response.Body))
		m.mu.Unlock()
		m.mirror(stopper, s, x)
	}
}
