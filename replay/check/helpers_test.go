package check

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// t0 is the synthetic recordings' origin.
const t0 = int64(1_700_000_000_000_000_000)

// population describes a synthetic recording: users who log in, browse
// with think times, refresh their 60 s token ahead of expiry (or after a
// 401), and log out. It is deterministic for a seed.
type population struct {
	users    int
	arrive   time.Duration // arrivals spread over this window, most in its middle tenth
	session  time.Duration // how long each user stays
	think    time.Duration // median pause between requests
	latency  time.Duration // median service time
	ttl      time.Duration // access token lifetime
	lead     time.Duration // proactive refresh this long before expiry
	reactive float64       // share of users refreshing only after a 401
	seed     uint64
}

func defaultPopulation() population {
	return population{users: 40, arrive: 60 * time.Second, session: 150 * time.Second, think: 2 * time.Second,
		latency: 20 * time.Millisecond, ttl: 60 * time.Second, lead: 5 * time.Second, reactive: 0, seed: 1}
}

var routes = []string{"/api/products?page=%d", "/api/products/%d", "/api/cart", "/api/orders/%d"}

func (p population) exchanges() []*session.Exchange {
	rng := rand.New(rand.NewPCG(p.seed, 7))
	var out []*session.Exchange
	lognorm := func(median time.Duration) time.Duration {
		return time.Duration(float64(median) * math.Exp(0.5*rng.NormFloat64()))
	}
	for u := 0; u < p.users; u++ {
		key := fmt.Sprintf("s-%04d", u+1)
		var at time.Duration
		if rng.Float64() < 0.6 { // the peak: the middle tenth of the window
			at = p.arrive*45/100 + time.Duration(rng.Float64()*float64(p.arrive/10))
		} else {
			at = time.Duration(rng.Float64() * float64(p.arrive))
		}
		reactive := rng.Float64() < p.reactive
		end := at + p.session
		add := func(method, target string, mod func(*session.Exchange)) time.Duration {
			lat := lognorm(p.latency)
			s := t0 + int64(at)
			x := &session.Exchange{Session: key,
				Request:  session.Request{Method: method, Target: target, Proto: "HTTP/1.1"},
				Response: session.Response{Status: 200},
				Timing:   session.Timing{RequestStart: s, RequestEnd: s, ResponseStart: s + int64(lat), ResponseEnd: s + int64(lat)},
			}
			if mod != nil {
				mod(x)
			}
			out = append(out, x)
			return lat
		}
		issue := func(kind session.TokenEventKind, proactive bool) func(*session.Exchange) {
			return func(x *session.Exchange) {
				x.Tokens = append(x.Tokens, session.TokenEvent{Kind: kind, Name: "access_token", ExpiresAt: x.Timing.ResponseEnd + int64(p.ttl), Proactive: proactive})
			}
		}
		lat := add("POST", "/auth/login", issue(session.TokenLogin, false))
		issued := at + lat
		for at < end {
			at += lognorm(p.think)
			expiry := issued + p.ttl
			switch {
			case !reactive && at >= expiry-p.lead:
				at = max(at, expiry-p.lead)
				lat = add("POST", "/auth/refresh", issue(session.TokenRefresh, true))
				issued = at + lat
			case reactive && at >= expiry:
				add("GET", "/api/cart", func(x *session.Exchange) {
					x.Response.Status = 401
					x.Tokens = append(x.Tokens, session.TokenEvent{Kind: session.TokenRejected, Name: "access_token"})
				})
				at += lognorm(p.latency)
				lat = add("POST", "/auth/refresh", issue(session.TokenRefresh, false))
				issued = at + lat
			default:
				r := routes[rng.IntN(len(routes))]
				add("GET", fmt.Sprintf(r, 1+rng.IntN(50)), nil)
			}
		}
		add("POST", "/auth/logout", func(x *session.Exchange) {
			x.Tokens = append(x.Tokens, session.TokenEvent{Kind: session.TokenLogout})
		})
	}
	return out
}

func (p population) recording(t testing.TB, f Filter) *Recording {
	t.Helper()
	rec, err := Build(session.NewSliceSource(p.exchanges()...), LoadOptions{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
