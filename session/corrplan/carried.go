package corrplan

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// carried reads the values one request carries.
//
// It reads them in place: a value is hashed where it lies (a header's
// value, a JSON leaf in the body, a piece of text) and made a string, a
// place name or a canonical header name only when it is to be reported
// unreplaced.
type carried struct {
	b     *Builder
	sv    *sessionValues
	route string
}

// carriedValue looks up one carried value at the place of kind and name
// (kind + ":" + name; "path" has none); when no response issued it and it
// looks like a credential or an id, it is unreplaced.
func carriedValue[N, V text](c *carried, kind string, name N, v V) {
	if len(v) == 0 {
		return
	}
	if o, ok := lookup(c.b, c.sv, v); ok {
		c.b.rule(o)
		return
	}
	notIssued(c, kind, name, v)
}

// notIssued reports v, carried at the place of kind and name and issued
// by no response, when suspect.
func notIssued[N, V text](c *carried, kind string, name N, v V) {
	if !suspect(kind, name, v) {
		return
	}
	n := string(name)
	if kind == "header" {
		n = http.CanonicalHeaderKey(n)
	}
	c.b.unreplaced(c.route, kind, n, string(v))
}

// inText looks up the long token-like pieces of text, which the
// substitution replaces inside other text; it reports whether any was
// issued.
func inText[T text](c *carried, s T) bool {
	found := false
	for i := 0; i < len(s); {
		for i < len(s) && textSep(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !textSep(s[j]) {
			j++
		}
		if piece := s[i:j]; len(piece) >= 16 && tokenLike(piece) {
			if o, ok := lookup(c.b, c.sv, piece); ok {
				c.b.rule(o)
				found = true
			}
		}
		i = j
	}
	return found
}

// textSep reports whether c separates the pieces inText looks up (ASCII:
// no byte of a multi-byte character is one).
func textSep(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '&', '=', ';', ',':
		return true
	}
	return false
}

func (c *carried) request(req *session.Request) {
	path, query, _ := strings.Cut(req.Target, "?")
	for rest, more := path, true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		if dec, err := url.PathUnescape(seg); err == nil && dec != "" {
			carriedValue(c, "path", "", dec)
		}
	}
	c.form("query", query)
	for _, h := range req.Header {
		c.header(h.Name, h.Value)
	}
	body := req.Body
	if len(body) == 0 || len(body) > maxScanBody {
		return
	}
	mt := MediaType(req.Header.Get("Content-Type"))
	switch {
	case mt == "application/x-www-form-urlencoded":
		c.form("form", string(body))
		return
	case strings.HasSuffix(mt, "json") || (mt == "" && LooksJSON(body)):
		if c.json(body) {
			return
		}
	}
	inText(c, body)
}

func (c *carried) form(kind, s string) {
	for rest, more := s, s != ""; more; {
		var p string
		p, rest, more = strings.Cut(rest, "&")
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		if dec, err := url.QueryUnescape(v); err == nil {
			name, _ := url.QueryUnescape(k)
			carriedValue(c, kind, name, dec)
		}
	}
}

func (c *carried) header(name, value string) {
	switch {
	case foldEqual(name, "cookie"):
		for rest, more := value, true; more; {
			var p string
			p, rest, more = strings.Cut(rest, ";")
			if k, v, ok := strings.Cut(p, "="); ok {
				carriedValue(c, "cookie", strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`))
			}
		}
		return
	case foldEqual(name, "authorization"), foldEqual(name, "proxy-authorization"):
		if _, cred, ok := strings.Cut(value, " "); ok {
			carriedValue(c, "header", name, strings.TrimSpace(cred))
			return
		}
	}
	if Uncarrying(name) || value == "" {
		return
	}
	if o, ok := lookup(c.b, c.sv, value); ok {
		c.b.rule(o)
	} else if !inText(c, value) {
		notIssued(c, "header", name, value)
	}
}

// carriedLeaf is a JSON leaf of a request body, its path ending at end
// in the Builder's reqPaths.
type carriedLeaf struct {
	end int
	v   []byte
}

// carrySink collects the leaves of a request's JSON body, for looking
// them up once the body has proved to be JSON.
type carrySink struct{ b *Builder }

func (k *carrySink) leaf(path, raw []byte, plain, _ bool) bool {
	v := raw
	if !plain {
		s, ok := unquote(raw, false)
		if !ok {
			return false
		}
		v = []byte(s)
	}
	k.b.reqPaths = append(k.b.reqPaths, path...)
	k.b.reqLeaves = append(k.b.reqLeaves, carriedLeaf{len(k.b.reqPaths), v})
	return true
}

// json looks up the leaves of a JSON body, at paths from "json:" with
// array elements as [*]; it reports false when body is not JSON (as
// encoding/json's Decoder reads it). A body whose objects repeat a key
// (or escape one) is decoded, as the decoder keeps the last member of a
// key alone.
func (c *carried) json(body []byte) bool {
	b := c.b
	b.reqLeaves, b.reqPaths = b.reqLeaves[:0], b.reqPaths[:0]
	b.csink = carrySink{b}
	s := &b.scan
	*s = leafScanner{doc: body, sink: &b.csink, path: append(s.path[:0], "json:"...),
		stars: true, keys: distinctKeys, seen: s.seen[:0]}
	ok := s.value()
	s.doc, s.sink = nil, nil
	clear(s.seen[:cap(s.seen)])
	defer func() {
		clear(b.reqLeaves) // the body is not to be kept
		b.reqLeaves = b.reqLeaves[:0]
	}()
	if s.irregular {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return false
		}
		c.decoded("json:", v)
		return true
	}
	if !ok {
		return false
	}
	start := 0
	for _, l := range b.reqLeaves {
		path := b.reqPaths[start:l.end]
		start = l.end
		carriedValue(c, "json", path[len("json:"):], l.v)
	}
	return true
}

// decoded looks up the leaves of a decoded JSON value at path.
func (c *carried) decoded(path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c.decoded(path+"."+k, e)
		}
	case []any:
		for _, e := range x {
			c.decoded(path+"[*]", e)
		}
	case string:
		carriedValue(c, "json", path[len("json:"):], x)
	case json.Number:
		carriedValue(c, "json", path[len("json:"):], x.String())
	}
}

// suspect reports whether a carried value no response issued looks like
// something a server issues: the Authorization credentials, a cookie, a
// header or field named like a token, a key or an id, and distinctive.
// Its place is kind + ":" + name, a header's name in any case.
func suspect[N, V text](kind string, name N, v V) bool {
	switch kind {
	case "path":
		return false // resource names; too many are stable to tell
	case "cookie":
		return distinctiveAt(false, name, v) && len(v) >= 8
	case "header":
		if foldEqual(name, "authorization") || foldEqual(name, "proxy-authorization") {
			return len(v) >= 8
		}
		// Distinctive reads the name's case ("...Id"): the canonical one.
		return secretName(name) && distinctiveAt(false, http.CanonicalHeaderKey(string(name)), v)
	}
	last := leafName(name)
	return (secretName(last) || idName(last)) && distinctiveAt(kind == "json", name, v)
}

// secrets are what secretName looks for.
var secrets = [...]string{"token", "key", "auth", "session", "csrf", "xsrf", "secret", "signature", "nonce"}

// secretName reports whether a header or field name says it holds a
// token, a key or a session.
func secretName[T text](name T) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8RuneSelf {
			n := strings.ToLower(string(name))
			for _, s := range secrets {
				if strings.Contains(n, s) {
					return true
				}
			}
			return false
		}
	}
	for _, s := range secrets {
		for i := 0; i+len(s) <= len(name); i++ {
			if foldEqual(name[i:i+len(s)], s) {
				return true
			}
		}
	}
	return false
}
