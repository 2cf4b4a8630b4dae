package corrplan

import (
	"bytes"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// maxDecoded bounds how much of a compressed body is inflated for reading
// its fields.
const maxDecoded = 8 << 20

// LooksJSON reports whether b starts like a JSON object or array, for
// bodies sent without a JSON media type.
func LooksJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// Field is one value found in a response, by its place in it.
type Field struct {
	Value  string
	Number bool
}

// Fields lists the values of a response by path: "json:" plus a JSON path
// ("json:.data.items[0].id"), "form:" plus a field name for form-encoded
// bodies, "cookie:" plus a cookie name for Set-Cookie, "header:" plus a
// canonical header name for other headers. Compressed bodies are
// inflated first (session.DecodeBody). A response without any is nil: most responses of
// a replay (assets, plain pages) have none, and an empty map each was an
// allocation per request.
func Fields(resp *session.Response) map[string]Field {
	var out fieldSet
	if resp == nil {
		return nil
	}
	headerFields(resp, &out)
	bodyFields(resp, &out)
	return out.m
}

// headerFields sets the fields of resp's headers in out.
func headerFields(resp *session.Response, out *fieldSet) {
	for _, h := range resp.Header {
		name := http.CanonicalHeaderKey(h.Name)
		switch name {
		case "Set-Cookie":
			if c, err := http.ParseSetCookie(h.Value); err == nil && c.Value != "" {
				out.set("cookie:"+c.Name, Field{Value: c.Value})
			}
		case "Date", "Content-Length", "Content-Type", "Content-Encoding", "Server", "Connection",
			"Keep-Alive", "Transfer-Encoding", "Expires", "Last-Modified", "Age", "Vary",
			"Cache-Control", "Pragma", "Access-Control-Allow-Origin", "Strict-Transport-Security":
		default:
			out.set("header:"+name, Field{Value: h.Value})
		}
	}
}

// bodyFields sets the fields of resp's body in out.
func bodyFields(resp *session.Response, out *fieldSet) {
	body := resp.Body
	if enc := resp.Header.Get("Content-Encoding"); enc != "" {
		b, err := session.DecodeBody(enc, body, maxDecoded)
		if err != nil && len(b) == 0 {
			return
		}
		body = b
	}
	mt := MediaType(resp.Header.Get("Content-Type"))
	switch {
	case mt == "application/x-www-form-urlencoded":
		if vals, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range vals {
				if len(v) > 0 {
					out.set("form:"+k, Field{Value: v[0]})
				}
			}
		}
	case strings.HasSuffix(mt, "json") || LooksJSON(body):
		if !jsonLeaves(body, "json:", out) {
			for k := range out.m {
				if strings.HasPrefix(k, "json:") {
					delete(out.m, k) // not JSON after all: none of its leaves
				}
			}
		}
	}
}

// uncarrying are the request headers that never carry a server-issued
// value in practice.
var uncarrying = [...]string{"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Content-Type",
	"Content-Length", "Connection", "Referer", "Origin", "Cache-Control", "Pragma"}

// Uncarrying reports whether a request header of this name (any case)
// never carries a server-issued value in practice: the plan looks for
// none there, and the replay's substitution (package replay/correlate)
// spares it the look-ups, so that both read the same places.
//
// HTTP/2's pseudo-header fields (":authority", ":path", ":method",
// ":scheme", ":protocol") are among them: :authority is Host's HTTP/2
// form, the target's host, which the replay writes itself; :path is the
// request target, whose segments and query values are read (and
// substituted) as the target's; the others name the method and scheme.
func Uncarrying(name string) bool {
	if strings.HasPrefix(name, ":") {
		return true
	}
	for _, n := range uncarrying {
		if len(n) == len(name) && strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// fieldSet is Fields' result, made on the first value.
type fieldSet struct{ m map[string]Field }

func (s *fieldSet) set(path string, f Field) {
	if s.m == nil {
		s.m = make(map[string]Field)
	}
	s.m[path] = f
}

// MediaType is the media type mime.ParseMediaType returns for v (lower
// case, "" when malformed). With at most one parameter it reads the type
// alone: ParseMediaType would also build a map of the parameters, twice
// per replayed request, only to drop it; with more it may reject repeated
// names, so it is asked.
func MediaType(v string) string {
	base, params, _ := strings.Cut(v, ";")
	if strings.Contains(params, ";") {
		mt, _, _ := mime.ParseMediaType(v)
		return mt
	}
	base = strings.TrimSpace(base)
	slash, upper := -1, false
	for i := 0; i < len(base); i++ {
		switch c := base[i]; {
		case c == '/' && slash < 0:
			slash = i
		case c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0:
			mt, _, _ := mime.ParseMediaType(v)
			return mt
		case 'A' <= c && c <= 'Z':
			upper = true
		}
	}
	if base == "" || slash == 0 || slash == len(base)-1 {
		return "" // no type, or an empty type or subtype
	}
	if upper {
		base = strings.ToLower(base)
	}
	return base
}

// Distinctive reports whether a value at path is worth correlating: long
// enough to be unlikely to appear by chance (8 characters or more, not
// prose), or an identifier by its field name ("id", "order_id",
// "cartId", "uuid", ...) whatever its length. Booleans never are; numbers
// only as identifiers.
func Distinctive(path, v string) bool {
	if v == "" || len(v) > 8192 {
		return false
	}
	if idName(lastName(path)) {
		return true
	}
	if strings.HasPrefix(path, "json:") && IsNumber(v) {
		return false
	}
	return len(v) >= 8 && !strings.ContainsAny(v, " \n\t")
}

// TokenLike values are long and free of separators, so finding one inside
// other text is no coincidence.
func TokenLike(v string) bool {
	return len(v) >= 16 && !strings.ContainsAny(v, " \n\t\"&=;,")
}

func lastName(path string) string {
	_, name, _ := strings.Cut(path, ":")
	if i := strings.LastIndexAny(name, ".["); i >= 0 {
		if name[i] == '[' {
			// an array element: name it by its array
			return lastName("x:" + name[:i])
		}
		name = name[i+1:]
	}
	return name
}

func idName(name string) bool {
	n := strings.ToLower(name)
	switch {
	case n == "id", n == "uuid", n == "guid", n == "ids":
		return true
	case strings.HasSuffix(n, "_id"), strings.HasSuffix(n, "-id"), strings.HasSuffix(n, "_ids"):
		return true
	case strings.HasSuffix(name, "Id"), strings.HasSuffix(name, "ID"), strings.HasSuffix(name, "Ids"):
		return true
	}
	return false
}

// IsNumber reports whether s reads as a JSON number.
func IsNumber(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if (c < '0' || c > '9') && !(i == 0 && c == '-') && c != '.' && c != 'e' && c != 'E' && c != '+' {
			return false
		}
	}
	return true
}
