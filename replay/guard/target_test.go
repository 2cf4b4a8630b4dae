package guard

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// table is a fixed resolver.
type table map[string][]netip.Addr

func (tb table) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := tb[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func TestCheckTarget(t *testing.T) {
	ip := netip.MustParseAddr
	ap := netip.MustParseAddrPort
	dns := table{
		"shop.example.com":    {ip("203.0.113.7")},
		"shop-alias.internal": {ip("203.0.113.7")},
		"staging.internal":    {ip("127.0.0.2")},
		"lb.internal":         {ip("::1")},
	}
	tests := []struct {
		name    string
		servers []netip.AddrPort
		hosts   []string
		target  string
		refuse  string // part of the refusal, "" when allowed
	}{
		// The recording's Host name, on any port, is production.
		{"same name", nil, []string{"shop.example.com"}, "https://shop.example.com", `Host header "shop.example.com"`},
		{"same name other port", nil, []string{"shop.example.com:8080"}, "http://SHOP.example.com.:9999", "Host header"},
		// A name that resolves to a recorded server address and port.
		{"alias", []netip.AddrPort{ap("203.0.113.7:443")}, []string{"shop.example.com"}, "https://shop-alias.internal", "which shop-alias.internal resolves to"},
		// Same address, different port: another service.
		{"alias other port", []netip.AddrPort{ap("203.0.113.7:443")}, nil, "http://shop-alias.internal:8080", ""},
		// Loopback recorded on 8089, a fresh shop on 8090: allowed.
		{"loopback other port", []netip.AddrPort{ap("127.0.0.1:8089")}, []string{"127.0.0.1:8089"}, "http://127.0.0.1:8090", ""},
		// Loopback on the same port: the original.
		{"loopback same port", []netip.AddrPort{ap("127.0.0.1:8089")}, []string{"127.0.0.1:8089"}, "http://127.0.0.1:8089", "Host header"},
		// Only the server address is known (no Host headers).
		{"address only", []netip.AddrPort{ap("127.0.0.1:8089")}, nil, "http://127.0.0.1:8089/api", "server address 127.0.0.1:8089, 1 request"},
		// localhost with the recorded port.
		{"localhost", nil, []string{"localhost:8089"}, "http://localhost:8089", "Host header"},
		{"localhost other port", nil, []string{"localhost:8089"}, "http://localhost:9000", ""},
		// IPv6 and IPv4-mapped addresses compare equal.
		{"ipv6", []netip.AddrPort{ap("[::1]:8089")}, nil, "http://[::1]:8089", "server address [::1]:8089"},
		{"mapped", []netip.AddrPort{ap("[::ffff:127.0.0.1]:8089")}, nil, "http://127.0.0.1:8089", "server address"},
		// A different staging host.
		{"staging", []netip.AddrPort{ap("203.0.113.7:80")}, []string{"shop.example.com"}, "http://staging.internal", ""},
		// A target that does not resolve is not refused here.
		{"unresolved", []netip.AddrPort{ap("203.0.113.7:80")}, nil, "http://nowhere.invalid", ""},
		// A Host header without port and an IP literal on the default port.
		{"literal default port", nil, []string{"127.0.0.1"}, "http://127.0.0.1", "Host header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Origin
			for _, s := range tt.servers {
				o.Add(s, "")
			}
			for _, h := range tt.hosts {
				o.Add(netip.AddrPort{}, h)
			}
			err := CheckTarget(context.Background(), tt.target, &o, dns)
			if tt.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var oe *OriginalHostError
			if !errors.As(err, &oe) {
				t.Fatalf("not refused: %v", err)
			}
			if !strings.Contains(err.Error(), tt.refuse) || !strings.Contains(err.Error(), "--allow-original-host") {
				t.Errorf("message %q lacks %q", err, tt.refuse)
			}
		})
	}
	var o Origin
	if err := CheckTarget(context.Background(), "ftp://x", &o, dns); err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:8089") {
		t.Errorf("bad URL: %v", err)
	}
}

func TestAddExchange(t *testing.T) {
	var o Origin
	ex := &session.Exchange{Conn: session.Conn{Server: netip.MustParseAddrPort("127.0.0.1:8089")}}
	ex.Request.Header = session.Headers{{Name: "host", Value: "Shop.Example.com"}}
	o.AddExchange(ex)
	if err := CheckTarget(context.Background(), "http://shop.example.com:8443", &o, table{}); err == nil {
		t.Error("recorded Host not refused")
	}
}
