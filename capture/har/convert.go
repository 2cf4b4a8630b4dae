package har

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reprise-tool/reprise/session"
)

// maxMillis bounds a timing in milliseconds (about 30 years), so a huge
// value is an error and not an overflow.
const maxMillis = 1e12

// exchange turns one entry into an exchange and returns its URL's host.
func (r *Reader) exchange(e *entry) (*session.Exchange, string, error) {
	if e.Request.Method == "" {
		return nil, "", fmt.Errorf("request.method missing")
	}
	u, err := url.Parse(e.Request.URL)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("request.url %q: not an absolute URL", clip(e.Request.URL))
	}
	host := strings.ToLower(u.Hostname())
	start, err := time.Parse(time.RFC3339Nano, e.StartedDateTime)
	if err != nil {
		return nil, host, fmt.Errorf("startedDateTime %q: not an ISO 8601 time", clip(e.StartedDateTime))
	}
	x := &session.Exchange{}
	if x.Timing, err = entryTiming(start, e); err != nil {
		return nil, host, err
	}
	x.Conn.Server = serverAddr(e.ServerIPAddress, e.ServerPort, u)
	q := &x.Request
	q.Method = e.Request.Method
	q.Target = e.Target
	if q.Target == "" {
		q.Target = originForm(e.Request.URL)
	}
	q.Proto = proto(x, e.Request.HTTPVersion)
	q.Header = headers(e.Request.Headers)
	if q.Header.Get("Host") == "" && (q.Proto == "HTTP/1.1" || hasPseudo(e.Request.Headers)) {
		q.Header = append(session.Headers{{Name: "Host", Value: u.Host}}, q.Header...)
	}
	body, err := requestBody(e.Request.PostData)
	if err != nil {
		return nil, host, err
	}
	if setBody(&q.Body, &q.BodySize, body, r.o.MaxBody) {
		x.Flags |= session.FlagRequestTruncated
	}
	if len(body) == 0 && e.Request.BodySize > 0 {
		q.BodySize = e.Request.BodySize
		x.Flags |= session.FlagRequestTruncated
		x.Warnings = append(x.Warnings, "HAR holds no request body")
	}
	if e.Request.FullBodySize > q.BodySize {
		q.BodySize = e.Request.FullBodySize
		x.Flags |= session.FlagRequestTruncated
	}
	if e.Response.Status <= 0 {
		// Browsers write status 0 for a request that failed or was blocked.
		x.Flags |= session.FlagNoResponse
		x.Timing.ResponseStart, x.Timing.ResponseEnd = 0, 0
		return x, host, nil
	}
	if e.Response.Status > 999 {
		return nil, host, fmt.Errorf("response.status %d out of range", e.Response.Status)
	}
	p := &x.Response
	p.Proto = proto(x, e.Response.HTTPVersion)
	p.Status, p.Reason = e.Response.Status, e.Response.StatusText
	p.Header = headers(e.Response.Headers)
	if err := r.responseBody(x, &e.Response.Content, e.Response.BodySize); err != nil {
		return nil, host, err
	}
	if e.Response.FullBodySize > p.BodySize {
		p.BodySize = e.Response.FullBodySize
		x.Flags |= session.FlagResponseTruncated
	}
	return x, host, nil
}

// entryTiming derives the four timestamps: the request's first byte comes
// after blocked, dns and connect (ssl is inside connect), then send, wait
// and receive follow. Without timings, time is the whole exchange.
func entryTiming(start time.Time, e *entry) (session.Timing, error) {
	tm := e.Timings
	var ns [6]int64
	for i, v := range []float64{tm.Blocked, tm.DNS, tm.Connect, tm.Send, tm.Wait, tm.Receive} {
		if v > maxMillis {
			return session.Timing{}, fmt.Errorf("timings value %g ms out of range", v)
		}
		if v > 0 {
			ns[i] = int64(math.Round(v * 1e6))
		}
	}
	if e.Time > maxMillis {
		return session.Timing{}, fmt.Errorf("time %g ms out of range", e.Time)
	}
	var t session.Timing
	t.RequestStart = start.UnixNano() + ns[0] + ns[1] + ns[2]
	t.RequestEnd = t.RequestStart + ns[3]
	t.ResponseStart = t.RequestEnd + ns[4]
	t.ResponseEnd = t.ResponseStart + ns[5]
	if ns[3]+ns[4]+ns[5] == 0 && e.Time > 0 {
		t.ResponseEnd = start.UnixNano() + int64(math.Round(e.Time*1e6))
	}
	return t, nil
}

// originForm returns the request-target as sent: the URL's path and query
// exactly as written (not re-escaped), without a fragment.
func originForm(raw string) string {
	s := raw
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[i:]
	} else {
		s = ""
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	if s == "" || s[0] == '?' {
		s = "/" + s
	}
	return s
}

func serverAddr(ip string, port16 uint16, u *url.URL) netip.AddrPort {
	ip = strings.Trim(ip, "[]")
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.AddrPort{}
	}
	if port16 != 0 {
		return netip.AddrPortFrom(a, port16)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" || u.Scheme == "wss" {
			port = "443"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, uint16(n))
}

// proto maps a HAR httpVersion to the HTTP/1 version Reprise replays; an
// HTTP/2 or HTTP/3 entry is kept as HTTP/1.1, with a warning.
func proto(x *session.Exchange, v string) string {
	switch strings.ToUpper(v) {
	case "HTTP/1.1":
		return "HTTP/1.1"
	case "HTTP/1.0":
		return "HTTP/1.0"
	}
	if len(x.Warnings) < 8 {
		w := fmt.Sprintf("HAR httpVersion %q kept as HTTP/1.1", clip(v))
		for _, have := range x.Warnings {
			if have == w {
				return "HTTP/1.1"
			}
		}
		x.Warnings = append(x.Warnings, w)
	}
	return "HTTP/1.1"
}

// headers copies the fields in order, leaving out HTTP/2 pseudo-fields.
func headers(in []nv) session.Headers {
	out := make(session.Headers, 0, len(in))
	for _, h := range in {
		if strings.HasPrefix(h.Name, ":") {
			continue
		}
		out = append(out, session.Header{Name: h.Name, Value: h.Value})
	}
	return out
}

func hasPseudo(in []nv) bool {
	for _, h := range in {
		if strings.HasPrefix(h.Name, ":") {
			return true
		}
	}
	return false
}

// requestBody returns postData's text, or its params encoded as a form.
func requestBody(pd *postData) ([]byte, error) {
	if pd == nil {
		return nil, nil
	}
	if pd.Encoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(pd.Text)
		if err != nil {
			return nil, fmt.Errorf("request.postData.text: bad base64: %v", err)
		}
		return b, nil
	}
	if pd.Text != "" || len(pd.Params) == 0 {
		return []byte(pd.Text), nil
	}
	var b strings.Builder
	for i, p := range pd.Params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.Name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.Value))
	}
	return []byte(b.String()), nil
}

// responseBody sets the response body from content. A browser's HAR holds
// the body decoded from its Content-Encoding; Writer's holds the bytes as
// sent in _encodedText. A decoded body loses its Content-Encoding field
// (and a Content-Length that counted the encoded bytes), with a warning,
// so the exchange never claims an encoding its body does not have.
func (r *Reader) responseBody(x *session.Exchange, c *content, wireSize int64) error {
	p := &x.Response
	var body []byte
	switch {
	case c.EncodedText != "":
		b, err := base64.StdEncoding.DecodeString(c.EncodedText)
		if err != nil {
			return fmt.Errorf("response.content._encodedText: bad base64: %v", err)
		}
		body = b
	case c.Encoding == "base64":
		b, err := base64.StdEncoding.DecodeString(c.Text)
		if err != nil {
			return fmt.Errorf("response.content.text: bad base64: %v", err)
		}
		body = b
	case c.Encoding != "":
		return fmt.Errorf("response.content.encoding %q unknown", clip(c.Encoding))
	default:
		body = []byte(c.Text)
	}
	if setBody(&p.Body, &p.BodySize, body, r.o.MaxBody) {
		x.Flags |= session.FlagResponseTruncated
	}
	if len(body) == 0 && (c.Size > 0 || wireSize > 0) {
		// Recorded without content (Playwright's content: "omit", or a
		// body the browser did not keep).
		p.BodySize = max(c.Size, 0)
		x.Flags |= session.FlagResponseTruncated
		x.Warnings = append(x.Warnings, "HAR holds no response body")
	}
	ce := strings.ToLower(strings.TrimSpace(p.Header.Get("Content-Encoding")))
	if c.EncodedText != "" || ce == "" || ce == "identity" || len(body) == 0 ||
		(ce == "gzip" && len(body) > 1 && body[0] == 0x1f && body[1] == 0x8b) {
		return nil
	}
	h := p.Header[:0]
	for _, f := range p.Header {
		switch {
		case strings.EqualFold(f.Name, "Content-Encoding"):
			continue
		case strings.EqualFold(f.Name, "Content-Length"):
			f.Value = strconv.Itoa(len(body))
		}
		h = append(h, f)
	}
	p.Header = h
	x.Warnings = append(x.Warnings, "HAR body stored decoded: Content-Encoding "+clip(ce)+" dropped")
	return nil
}

// setBody stores b up to max bytes and reports whether it was cut.
func setBody(dst *[]byte, size *int64, b []byte, max int64) bool {
	*size = int64(len(b))
	if int64(len(b)) > max {
		*dst = b[:max:max]
		return true
	}
	if len(b) > 0 {
		*dst = b
	}
	return false
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// toEntry turns an exchange into a HAR entry.
func toEntry(x *session.Exchange, scheme string) entry {
	q, t := &x.Request, x.Timing
	host := q.Header.Get("Host")
	if host == "" && x.Conn.Server.IsValid() {
		host = x.Conn.Server.String()
	}
	if host == "" {
		host = "localhost"
	}
	var e entry
	switch {
	case strings.HasPrefix(q.Target, "/"):
		e.Request.URL = scheme + "://" + host + q.Target
	case strings.HasPrefix(q.Target, "http://") || strings.HasPrefix(q.Target, "https://"):
		e.Request.URL, e.Target = q.Target, q.Target
	default:
		e.Request.URL, e.Target = scheme+"://"+host+"/", q.Target
	}
	e.StartedDateTime = time.Unix(0, t.RequestStart).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	e.Timings = timings{Blocked: -1, DNS: -1, Connect: -1, SSL: -1, Send: millis(t.RequestEnd - t.RequestStart)}
	if x.Flags&session.FlagNoResponse == 0 {
		e.Timings.Wait = millis(t.ResponseStart - t.RequestEnd)
		e.Timings.Receive = millis(t.ResponseEnd - t.ResponseStart)
	}
	e.Time = e.Timings.Send + e.Timings.Wait + e.Timings.Receive
	if x.Conn.ID != 0 {
		e.Connection = strconv.FormatUint(x.Conn.ID, 10)
	}
	if x.Conn.Server.IsValid() {
		e.ServerIPAddress = x.Conn.Server.Addr().String()
		if u, err := url.Parse(e.Request.URL); err == nil && serverAddr(e.ServerIPAddress, 0, u) != x.Conn.Server {
			e.ServerPort = x.Conn.Server.Port()
		}
	}
	e.Request.Method = q.Method
	e.Request.HTTPVersion = orDefault(q.Proto, "HTTP/1.1")
	e.Request.Headers = toNV(q.Header)
	e.Request.Cookies = requestCookies(q.Header)
	e.Request.QueryString = queryString(q.Target)
	e.Request.HeadersSize, e.Request.BodySize = -1, q.BodySize
	if q.BodySize > int64(len(q.Body)) {
		e.Request.FullBodySize = q.BodySize
	}
	if len(q.Body) > 0 {
		pd := &postData{MimeType: orDefault(q.Header.Get("Content-Type"), "application/octet-stream"), Params: []param{}, Text: string(q.Body)}
		if !utf8.Valid(q.Body) {
			pd.Text, pd.Encoding = base64.StdEncoding.EncodeToString(q.Body), "base64"
		}
		e.Request.PostData = pd
	}
	e.Response = toResponse(x)
	return e
}

func toResponse(x *session.Exchange) response {
	p := &x.Response
	r := response{Cookies: []cookie{}, Headers: []nv{}, HeadersSize: -1, BodySize: -1,
		Content: content{MimeType: "x-unknown"}}
	if x.Flags&session.FlagNoResponse != 0 {
		return r
	}
	r.Status, r.StatusText = p.Status, p.Reason
	r.HTTPVersion = orDefault(p.Proto, "HTTP/1.1")
	r.Headers = toNV(p.Header)
	r.Cookies = responseCookies(p.Header)
	r.RedirectURL = p.Header.Get("Location")
	r.BodySize = p.BodySize
	if p.BodySize > int64(len(p.Body)) {
		r.FullBodySize = p.BodySize
	}
	r.Content.MimeType = orDefault(p.Header.Get("Content-Type"), "x-unknown")
	body := p.Body
	if dec, ok := decode(p.Header.Get("Content-Encoding"), body); ok {
		// HAR and Playwright's routeFromHAR want the body decoded; the
		// bytes as sent go in _encodedText so a round trip is exact.
		r.Content.EncodedText = base64.StdEncoding.EncodeToString(body)
		r.Content.Compression = int64(len(dec) - len(body))
		body = dec
	}
	r.Content.Size = int64(len(body))
	if utf8.Valid(body) {
		r.Content.Text = string(body)
	} else {
		r.Content.Text, r.Content.Encoding = base64.StdEncoding.EncodeToString(body), "base64"
	}
	return r
}

// decode undoes the Content-Encoding with session.DecodeBody (bounded at
// 256 MiB); ok is false for no encoding, an unknown one, or bytes that do
// not decode (a truncated body).
func decode(ce string, b []byte) ([]byte, bool) {
	if len(session.ContentCodings(ce)) == 0 {
		return nil, false
	}
	out, err := session.DecodeBody(ce, b, 256<<20)
	if err != nil && !errors.Is(err, session.ErrBodyTooLarge) {
		return nil, false
	}
	return out, true
}

func millis(ns int64) float64 {
	if ns <= 0 {
		return 0
	}
	return float64(ns) / 1e6
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func toNV(h session.Headers) []nv {
	out := make([]nv, len(h))
	for i, f := range h {
		out[i] = nv{Name: f.Name, Value: f.Value}
	}
	return out
}

func queryString(target string) []nv {
	out := []nv{}
	i := strings.IndexByte(target, '?')
	if i < 0 {
		return out
	}
	for _, kv := range strings.Split(target[i+1:], "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		out = append(out, nv{Name: k, Value: v})
	}
	return out
}

func requestCookies(h session.Headers) []cookie {
	out := []cookie{}
	for _, v := range h.Values("Cookie") {
		for _, kv := range strings.Split(v, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if ok && k != "" {
				out = append(out, cookie{Name: k, Value: val})
			}
		}
	}
	return out
}

func responseCookies(h session.Headers) []cookie {
	out := []cookie{}
	for _, v := range h.Values("Set-Cookie") {
		parts := strings.Split(v, ";")
		k, val, ok := strings.Cut(strings.TrimSpace(parts[0]), "=")
		if !ok || k == "" {
			continue
		}
		c := cookie{Name: k, Value: val}
		for _, a := range parts[1:] {
			an, av, _ := strings.Cut(strings.TrimSpace(a), "=")
			switch strings.ToLower(an) {
			case "path":
				c.Path = av
			case "domain":
				c.Domain = av
			case "expires":
				if tm, err := time.Parse(time.RFC1123, av); err == nil {
					c.Expires = tm.UTC().Format(time.RFC3339)
				}
			case "httponly":
				c.HTTPOnly = true
			case "secure":
				c.Secure = true
			}
		}
		out = append(out, c)
	}
	return out
}
