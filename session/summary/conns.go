package summary

import (
	"fmt"
	"slices"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// Conns is what a recording's connection records say (format 1.2): how
// many connections there were, who closed them, how many exchanges each
// carried and how long each lasted.
type Conns struct {
	Connections    int64 `json:"connections"`
	ClosedByClient int64 `json:"closed_by_client"`
	ClosedByServer int64 `json:"closed_by_server"`
	// Open counts those neither side closed while the capture watched
	// (idle, or still open at its end).
	Open   int64 `json:"open"`
	Resets int64 `json:"resets"`
	// Exchanges and DurationMS are the per-connection figures: exchanges
	// carried, and open to first close (connections with a close).
	Exchanges  Spread `json:"exchanges"`
	DurationMS Spread `json:"duration_ms"`
}

// Spread is the median, 99th percentile and largest of a per-connection
// figure, by the nearest rank (session.Quantile) as every report has them.
type Spread struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// maxConnSamples bounds the per-connection figures a Builder keeps for
// the spreads; the counts go on past it.
const maxConnSamples = 1 << 20

// addConns adds a file's connection records.
func (b *Builder) addConns(cs []session.ConnInfo) {
	if len(cs) == 0 {
		return
	}
	if b.conns == nil {
		b.conns = &connBuilder{}
	}
	c := b.conns
	for _, ci := range cs {
		c.s.Connections++
		switch ci.ClosedBy {
		case session.PartyClient:
			c.s.ClosedByClient++
		case session.PartyServer:
			c.s.ClosedByServer++
		default:
			c.s.Open++
		}
		if ci.Reset {
			c.s.Resets++
		}
		if len(c.exchanges) < maxConnSamples {
			c.exchanges = append(c.exchanges, float64(ci.Exchanges))
			if ci.ClosedBy != session.PartyNone && ci.Closed > ci.Opened {
				c.durations = append(c.durations, float64(ci.Closed-ci.Opened)/1e6)
			}
		}
	}
}

// connBuilder gathers Conns.
type connBuilder struct {
	s                    Conns
	exchanges, durations []float64
}

func (c *connBuilder) summary() *Conns {
	if c == nil {
		return nil
	}
	s := c.s
	s.Exchanges, s.DurationMS = spread(c.exchanges), spread(c.durations)
	return &s
}

func spread(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	slices.Sort(v)
	return Spread{P50: session.Quantile(v, 0.5), P99: session.Quantile(v, 0.99), Max: v[len(v)-1]}
}

// writeConns prints the connection line, when the recording has records.
func (s *Summary) writeConns(b *strings.Builder) {
	c := s.Connections
	if c == nil {
		return
	}
	fmt.Fprintf(b, "connections  %d: closed %d by the client, %d by the server (%d resets), %d left open; per connection %.0f exchanges p50, %.0f max; lasted %.1f ms p50, %.1f ms max\n",
		c.Connections, c.ClosedByClient, c.ClosedByServer, c.Resets, c.Open, c.Exchanges.P50, c.Exchanges.Max, c.DurationMS.P50, c.DurationMS.Max)
}
