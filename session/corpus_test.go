package session

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// corpus generates deterministic, realistic JSON API traffic: small GETs,
// JSON lists of a few KB, occasional bodies over 100 KB, and the headers
// real clients send (cookies, bearer tokens, tracing ids).
type corpus struct {
	rng   *rand.Rand
	now   int64
	words []string
	users []user
	items map[int]string // the catalogue: the API serves a finite dataset
	// unique makes every served product fresh (new random fields), the
	// worst case for a compressor: nothing repeats beyond the headers.
	unique bool
}

// catalogueSize is how many products the corpus API serves.
const catalogueSize = 5000

// product returns the JSON of product id: the same when served again,
// unless the product was updated in between.
func (c *corpus) product(id int) string {
	if s, ok := c.items[id]; ok && !c.unique && c.rng.IntN(50) != 0 { // 2% of reads see an update
		return s
	}
	s := c.item(id)
	c.items[id] = s
	return s
}

// user is one client's state: its token and cookie last for many requests,
// as in real traffic, and are refreshed now and then.
type user struct {
	agent, token, sid string
	uses              int
}

var agents = []string{
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"okhttp/4.12.0",
	"shop-ios/5.3.1 (iPhone; iOS 18.1; Scale/3.00)",
}

func newCorpus(seed uint64) *corpus {
	return &corpus{
		items: map[int]string{},
		users: make([]user, 200),
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:   1_767_225_600_000_000_000, // 2026-01-01T00:00:00Z
		words: strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima
			mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu
			widget gadget gizmo sprocket bracket flange socket lever spring valve`),
	}
}

func (c *corpus) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[c.rng.IntN(16)]
	}
	return string(b)
}

func (c *corpus) uuid() string {
	h := c.hex(32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (c *corpus) item(id int) string {
	w := c.words
	return fmt.Sprintf(`{"id":%d,"sku":"%s-%04d","name":"%s %s","price":%d.%02d,"currency":"EUR","in_stock":%t,"tags":["%s","%s"],"updated_at":"2026-01-%02dT%02d:%02d:%02dZ","owner":"%s"}`,
		id, strings.ToUpper(w[c.rng.IntN(len(w))][:3]), c.rng.IntN(10000), w[c.rng.IntN(len(w))], w[c.rng.IntN(len(w))],
		c.rng.IntN(500), c.rng.IntN(100), c.rng.IntN(2) == 0, w[c.rng.IntN(len(w))], w[c.rng.IntN(len(w))],
		1+c.rng.IntN(28), c.rng.IntN(24), c.rng.IntN(60), c.rng.IntN(60), c.uuid())
}

// list returns n products starting at first, as a page of the API's list.
func (c *corpus) list(first, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.product(1000 + (first+i)%catalogueSize))
	}
	fmt.Fprintf(&b, `],"first":%d,"total":%d}`, first, catalogueSize)
	return []byte(b.String())
}

// next returns the next exchange of the corpus.
func (c *corpus) next() *Exchange {
	c.now += int64(200_000 + c.rng.IntN(3_000_000)) // 0.2-3.2 ms apart
	user := c.rng.IntN(len(c.users))
	u := &c.users[user]
	if u.uses%300 == 0 { // log in, or refresh the token
		u.agent = agents[c.rng.IntN(len(agents))]
		u.token = fmt.Sprintf("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLSVkIiwiZXhwIjoxNzY3MjI5MjAwfQ.%s", c.hex(86))
		u.sid = fmt.Sprintf("sid=%s; theme=dark; _ga=GA1.2.%d.%d; consent=yes", c.hex(32), c.rng.IntN(1<<30), 1767225600+c.rng.IntN(100000))
	}
	u.uses++
	ex := &Exchange{
		Conn: Conn{
			ID:     uint64(c.rng.IntN(500)),
			Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(user / 100), byte(user)}), uint16(30000+c.rng.IntN(30000))),
			Server: netip.MustParseAddrPort("10.0.9.1:8080"),
		},
		Index:   c.rng.IntN(50),
		Session: fmt.Sprintf("user-%d", user),
	}
	reqH := Headers{
		{"Host", "api.shop.example"},
		{"User-Agent", u.agent},
		{"Accept", "application/json"},
		{"Accept-Encoding", "gzip, deflate, br"},
		{"Accept-Language", "en-GB,en;q=0.9"},
		{"Authorization", "Bearer " + u.token},
		{"Cookie", u.sid},
		{"X-Request-Id", c.uuid()},
		{"traceparent", "00-" + c.hex(32) + "-" + c.hex(16) + "-01"},
	}
	respH := Headers{
		{"Content-Type", "application/json; charset=utf-8"},
		{"Date", time.Unix(0, c.now).UTC().Format(http.TimeFormat)},
		{"Server", "nginx/1.27.3"},
		{"Cache-Control", "no-store"},
		{"X-Request-Id", reqH[7].Value},
		{"Vary", "Accept-Encoding, Authorization"},
		{"Strict-Transport-Security", "max-age=63072000; includeSubDomains"},
	}
	var reqBody, respBody []byte
	status := 200
	method := "GET"
	var target string
	switch p := c.rng.IntN(100); {
	case p < 45: // a small GET of one item
		id := 1000 + c.rng.IntN(catalogueSize)
		target = fmt.Sprintf("/api/v1/items/%d", id)
		respBody = []byte(c.product(id))
	case p < 75: // a list page of a few KB
		page, per := c.rng.IntN(100), 5+5*c.rng.IntN(4)
		target = fmt.Sprintf("/api/v1/items?page=%d&per_page=%d&sort=price", page+1, per)
		respBody = c.list(page*per, per)
	case p < 90: // a POST with a JSON body
		method = "POST"
		target = fmt.Sprintf("/api/v1/carts/%s/lines", c.uuid())
		reqBody = []byte(fmt.Sprintf(`{"sku":"WID-%04d","quantity":%d}`, c.rng.IntN(10000), 1+c.rng.IntN(5)))
		reqH = append(reqH, Header{"Content-Type", "application/json"}, Header{"Content-Length", fmt.Sprint(len(reqBody))})
		status = 201
		respBody = []byte(c.product(1000 + c.rng.IntN(catalogueSize)))
	case p < 97: // an empty 204 or a 404
		method = "DELETE"
		target = fmt.Sprintf("/api/v1/carts/%s/lines/%d", c.uuid(), c.rng.IntN(50))
		status = 204
		if c.rng.IntN(3) == 0 {
			status = 404
			respBody = []byte(`{"error":"not_found","message":"no such line"}`)
		}
	default: // an export of 100 KB or more
		target = "/api/v1/reports/export?format=json"
		respBody = c.list(c.rng.IntN(catalogueSize), 400+c.rng.IntN(400))
	}
	respH = append(respH, Header{"Content-Length", fmt.Sprint(len(respBody))})
	ex.Request = Request{Method: method, Target: target, Proto: "HTTP/1.1", Header: reqH, Body: reqBody, BodySize: int64(len(reqBody))}
	ex.Response = Response{Proto: "HTTP/1.1", Status: status, Reason: reason(status), Header: respH, Body: respBody, BodySize: int64(len(respBody))}
	lat := int64(1_000_000 + c.rng.IntN(40_000_000))
	ex.Timing = Timing{RequestStart: c.now, RequestEnd: c.now + 50_000, ResponseStart: c.now + lat, ResponseEnd: c.now + lat + int64(len(respBody))*2}
	return ex
}

func reason(status int) string {
	switch status {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 204:
		return "No Content"
	case 404:
		return "Not Found"
	}
	return "Status"
}

// rawSize is the size of ex as HTTP/1.1 on the wire: what benchmarks count.
func rawSize(ex *Exchange) int64 {
	n := int64(len(ex.Request.Method) + 1 + len(ex.Request.Target) + 1 + len(ex.Request.Proto) + 2)
	for _, h := range ex.Request.Header {
		n += int64(len(h.Name) + 2 + len(h.Value) + 2)
	}
	n += 2 + int64(len(ex.Request.Body))
	n += int64(len(ex.Response.Proto) + 5 + len(ex.Response.Reason) + 2)
	for _, h := range ex.Response.Header {
		n += int64(len(h.Name) + 2 + len(h.Value) + 2)
	}
	return n + 2 + int64(len(ex.Response.Body))
}
