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
		if kind, name, value, ok := readHeader(h); ok {
			out.set(kind+":"+name, Field{Value: value})
		}
	}
}

// readHeader is the field a response header sets, by kind ("cookie" or
// "header") and name; not ok for a header read for none.
func readHeader(h session.Header) (kind, name, value string, ok bool) {
	if foldEqual(h.Name, "set-cookie") {
		if c, err := http.ParseSetCookie(h.Value); err == nil && c.Value != "" {
			return "cookie", c.Name, c.Value, true
		}
		return "", "", "", false
	}
	if len(h.Name) < len(unreadByLen) {
		for _, n := range unreadByLen[len(h.Name)] {
			if foldEqual(h.Name, n) {
				return "", "", "", false
			}
		}
	}
	return "header", http.CanonicalHeaderKey(h.Name), h.Value, true
}

// unread are the response headers (lower case) whose values are the
// protocol's, never issued to a client for it to send back. A name is
// one of them when its canonical form is (ASCII case aside: a name of
// other bytes is its own canonical form).
var unread = [...]string{"date", "content-length", "content-type", "content-encoding", "server", "connection",
	"keep-alive", "transfer-encoding", "expires", "last-modified", "age", "vary",
	"cache-control", "pragma", "access-control-allow-origin", "strict-transport-security"}

// unreadByLen are the unread names by length: a header is compared with
// those of its own length alone.
var unreadByLen = func() (t [32][]string) {
	for _, n := range unread {
		t[len(n)] = append(t[len(n)], n)
	}
	return t
}()

// bodyFields sets the fields of resp's body in out.
func bodyFields(resp *session.Response, out *fieldSet) {
	if body, mt, ok := readableBody(resp); ok {
		mediaFields(mt, body, out)
	}
}

// readableBody is resp's body decoded (a compressed body inflated) and
// its media type; not ok when it cannot be decoded.
func readableBody(resp *session.Response) (body []byte, mt string, ok bool) {
	body = resp.Body
	if enc := resp.Header.Get("Content-Encoding"); enc != "" {
		b, err := session.DecodeBody(enc, body, maxDecoded)
		if err != nil && len(b) == 0 {
			return nil, "", false
		}
		body = b
	}
	return body, MediaType(resp.Header.Get("Content-Type")), true
}

// mediaFields sets the fields of a body of media type mt in out.
func mediaFields(mt string, body []byte, out *fieldSet) {
	switch {
	case mt == "application/x-www-form-urlencoded":
		if vals, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range vals {
				if len(v) > 0 {
					out.set("form:"+k, Field{Value: v[0]})
				}
			}
		}
	case readsJSON(mt, body):
		if !jsonLeaves(body, "json:", out) {
			for k := range out.m {
				if strings.HasPrefix(k, "json:") {
					delete(out.m, k) // not JSON after all: none of its leaves
				}
			}
		}
	}
}

// readsJSON reports whether a response body of media type mt is read as
// JSON.
func readsJSON(mt string, body []byte) bool { return strings.HasSuffix(mt, "json") || LooksJSON(body) }

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
		case notToken[c]:
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

// text is a value or a path as the plan reads it: a string, or bytes of
// a body read in place (the Builder reads a body's leaves without making
// a string of each).
type text interface{ ~string | ~[]byte }

// notToken are the bytes no token of a media type holds (RFC 2045's
// tspecials, controls, space and non-ASCII), by byte: a table rather
// than a search of the list for each byte of every Content-Type.
var notToken = func() (t [256]bool) {
	for c := range t {
		t[c] = c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, byte(c)) >= 0
	}
	return t
}()

// Distinctive reports whether a value at path is worth correlating: long
// enough to be unlikely to appear by chance (8 characters or more, not
// prose), or an identifier by its field name ("id", "order_id",
// "cartId", "uuid", ...) whatever its length. Booleans never are; numbers
// only as identifiers.
func Distinctive(path, v string) bool { return distinctive(path, v) }

func distinctive[P, V text](path P, v V) bool {
	i := indexByte(path, ':')
	if i < 0 {
		return distinctiveAt(false, path[:0], v)
	}
	return distinctiveAt(i == 4 && hasPrefix(path, "json"), path[i+1:], v)
}

// distinctiveAt is Distinctive(kind + ":" + name, v), json telling
// whether kind is "json".
func distinctiveAt[N, V text](json bool, name N, v V) bool {
	if len(v) == 0 || len(v) > 8192 {
		return false
	}
	if idName(leafName(name)) {
		return true
	}
	if json && isNumber(v) {
		return false
	}
	return len(v) >= 8 && !containsAny(v, " \n\t")
}

// TokenLike values are long and free of separators, so finding one inside
// other text is no coincidence.
func TokenLike(v string) bool { return tokenLike(v) }

func tokenLike[T text](v T) bool {
	return len(v) >= 16 && !containsAny(v, " \n\t\"&=;,")
}

// lastName is the name a path ends with: after its kind ("json:",
// "header:", ...), its last member's name, an array element named by its
// array.
func lastName[T text](path T) T {
	i := indexByte(path, ':')
	if i < 0 {
		return path[:0]
	}
	return leafName(path[i+1:])
}

// leafName is lastName of a path's part after its kind.
func leafName[T text](name T) T {
	for {
		i := lastIndexAny(name, ".[")
		if i < 0 {
			return name
		}
		if name[i] != '[' {
			return name[i+1:]
		}
		name = name[:i] // an array element: name it by its array
	}
}

func idName[T text](name T) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8RuneSelf {
			return idNameFolded(strings.ToLower(string(name)), string(name))
		}
	}
	// ASCII: strings.ToLower's reading, without making the lower-case copy.
	switch {
	case len(name) == 2 && foldEqual(name, "id"), len(name) == 4 && (foldEqual(name, "uuid") || foldEqual(name, "guid")),
		len(name) == 3 && foldEqual(name, "ids"):
		return true
	case foldSuffix(name, "_id"), foldSuffix(name, "-id"), foldSuffix(name, "_ids"):
		return true
	case hasSuffix(name, "Id"), hasSuffix(name, "ID"), hasSuffix(name, "Ids"):
		return true
	}
	return false
}

// idNameFolded is idName given the name n lower-cased as well.
func idNameFolded(n, name string) bool {
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
func IsNumber(s string) bool { return isNumber(s) }

func isNumber[T text](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		// A byte of a multi-byte character is no digit either.
		if c := s[i]; (c < '0' || c > '9') && !(i == 0 && c == '-') && c != '.' && c != 'e' && c != 'E' && c != '+' {
			return false
		}
	}
	return true
}

// The strings functions the helpers above need, for bytes as well.

const utf8RuneSelf = 0x80

func indexByte[T text](s T, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// containsAny and lastIndexAny take ASCII sets.
func containsAny[T text](s T, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) >= 0 {
			return true
		}
	}
	return false
}

func lastIndexAny[T text](s T, set string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if strings.IndexByte(set, s[i]) >= 0 {
			return i
		}
	}
	return -1
}

func hasPrefix[T text](s T, prefix string) bool {
	return len(s) >= len(prefix) && string(s[:len(prefix)]) == prefix
}

func hasSuffix[T text](s T, suffix string) bool {
	return len(s) >= len(suffix) && string(s[len(s)-len(suffix):]) == suffix
}

// foldEqual reports whether s equals lower, a lower-case ASCII string,
// but for the case of its ASCII letters.
func foldEqual[T text](s T, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func foldSuffix[T text](s T, lower string) bool {
	return len(s) >= len(lower) && foldEqual(s[len(s)-len(lower):], lower)
}
