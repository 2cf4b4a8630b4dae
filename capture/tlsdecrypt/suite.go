package tlsdecrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// aeadKind is the record protection of a suite.
type aeadKind uint8

const (
	aesGCM aeadKind = iota + 1
	chacha
)

// suite is what decryption needs to know about a cipher suite.
type suite struct {
	aead   aeadKind
	keyLen int
	sha384 bool // the PRF (TLS 1.2) or HKDF (TLS 1.3) hash is SHA-384
}

// suites are the AEAD suites real servers negotiate. CBC and other suites
// are absent: a connection using one is reported as ErrUnsupportedSuite.
var suites = map[uint16]suite{
	// TLS 1.3
	tls.TLS_AES_128_GCM_SHA256:       {aesGCM, 16, false},
	tls.TLS_AES_256_GCM_SHA384:       {aesGCM, 32, true},
	tls.TLS_CHACHA20_POLY1305_SHA256: {chacha, 32, false},
	// TLS 1.2, RFC 5288 and 5289
	0x009c: {aesGCM, 16, false}, // TLS_RSA_WITH_AES_128_GCM_SHA256
	0x009d: {aesGCM, 32, true},  // TLS_RSA_WITH_AES_256_GCM_SHA384
	0x009e: {aesGCM, 16, false}, // TLS_DHE_RSA_WITH_AES_128_GCM_SHA256
	0x009f: {aesGCM, 32, true},  // TLS_DHE_RSA_WITH_AES_256_GCM_SHA384
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: {aesGCM, 16, false},
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: {aesGCM, 32, true},
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:   {aesGCM, 16, false},
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:   {aesGCM, 32, true},
	// TLS 1.2, RFC 7905
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   {chacha, 32, false},
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: {chacha, 32, false},
	0xccaa: {chacha, 32, false}, // TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256
}

func (s suite) hash() func() hash.Hash {
	if s.sha384 {
		return sha512.New384
	}
	return sha256.New
}

func (s suite) newAEAD(key []byte) (cipher.AEAD, error) {
	if s.aead == chacha {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// expandLabel is TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) with an
// empty context, the only one traffic keys use.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		// Only an output longer than 255 hash blocks fails; n is a key
		// or IV length.
		panic("tlsdecrypt: " + err.Error())
	}
	return out
}

// trafficKeys13 derives the key and IV of a TLS 1.3 traffic secret
// (RFC 8446 §7.3).
func (s suite) trafficKeys13(secret []byte) (cipher.AEAD, []byte, error) {
	h := s.hash()
	a, err := s.newAEAD(expandLabel(h, secret, "key", s.keyLen))
	return a, expandLabel(h, secret, "iv", 12), err
}

// nextSecret13 is the traffic secret after a KeyUpdate (RFC 8446 §7.2).
func (s suite) nextSecret13(secret []byte) []byte {
	h := s.hash()
	return expandLabel(h, secret, "traffic upd", h().Size())
}

// prf12 is the TLS 1.2 PRF (RFC 5246 §5): P_hash over label and seed.
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := append([]byte(label), seed...)
	mac := hmac.New(h, secret)
	out := make([]byte, 0, n+mac.Size())
	mac.Write(ls)
	a := mac.Sum(nil) // A(1)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
	return out[:n]
}

// keys12 expands a TLS 1.2 master secret into the client's and server's
// AEAD and IV (the 4-byte salt for GCM, RFC 5288 §3; the 12-byte IV for
// ChaCha20-Poly1305, RFC 7905 §2).
func (s suite) keys12(master []byte, clientRandom, serverRandom Random) (aeads [2]cipher.AEAD, ivs [2][]byte, err error) {
	ivLen := 4
	if s.aead == chacha {
		ivLen = 12
	}
	seed := append(serverRandom[:], clientRandom[:]...)
	kb := prf12(s.hash(), master, "key expansion", seed, 2*s.keyLen+2*ivLen)
	for i := range 2 {
		if aeads[i], err = s.newAEAD(kb[i*s.keyLen : (i+1)*s.keyLen]); err != nil {
			return aeads, ivs, err
		}
		off := 2*s.keyLen + i*ivLen
		ivs[i] = kb[off : off+ivLen]
	}
	return aeads, ivs, nil
}
