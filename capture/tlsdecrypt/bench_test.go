package tlsdecrypt

import (
	"crypto/tls"
	"strings"
	"testing"
)

// BenchmarkDecrypt measures decryption of a real session moving 4 MiB
// each way, per suite; bytes are wire bytes.
func BenchmarkDecrypt(b *testing.B) {
	for _, tt := range []struct {
		name    string
		version uint16
		suite   uint16
	}{
		{"TLS13-AES128GCM", tls.VersionTLS13, 0},
		{"TLS12-AES256GCM", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{"TLS12-CHACHA20", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cfg := &tls.Config{MinVersion: tt.version, MaxVersion: tt.version}
			if tt.suite != 0 {
				cfg.CipherSuites = []uint16{tt.suite}
			}
			req := strings.Repeat("r", 1<<20)
			reqs := []string{req, req, req, req}
			wire, kl := session(b, cfg, cfg, reqs, func(r string) string { return r })
			k := keyLogOf(b, kl)
			n := 0
			for _, w := range wire {
				n += len(w.data)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c := New(Config{Keys: k, Name: "bench"}, func(int, []byte, int64) {})
				replay(c, wire, 1448) // one TCP segment at a time
				if c.Err() != nil {
					b.Fatal(c.Err())
				}
			}
		})
	}
}
