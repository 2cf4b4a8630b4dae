package redact

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// testJWT is a JWT whose claims are {"sub":"ann","exp":2000000000}.
var testJWT = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
	base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"ann","exp":2000000000}`)) + ".c2lnbmF0dXJl"

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// TestDefaults covers the default rules, one credential per case: after
// Apply the secret is nowhere in the exchange, and what is not a secret
// stays.
func TestDefaults(t *testing.T) {
	form := session.Headers{hdr("Content-Type", "application/x-www-form-urlencoded")}
	tests := []struct {
		name   string
		x      session.Exchange
		secret []string // gone after Apply
		kept   []string // still there
	}{
		// Bearer: the scheme word stays.
		{"bearer", session.Exchange{Request: session.Request{Header: session.Headers{hdr("Authorization", "Bearer opaque-123456")}}},
			[]string{"opaque-123456"}, []string{"Bearer rdct_"}},
		// Digest: the structure and the user stay; response and nonces go.
		{"digest", session.Exchange{Request: session.Request{Header: session.Headers{hdr("Authorization",
			`Digest username="dave", realm="r", nonce="n0nce-1", uri="/x", qop=auth, nc=00000001, cnonce="cn0nce-2", response="6629fae49393a05397450978507c4ef1"`)}}},
			[]string{"n0nce-1", "cn0nce-2", "6629fae4"}, []string{`Digest username="dave", realm="r", nonce="rdct_`, `uri="/x", qop=auth, nc=00000001`}},
		// A Digest challenge's nonce, hashed as the answer's is.
		{"digest challenge", session.Exchange{Response: session.Response{Status: 401, Header: session.Headers{hdr("WWW-Authenticate", `Digest realm="r", qop="auth", nonce="n0nce-1"`)}}},
			[]string{"n0nce-1"}, []string{`Digest realm="r", qop="auth", nonce="rdct_`}},
		// Proxy-Authorization and an API-key header.
		{"api key", session.Exchange{Request: session.Request{Header: session.Headers{hdr("Proxy-Authorization", "Basic dXNlcjpwYXNz"), hdr("X-API-Key", "key-98765")}}},
			[]string{"dXNlcjpwYXNz", "key-98765"}, []string{"Basic rdct_"}},
		// Every cookie, attributes kept.
		{"cookies", session.Exchange{Request: session.Request{Header: session.Headers{hdr("Cookie", "theme=dark; remember_x=abcdef")}},
			Response: session.Response{Header: session.Headers{hdr("Set-Cookie", "odd=v4lue; Path=/; HttpOnly")}}},
			[]string{"dark", "abcdef", "v4lue"}, []string{"theme=rdct_", "; Path=/; HttpOnly"}},
		// Token fields in a query string; other fields stay.
		{"query", session.Exchange{Request: session.Request{Target: "/x?page=2&access_token=at-1234&api_key=k-5678"}},
			[]string{"at-1234", "k-5678"}, []string{"/x?page=2&access_token=rdct_"}},
		// A JWT in a query, a header no rule names, and an HTML body.
		{"jwt anywhere", session.Exchange{Request: session.Request{Target: "/cb?t=" + testJWT, Header: session.Headers{hdr("X-Whatever", "v="+testJWT)}},
			Response: session.Response{Header: session.Headers{hdr("Content-Type", "text/html")}, Body: []byte("<p>" + testJWT + "</p>")}},
			[]string{testJWT}, []string{"<p>rdct_", "/cb?t=rdct_", "v=rdct_"}},
		// A refresh in a form body: both tokens go, grant_type stays.
		{"form refresh", session.Exchange{Request: session.Request{Method: "POST", Header: form, Body: []byte("grant_type=refresh_token&refresh_token=rt-1111&client_secret=cs-2222")}},
			[]string{"rt-1111", "cs-2222"}, []string{"grant_type=refresh_token&refresh_token=rdct_"}},
		// The code of an authorization_code grant, and its verifier.
		{"code grant", session.Exchange{Request: session.Request{Method: "POST", Header: form, Body: []byte("grant_type=authorization_code&code=c0de-3333&code_verifier=v-4444&client_id=app")}},
			[]string{"c0de-3333", "v-4444"}, []string{"client_id=app"}},
		// A code elsewhere is no credential.
		{"other code", session.Exchange{Request: session.Request{Method: "POST", Header: form, Body: []byte("code=ZIP-75001")}},
			nil, []string{"code=ZIP-75001"}},
		// The authorization response: the redirect, its body, the callback.
		{"code redirect", session.Exchange{Request: session.Request{Target: "/cb?code=c0de-5555&state=s1"},
			Response: session.Response{Status: 302, Header: session.Headers{hdr("Location", "/cb?code=c0de-5555&state=s1")}, Body: []byte(`<a href="/cb?code=c0de-5555&amp;state=s1">Found</a>`)}},
			[]string{"c0de-5555"}, []string{"state=s1"}},
		// A token in a gzip'd JSON body: encoded again, still gzip.
		{"gzip json", session.Exchange{Response: session.Response{Header: session.Headers{hdr("Content-Type", "application/json"), hdr("Content-Encoding", "gzip")},
			Body: gz(`{"user":"ann","id_token":"idt-6666","nested":{"t":"` + testJWT + `"}}`)}},
			[]string{"idt-6666", testJWT}, []string{`"user":"ann"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTest(t, Config{})
			x := tt.x
			if !r.Apply(&x) && len(tt.secret) > 0 {
				t.Fatal("nothing redacted")
			}
			all := dump(t, &x)
			for _, s := range tt.secret {
				if strings.Contains(all, s) {
					t.Errorf("%q still in %s", s, all)
				}
			}
			for _, s := range tt.kept {
				if !strings.Contains(all, s) {
					t.Errorf("%q lost from %s", s, all)
				}
			}
		})
	}
}

// TestCodeExchange: the code of an OAuth2 token exchange is hashed under
// one rule whether the request is form-encoded or JSON, and a code that
// is no exchange's stays. Each case runs in both encodings.
func TestCodeExchange(t *testing.T) {
	type field struct{ name, value string }
	tests := []struct {
		name   string
		fields []field
		hashed bool // the code (and a verifier) gone
	}{
		// The standard grant (RFC 6749, 4.1.3).
		{"grant", []field{{"grant_type", "authorization_code"}, {"code", "c0de-1111"}, {"redirect_uri", "app-callback"}}, true},
		// PKCE: the verifier goes too.
		{"pkce", []field{{"grant_type", "authorization_code"}, {"code", "c0de-2222"}, {"code_verifier", "v3rifier-2222"}}, true},
		// No grant_type, as GitHub's and Slack's endpoints take it.
		{"client_id", []field{{"client_id", "app"}, {"code", "c0de-3333"}}, true},
		{"redirect_uri", []field{{"code", "c0de-4444"}, {"redirect_uri", "app-callback"}}, true},
		// Names in any case, as every field rule has them.
		{"case", []field{{"Grant_Type", "authorization_code"}, {"CODE", "c0de-5555"}}, true},
		// A code alone is a postal code or an error code.
		{"code alone", []field{{"code", "ZIP-75001"}}, false},
		// Another grant says the code is something else.
		{"other grant", []field{{"grant_type", "refresh_token"}, {"code", "c0de-6666"}, {"client_id", "app"}}, false},
	}
	for _, tt := range tests {
		vals := url.Values{}
		obj := map[string]string{}
		for _, f := range tt.fields {
			vals.Set(f.name, f.value)
			obj[f.name] = f.value
		}
		js, _ := json.Marshal(obj)
		for _, enc := range []struct{ name, ct, body string }{
			{"form", "application/x-www-form-urlencoded", vals.Encode()},
			{"json", "application/json", string(js)},
			{"gzip json", "application/json", string(gz(string(js)))},
		} {
			t.Run(tt.name+"/"+enc.name, func(t *testing.T) {
				r := newTest(t, Config{})
				h := session.Headers{hdr("Content-Type", enc.ct)}
				if enc.name == "gzip json" {
					h = append(h, hdr("Content-Encoding", "gzip"))
				}
				x := session.Exchange{Request: session.Request{Method: "POST", Target: "/oauth/token", Header: h, Body: []byte(enc.body)}}
				r.Apply(&x)
				all := dump(t, &x)
				for _, f := range tt.fields {
					secret := strings.EqualFold(f.name, "code") || f.name == "code_verifier"
					if gone := !strings.Contains(all, f.value); gone != (secret && tt.hashed) {
						t.Errorf("%s=%q gone=%v in %s", f.name, f.value, gone, all)
					}
				}
			})
		}
	}
	// No response is a token exchange: an error's code and a client_id
	// in a JSON answer stay.
	r := newTest(t, Config{})
	x := session.Exchange{Response: session.Response{Header: session.Headers{hdr("Content-Type", "application/json")},
		Body: []byte(`{"error":{"code":"E-1234","client_id":"app"}}`)}}
	if r.Apply(&x); !strings.Contains(string(x.Response.Body), "E-1234") {
		t.Errorf("an error code in a response was hashed: %s", x.Response.Body)
	}
}

// dump is the exchange as text, compressed bodies decoded, and checks
// that a body's Content-Encoding still decodes it.
func dump(t *testing.T, x *session.Exchange) string {
	var b strings.Builder
	b.WriteString(x.Request.Target + "\n")
	for _, side := range []struct {
		h    session.Headers
		body []byte
	}{{x.Request.Header, x.Request.Body}, {x.Response.Header, x.Response.Body}} {
		for _, h := range side.h {
			b.WriteString(h.Name + ": " + h.Value + "\n")
		}
		d, err := session.DecodeBody(side.h.Get("Content-Encoding"), side.body, 0)
		if err != nil {
			t.Fatalf("body does not decode as its Content-Encoding says: %v", err)
		}
		b.Write(d)
		b.WriteString("\n")
	}
	return b.String()
}

// TestClaims: the claims of a hashed JWT are there for the tracker, under
// the hash, and nothing else is.
func TestClaims(t *testing.T) {
	r := newTest(t, Config{})
	x := session.Exchange{Request: session.Request{Header: session.Headers{hdr("Authorization", "Bearer "+testJWT)}}}
	r.Apply(&x)
	c, ok := r.Claims(r.Hash(testJWT))
	if !ok || string(c) != `{"sub":"ann","exp":2000000000}` {
		t.Fatalf("claims %q %v", c, ok)
	}
	if _, ok := r.Claims(r.Hash("opaque")); ok {
		t.Fatal("claims of a value never seen")
	}
}

// TestKeepSecrets: without the defaults only named rules apply, and the
// Redactor says it leaves credentials in clear.
func TestKeepSecrets(t *testing.T) {
	r := newTest(t, Config{NoDefaults: true})
	x := session.Exchange{Request: session.Request{Header: session.Headers{hdr("Authorization", "Bearer "+testJWT), hdr("Cookie", "sid=s3cret")}}}
	if r.Apply(&x) || !r.ClearSecrets() || newTest(t, Config{}).ClearSecrets() {
		t.Fatalf("keep-secrets redacted %+v or does not say so", x.Request.Header)
	}
}

// FuzzDefaults runs the default rules over any header value, target and
// body: no panic, and a second pass changes nothing (every secret found
// was hashed, and a hash is never taken for a secret), which is what lets
// a redacted recording be imported and redacted again.
func FuzzDefaults(f *testing.F) {
	f.Add("Bearer "+testJWT, "/x?access_token=a&code=c&state=s", `{"token":"t","x":"`+testJWT+`"}`)
	f.Add(`Digest username="u", nonce="n\"x", response=r,cnonce="c"`, "/cb#access_token=z", "grant_type=authorization_code&code=q")
	f.Add("eyJhbGciOi.eyJ.", "eyJ", "eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, header, target, body string) {
		r := newTest(t, Config{})
		mk := func() *session.Exchange {
			return &session.Exchange{
				Request: session.Request{Target: target, Header: session.Headers{hdr("Authorization", header), hdr("Cookie", header)},
					Body: []byte(body)},
				Response: session.Response{Status: 302, Header: session.Headers{hdr("WWW-Authenticate", header), hdr("Location", target), hdr("Set-Cookie", header)},
					Body: []byte(body)},
			}
		}
		x := mk()
		r.Apply(x)
		once := dump(t, x)
		if r.Apply(x) {
			t.Fatalf("a second pass changed %q into %q", once, dump(t, x))
		}
	})
}
