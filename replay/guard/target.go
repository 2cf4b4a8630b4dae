package guard

import (
	"context"

	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// Origin collects where a recording's traffic went: the server addresses
// of its connections and the Host headers of its requests. The engine
// adds every exchange (Add is cheap and keeps each distinct value once, up
// to a bound) and checks the target before sending anything. Safe for
// concurrent use.
type Origin struct {
	mu      sync.Mutex
	servers map[netip.AddrPort]int
	hosts   map[string]int
	// lastHost and lastNorm are the latest Host header and its normal
	// form: a recording's requests mostly repeat one, normalized once.
	lastHost, lastNorm string
}

// maxOrigins bounds each set; past it new values are not kept (a recording
// with more distinct servers than that is unusual, and the first ones are
// the ones that matter).
const maxOrigins = 4096

// Add records one exchange's server address (zero when unknown) and Host
// header ("" when absent).
func (o *Origin) Add(server netip.AddrPort, host string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.servers == nil {
		o.servers, o.hosts = map[netip.AddrPort]int{}, map[string]int{}
	}
	if server.IsValid() {
		server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
		if _, ok := o.servers[server]; ok || len(o.servers) < maxOrigins {
			o.servers[server]++
		}
	}
	if host != o.lastHost || o.lastNorm == "" {
		o.lastHost, o.lastNorm = host, normHost(host)
	}
	if h := o.lastNorm; h != "" {
		if _, ok := o.hosts[h]; ok || len(o.hosts) < maxOrigins {
			o.hosts[h]++
		}
	}
}

// AddExchange records an exchange's server address and Host header.
func (o *Origin) AddExchange(ex *session.Exchange) {
	o.Add(ex.Conn.Server, ex.Request.Header.Get("Host"))
}

// normHost lower-cases a Host header and drops a trailing dot; the port
// stays.
func normHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if name, port, err := net.SplitHostPort(h); err == nil {
		return net.JoinHostPort(strings.TrimSuffix(name, "."), port)
	}
	return strings.TrimSuffix(strings.Trim(h, "[]"), ".")
}

// Resolver looks names up; *net.Resolver is one. Tests give a fixed table.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// OriginalHostError refuses a target that is the recording's own server.
type OriginalHostError struct {
	Target string
	// Match says what matched: `Host header "shop.example.com" (1204 requests)`
	// or `server address 10.0.0.5:443 (88 requests)`.
	Match string
}

func (e *OriginalHostError) Error() string {
	return fmt.Sprintf("target %s is the recording's original server (%s): replay against staging, or pass --allow-original-host if you mean it",
		e.Target, e.Match)
}

// CheckTarget refuses a target that is the recording's original server:
//
//   - its host name equals a recorded Host header's name (on any port: a
//     name that reaches production on one port usually does on all), for
//     names other than IP literals and localhost;
//   - its host is an IP literal or localhost and equals a Host header
//     with the same port;
//   - one of the addresses it resolves to, with its port, is a recorded
//     server address.
//
// A target that does not resolve is not refused here (sending will fail
// and say so). r nil uses net.DefaultResolver; the lookup is bounded to 5
// seconds. The engine skips the check under --allow-original-host.
func CheckTarget(ctx context.Context, target string, o *Origin, r Resolver) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("target %q is not a URL like http://127.0.0.1:8089", target)
	}
	name := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("target %q has a bad port %q", target, port)
	}
	o.mu.Lock()
	hosts := make(map[string]int, len(o.hosts))
	for h, n := range o.hosts {
		hosts[h] = n
	}
	servers := make(map[netip.AddrPort]int, len(o.servers))
	for s, n := range o.servers {
		servers[s] = n
	}
	o.mu.Unlock()

	literal := name == "localhost"
	if _, err := netip.ParseAddr(name); err == nil {
		literal = true
	}
	for _, h := range sortedKeys(hosts) {
		hn, hp := h, ""
		if a, b, err := net.SplitHostPort(h); err == nil {
			hn, hp = a, b
		}
		if hn != name {
			continue
		}
		if literal && hp != "" && hp != port {
			continue
		}
		if literal && hp == "" && port != "80" && port != "443" {
			continue
		}
		return &OriginalHostError{Target: target, Match: fmt.Sprintf("Host header %q, %s", h, requests(hosts[h]))}
	}
	if len(servers) == 0 {
		return nil
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(name); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if r == nil {
			r = net.DefaultResolver
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		addrs, _ = r.LookupNetIP(lctx, "ip", name)
	}
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(pn))
		if n, ok := servers[ap]; ok {
			via := ""
			if ap.Addr().String() != name {
				via = fmt.Sprintf(", which %s resolves to", name)
			}
			return &OriginalHostError{Target: target, Match: fmt.Sprintf("server address %s%s, %s", ap, via, requests(n))}
		}
	}
	return nil
}

func requests(n int) string {
	if n == 1 {
		return "1 request"
	}
	return strconv.Itoa(n) + " requests"
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
