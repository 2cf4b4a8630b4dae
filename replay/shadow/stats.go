package shadow

import (
	"time"
)

// Stats are the mirror's counters.
type Stats struct {
	Elapsed   time.Duration `json:"elapsed_ns"`
	Seen      uint64        `json:"seen"`      // exchanges read from the source
	Sessions  uint64        `json:"sessions"`  // sessions mirrored (sampled in)
	Unsampled uint64        `json:"unsampled"` // exchanges of sessions sampled out
	// Skipped counts exchanges not mirrored by choice: "write" (a method
	// that is not safe, without AllowWrites), "auth" (a login or refresh
	// POST without AllowAuth or AllowWrites), "incomplete" (no whole
	// request), "broken" (the session lost a token exchange). Exchanges
	// recorded over HTTP/2, gRPC included, are mirrored over HTTP/2.
	Skipped map[string]uint64 `json:"skipped,omitempty"`
	// Shed counts exchanges dropped because the mirror could not keep up:
	// "queue" (a session's queue was full), "sessions" (too many
	// sessions), "down" (the shadow failed several times in a row and is
	// left alone for a while), "stopped" (after a guard stopped the
	// mirror, or at the end).
	Shed         map[string]uint64 `json:"shed,omitempty"`
	Uncorrelated uint64            `json:"uncorrelated"` // requests with a value the shadow never issued
	Sent         uint64            `json:"sent"`         // requests sent to the shadow (twice-sent count twice)
	Errors       uint64            `json:"errors"`       // of those, without an answer
	Status5xx    uint64            `json:"status_5xx"`
	Compared     uint64            `json:"compared"`
	NoiseSamples uint64            `json:"noise_samples"`
	P50, P99     time.Duration     `json:"-"`
	P50ms        float64           `json:"p50_ms"`
	P99ms        float64           `json:"p99_ms"`
}

// Stats returns the counters so far; safe to call at any time.
func (m *Mirror) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Stats{
		Elapsed: time.Since(m.start), Seen: m.seen.Load(), Sessions: m.sessionsN.Load(), Unsampled: m.unsampled.Load(),
		Uncorrelated: m.uncorrelated.Load(), Sent: m.sent.Load(), Errors: m.errs.Load(), Status5xx: m.s5xx.Load(),
		Compared: m.compared.Load(), NoiseSamples: m.noise.Load(),
		Skipped: copyMap(m.skipped), Shed: copyMap(m.shed),
	}
	if m.hist.TotalCount() > 0 {
		s.P50 = time.Duration(m.hist.ValueAtQuantile(50)) * time.Microsecond
		s.P99 = time.Duration(m.hist.ValueAtQuantile(99)) * time.Microsecond
		s.P50ms, s.P99ms = float64(s.P50)/1e6, float64(s.P99)/1e6
	}
	return s
}

// ShedTotal is the number of exchanges shed for any reason.
func (s Stats) ShedTotal() uint64 {
	var n uint64
	for _, v := range s.Shed {
		n += v
	}
	return n
}

func copyMap(m map[string]uint64) map[string]uint64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
