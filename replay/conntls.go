package replay

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/reprise-tool/reprise/replay/wire"
)

// TLSReport says what an https run's handshakes cost the target: each new
// connection makes one, resumed (from a session ticket) when the target
// issues tickets, as a browser's later connections resume. The replay
// keeps a TLS session cache as browsers do, so the target pays the
// handshakes its users paid.
type TLSReport struct {
	Handshakes uint64 `json:"handshakes"` // completed, resumed ones included
	Resumed    uint64 `json:"resumed"`
	Failed     uint64 `json:"failed"`
	// FailedBy counts failed handshakes by kind: certificate (not
	// trusted: give --ca or --sni), timeout, protocol (an alert, a reset,
	// an answer that is not TLS).
	FailedBy map[string]uint64 `json:"failed_by,omitempty"`
	// Latency is the handshake's time after the TCP connect.
	Latency  Histogram         `json:"latency"`
	Versions map[string]uint64 `json:"versions"` // by version: "TLS 1.3"
	ALPN     map[string]uint64 `json:"alpn"`     // by protocol: "h2", "http/1.1", "none"
}

// tlsReport makes the TLS part of the connection report from the
// clients' stats; nil when no handshake was tried (an http target).
func tlsReport(ss ...wire.TLSStats) *TLSReport {
	t := &TLSReport{}
	h := newHist()
	for _, s := range ss {
		t.Handshakes += s.Handshakes
		t.Resumed += s.Resumed
		t.FailedBy = addCounts(t.FailedBy, s.Failed)
		t.Versions = addCounts(t.Versions, s.Versions)
		t.ALPN = addCounts(t.ALPN, s.ALPN)
		for _, d := range s.Handshake {
			h.record(d)
		}
	}
	for _, n := range t.FailedBy {
		t.Failed += n
	}
	if t.Handshakes == 0 && t.Failed == 0 {
		return nil
	}
	t.Latency = h.summary(false)
	return t
}

// addCounts adds b's counts into a, making a when needed.
func addCounts(a, b map[string]uint64) map[string]uint64 {
	if len(b) == 0 {
		return a
	}
	if a == nil {
		a = make(map[string]uint64, len(b))
	}
	for k, n := range b {
		a[k] += n
	}
	return a
}

// mergeTLS adds a shard's TLS figures into m, the way mergeConnections
// adds the rest (latency percentiles: the highest shard's).
func mergeTLS(m *TLSReport, s *TLSReport) *TLSReport {
	if s == nil {
		return m
	}
	if m == nil {
		m = &TLSReport{}
	}
	m.Handshakes += s.Handshakes
	m.Resumed += s.Resumed
	m.Failed += s.Failed
	m.FailedBy = addCounts(m.FailedBy, s.FailedBy)
	m.Versions = addCounts(m.Versions, s.Versions)
	m.ALPN = addCounts(m.ALPN, s.ALPN)
	mergeUpper(&m.Latency, s.Latency)
	return m
}

// summary writes the TLS line of the summary:
// "tls 412 handshakes (388 resumed), p50 0.90ms p99 3.10ms; TLS 1.3 412; alpn h2 412".
func (t *TLSReport) summary(b *strings.Builder) {
	if t == nil {
		return
	}
	fmt.Fprintf(b, "  tls          %d handshakes (%d resumed), p50 %s p99 %s max %s; %s; alpn %s",
		t.Handshakes, t.Resumed, FormatMS(t.Latency.P50), FormatMS(t.Latency.P99), FormatMS(t.Latency.Max),
		counts(t.Versions), counts(t.ALPN))
	if t.Failed > 0 {
		fmt.Fprintf(b, "; %d failed (%s)", t.Failed, counts(t.FailedBy))
	}
	b.WriteByte('\n')
}

// counts writes m as "k n, k n", most first (then by name).
func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
