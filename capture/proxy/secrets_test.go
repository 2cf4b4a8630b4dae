package proxy_test

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/capture/proxy"
	"github.com/reprise-tool/reprise/capture/redact"
	"github.com/reprise-tool/reprise/fixtures/shoptest"
	"github.com/reprise-tool/reprise/session"
)

// oauthServer is a small OAuth2 service: opaque tokens from a token
// endpoint (password and authorization_code grants, form-encoded refresh
// with rotation), a session cookie, a profile answered as gzip'd JSON
// carrying a JWT, and resources behind Basic, Digest and API-key
// authentication. issued lists every credential it handed out.
type oauthServer struct {
	mu     sync.Mutex
	access map[string]time.Time // token -> expiry
	rotate map[string]string    // live refresh token -> user
	codes  map[string]string    // authorization code -> user
	nonces map[string]bool
	issued []string
}

const (
	oauthClientSecret = "client-secret-0f9e8d7c"
	oauthAPIKey       = "api-key-5a4b3c2d1e"
	oauthAccessTTL    = 300 * time.Millisecond
)

func newOAuthServer() *oauthServer {
	return &oauthServer{access: map[string]time.Time{}, rotate: map[string]string{}, codes: map[string]string{}, nonces: map[string]bool{}}
}

func (s *oauthServer) random(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	v := prefix + hex.EncodeToString(b)
	s.issued = append(s.issued, v)
	return v
}

func (s *oauthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/oauth/authorize":
		code := s.random("code-")
		s.codes[code] = r.URL.Query().Get("login_hint")
		http.Redirect(w, r, "/cb?code="+code+"&state=xyz", http.StatusFound)
	case "/oauth/token":
		s.token(w, r)
	case "/api/me":
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if exp, ok := s.access[tok]; !ok || time.Now().After(exp) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		// A JWT inside a gzip'd JSON body.
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"user-1","exp":%d}`, time.Now().Add(time.Hour).Unix())))
		jwt := hdr + "." + claims + "." + s.random("sig")
		s.issued = append(s.issued, jwt)
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		fmt.Fprintf(zw, `{"name":"ann","profile_token":%q,"id_token":%q}`, jwt, s.random("idt-"))
		zw.Close()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(b.Bytes())
	case "/basic":
		if u, p, ok := r.BasicAuth(); !ok || u != "carol" || p != "basic-pass-77" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	case "/digest":
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "Digest ") || !s.nonces[digestParam(auth, "nonce")] {
			w.Header().Set("WWW-Authenticate", `Digest realm="test", qop="auth", nonce="`+s.random("nonce-")+`"`)
			for _, v := range s.issued[len(s.issued)-1:] {
				s.nonces[v] = true
			}
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	case "/keyed":
		if r.Header.Get("X-API-Key") != oauthAPIKey && r.URL.Query().Get("api_key") != oauthAPIKey {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	default:
		http.NotFound(w, r)
	}
}

// token is the token endpoint (RFC 6749, section 3.2).
func (s *oauthServer) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	var user string
	switch r.PostForm.Get("grant_type") {
	case "password":
		if r.PostForm.Get("password") != "pw-"+r.PostForm.Get("username") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		user = r.PostForm.Get("username")
	case "authorization_code":
		user = s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code"))
		if r.PostForm.Get("client_secret") != oauthClientSecret {
			user = ""
		}
	case "refresh_token":
		user = s.rotate[r.PostForm.Get("refresh_token")]
		delete(s.rotate, r.PostForm.Get("refresh_token")) // rotation
	}
	if user == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant"}`)
		return
	}
	at, rt := s.random("at-"), s.random("rt-")
	s.access[at] = time.Now().Add(oauthAccessTTL)
	s.rotate[rt] = user
	http.SetCookie(w, &http.Cookie{Name: "sess", Value: s.random("cookie-"), Path: "/", HttpOnly: true})
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d,"refresh_token":%q}`, at, int(oauthAccessTTL/time.Second), rt)
}

func digestParam(h, name string) string {
	for _, p := range strings.Split(strings.TrimPrefix(h, "Digest "), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// oauthClients runs every client of the test against base: an OAuth2
// user refreshing reactively (after a 401) and proactively, one getting
// its tokens with an authorization code, and a Basic, a Digest and an
// API-key client. It returns the credentials the clients sent.
func oauthClients(t *testing.T, base string) []string {
	jar := &cookieJar{}
	c := &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(method, path string, body url.Values, hdr ...string) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(body.Encode())
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		jar.add(req)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		jar.keep(resp)
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("Content-Encoding") == "gzip" {
			b, _ = session.DecodeBody("gzip", b, 0)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		if resp.StatusCode == http.StatusFound {
			m = map[string]any{"location": resp.Header.Get("Location")}
		}
		return resp.StatusCode, m
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	me := func(at string) int {
		st, _ := do("GET", "/api/me", nil, "Authorization", "Bearer "+at)
		return st
	}

	// The password grant, a reactive refresh after the token expired, a
	// proactive one before.
	_, tok := do("POST", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"ann"}, "password": {"pw-ann"}, "client_secret": {oauthClientSecret}})
	at, rt := str(tok, "access_token"), str(tok, "refresh_token")
	if at == "" || me(at) != 200 {
		t.Fatalf("login failed: %v", tok)
	}
	time.Sleep(oauthAccessTTL + 100*time.Millisecond)
	if st := me(at); st != 401 {
		t.Fatalf("expired token: status %d", st)
	}
	_, tok = do("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	at, rt = str(tok, "access_token"), str(tok, "refresh_token")
	me(at)
	_, tok = do("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	at = str(tok, "access_token")
	if me(at) != 200 {
		t.Fatal("after the proactive refresh: refused")
	}

	// The authorization code grant, with PKCE's verifier.
	jar.reset()
	_, loc := do("GET", "/oauth/authorize?response_type=code&client_id=app&login_hint=bob", nil)
	u, _ := url.Parse(str(loc, "location"))
	code := u.Query().Get("code")
	_, tok = do("POST", "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {"verifier-3e2d1c0b9a8f7e6d"}, "client_id": {"app"}, "client_secret": {oauthClientSecret}})
	if me(str(tok, "access_token")) != 200 {
		t.Fatalf("code grant failed: %v", tok)
	}

	// Basic, Digest and API-key clients.
	jar.reset()
	basic := base64.StdEncoding.EncodeToString([]byte("carol:basic-pass-77"))
	for i := 0; i < 2; i++ {
		if st, _ := do("GET", "/basic", nil, "Authorization", "Basic "+basic); st != 200 {
			t.Fatalf("basic: %d", st)
		}
	}
	req, _ := http.NewRequest("GET", base+"/digest", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	nonce := digestParam(resp.Header.Get("WWW-Authenticate"), "nonce")
	cnonce := "cnonce-0a1b2c3d4e5f"
	response := md5hex(md5hex("dave:test:digest-pass-88") + ":" + nonce + ":00000001:" + cnonce + ":auth:" + md5hex("GET:/digest"))
	digest := fmt.Sprintf(`Digest username="dave", realm="test", nonce="%s", uri="/digest", qop=auth, nc=00000001, cnonce="%s", response="%s"`, nonce, cnonce, response)
	if st, _ := do("GET", "/digest", nil, "Authorization", digest); st != 200 {
		t.Fatalf("digest: %d", st)
	}
	if st, _ := do("GET", "/keyed", nil, "X-API-Key", oauthAPIKey); st != 200 {
		t.Fatalf("api key header: %d", st)
	}
	if st, _ := do("GET", "/keyed?api_key="+oauthAPIKey+"&page=2", nil); st != 200 {
		t.Fatalf("api key query: %d", st)
	}
	return []string{"pw-ann", oauthClientSecret, oauthAPIKey, code, "verifier-3e2d1c0b9a8f7e6d", basic, "basic-pass-77", response, nonce, cnonce}
}

// cookieJar keeps the cookies a server set, one client at a time.
type cookieJar struct{ c []*http.Cookie }

func (j *cookieJar) add(r *http.Request) {
	for _, c := range j.c {
		r.AddCookie(c)
	}
}
func (j *cookieJar) keep(resp *http.Response) { j.c = append(j.c, resp.Cookies()...) }
func (j *cookieJar) reset()                   { j.c = nil }

// TestNoCredentialInClear is issue 20's acceptance test on an OAuth2
// flow: recorded through the proxy with the defaults, the recording holds
// none of the credentials the server issued or the clients sent, anywhere
// (headers, bodies decoded or not, queries, token events, timelines,
// metadata); it still gives the sessions and refreshes the unredacted
// traffic gives; and with --keep-secrets the same scan finds them.
func TestNoCredentialInClear(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   proxy.RecordConfig
		clear bool
	}{
		// The defaults: nothing in clear.
		{"defaults", proxy.RecordConfig{}, false},
		// --keep-secrets: the scan finds the credentials, and the
		// recording says it keeps them.
		{"keep-secrets", proxy.RecordConfig{Redact: &redact.Config{NoDefaults: true}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newOAuthServer()
			hs := httptest.NewServer(srv)
			defer hs.Close()
			var sent []string
			path, raw := shoptest.RecordThrough(t, hs.URL, tc.cfg, func(base string) { sent = oauthClients(t, base) })
			secrets := append(append(shoptest.Secrets(raw), sent...), srv.issued...)
			found := shoptest.FindInRecording(t, path, secrets)
			if !tc.clear && len(found) > 0 {
				t.Errorf("%d credentials in clear:\n%s", len(found), strings.Join(found, "\n"))
			}
			if tc.clear && len(found) < len(secrets)/2 {
				t.Errorf("--keep-secrets: only %d of %d credentials found: the scan misses them", len(found), len(secrets))
			}

			rd, err := session.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			shoptest.Collect(t, rd) // the timelines follow the exchanges
			tls := rd.Timelines()
			got := shoptest.SessionShapes(tls)
			if want := shoptest.SessionShapes(shoptest.Track(t, raw)); !reflect.DeepEqual(got, want) {
				t.Errorf("sessions of the recording:\n%s\nof the unredacted traffic:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			var refreshes int
			for _, tl := range tls {
				refreshes += tl.Refreshes
			}
			if refreshes < 2 {
				t.Errorf("%d refreshes recorded, want the reactive and the proactive one", refreshes)
			}
			again, err := session.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			c, err := redact.FindClear(again.Metadata(), again, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if c.Any() != tc.clear || c.Kept != tc.clear {
				t.Errorf("FindClear = %+v, want clear=%v", c, tc.clear)
			}
		})
	}
}
