package summary

import (
	"fmt"
	"strings"
)

// TLS is what the capture said of its encrypted connections. A capture
// counts them in its metadata, not per exchange (see capture's Counters):
// decrypted ones by their parameters, the others among the unsupported
// kinds, "tls no keys sni=NAME" and "tls REASON".
type TLS struct {
	// Decrypted counts connections read with a key log, by their
	// parameters: "TLS 1.3 TLS_AES_128_GCM_SHA256 sni=shop.example alpn=h2".
	Decrypted []Count `json:"decrypted"`
	// NoKeys counts connections not read because no key log held their
	// secrets, by the name the client asked for ("(none)" when it
	// connected by address): the key logs to bring.
	NoKeys []Count `json:"no_keys"`
	// Failed counts the other connections not read whole, by reason
	// ("unsupported suite", "wrong key", "handshake not captured", "0-rtt
	// data skipped", ...).
	Failed []Count `json:"failed,omitempty"`
}

// tlsNoKeys prefixes the unsupported kind of a connection without keys.
const tlsNoKeys = "tls no keys sni="

// addTLS adds a file's decrypted-connection counters.
func (b *Builder) addTLS(m map[string]uint64) {
	for k, v := range m {
		if b.tls == nil {
			b.tls = map[string]int64{}
		}
		bump(b.tls, k, "other", int64(v))
	}
}

// tlsSummary gathers the TLS figures from the decrypted counters and the
// unsupported kinds; nil when the recording saw no TLS.
func (b *Builder) tlsSummary() *TLS {
	noKeys, failed := map[string]int64{}, map[string]int64{}
	for k, v := range b.unsup {
		switch {
		case strings.HasPrefix(k, tlsNoKeys):
			noKeys[strings.TrimPrefix(k, tlsNoKeys)] += int64(v)
		case strings.HasPrefix(k, "tls "):
			failed[strings.TrimPrefix(k, "tls ")] += int64(v)
		}
	}
	if len(b.tls) == 0 && len(noKeys) == 0 && len(failed) == 0 {
		return nil
	}
	t := &TLS{Decrypted: sortedCounts(b.tls), NoKeys: sortedCounts(noKeys), Failed: sortedCounts(failed)}
	if len(t.Failed) == 0 {
		t.Failed = nil
	}
	return t
}

// writeTLS prints the decrypted connections and, set apart, those without
// keys with what to do about them: traffic the user may think recorded.
func (s *Summary) writeTLS(b *strings.Builder) {
	t := s.TLS
	if t == nil {
		return
	}
	list := func(cs []Count) {
		for _, c := range cs {
			fmt.Fprintf(b, "  %6d  %s\n", c.Count, c.Name)
		}
	}
	if n := total(t.Decrypted); n > 0 {
		fmt.Fprintf(b, "\nTLS decrypted: %s read with a key log\n", plural(n, "connection"))
		list(t.Decrypted)
	}
	if n := total(t.NoKeys); n > 0 {
		fmt.Fprintf(b, "\nTLS WITHOUT KEYS: %s not recorded, no key log held their secrets\n", plural(n, "connection"))
		cs := make([]Count, len(t.NoKeys))
		for i, c := range t.NoKeys {
			cs[i] = Count{"sni=" + c.Name, c.Count}
		}
		list(cs)
		b.WriteString("  bring their key log: capture again with --keylog FILE, the file the client or server\n" +
			"  wrote with SSLKEYLOGFILE=FILE (curl, Firefox, Chromium) or Go's tls.Config.KeyLogWriter\n")
	}
	if n := total(t.Failed); n > 0 {
		fmt.Fprintf(b, "\nTLS not read: %s\n", plural(n, "connection"))
		list(t.Failed)
	}
}

func total(cs []Count) int64 {
	var n int64
	for _, c := range cs {
		n += c.Count
	}
	return n
}

// shownAsTLS reports whether an unsupported kind is listed in the TLS
// section, so the losses do not list it again.
func shownAsTLS(kind string) bool {
	return strings.HasPrefix(kind, "tls ")
}
