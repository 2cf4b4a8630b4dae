package corrplan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// The reference reading: how the Builder read exchanges before it read
// them in place, kept as the plan's definition. A response's issued
// values are the distinctive ones of Fields; a request's carried values
// are read from strings built for each place, a JSON body decoded by
// encoding/json; sessions are dropped in an order sorted afresh. The
// Builder must compute the same plan.

// referenceBuilder is a Builder reading the reference way.
func referenceBuilder() *Builder {
	b := NewBuilder(0)
	b.addHook = referenceAdd
	b.sweepHook = referenceSweep
	return b
}

func referenceAdd(b *Builder, ex *session.Exchange, sv *sessionValues, ro *routeOrigins) {
	c := refCarried{b: b, sv: sv, route: ro.route}
	c.request(&ex.Request)
	if ex.Flags&session.FlagNoResponse == 0 && (len(ex.Response.Header) > 0 || len(ex.Response.Body) > 0) {
		for path, f := range refHeaderFields(&ex.Response) {
			if Distinctive(path, f.Value) {
				b.issue(sv, b.key(f.Value), &origin{ro.route, Generalize(path)})
			}
		}
		var bf fieldSet
		bodyFields(&ex.Response, &bf)
		for path, f := range bf.m {
			if Distinctive(path, f.Value) {
				b.issue(sv, b.key(f.Value), &origin{ro.route, Generalize(path)})
			}
		}
	}
}

// refHeaderFields are the fields of resp's headers, by path.
func refHeaderFields(resp *session.Response) map[string]Field {
	out := map[string]Field{}
	for _, h := range resp.Header {
		name := http.CanonicalHeaderKey(h.Name)
		switch name {
		case "Set-Cookie":
			if c, err := http.ParseSetCookie(h.Value); err == nil && c.Value != "" {
				out["cookie:"+c.Name] = Field{Value: c.Value}
			}
		case "Date", "Content-Length", "Content-Type", "Content-Encoding", "Server", "Connection",
			"Keep-Alive", "Transfer-Encoding", "Expires", "Last-Modified", "Age", "Vary",
			"Cache-Control", "Pragma", "Access-Control-Allow-Origin", "Strict-Transport-Security":
		default:
			out["header:"+name] = Field{Value: h.Value}
		}
	}
	return out
}

func referenceSweep(b *Builder) {
	cutoff := b.now - int64(b.idle)
	for _, sv := range b.sessions {
		if sv.last < cutoff {
			b.drop(sv)
		}
	}
	if b.total <= maxValues && len(b.sessions) <= maxSessions {
		return
	}
	all := slices.Collect(maps.Values(b.sessions))
	slices.SortFunc(all, func(x, y *sessionValues) int { return cmp.Compare(x.last, y.last) })
	for _, sv := range all {
		if b.total <= maxValues*3/4 && len(b.sessions) <= maxSessions*3/4 {
			break
		}
		b.forgotten += uint64(sv.vals.len())
		b.drop(sv)
	}
}

type refCarried struct {
	b     *Builder
	sv    *sessionValues
	route string
}

func (c *refCarried) value(place, v string) {
	if v == "" {
		return
	}
	if o, ok := lookup(c.b, c.sv, v); ok {
		c.b.rule(o)
		return
	}
	if refSuspect(place, v) {
		kind, name, _ := strings.Cut(place, ":")
		c.b.unreplaced(c.route, kind, name, v)
	}
}

func (c *refCarried) inText(s string) bool {
	found := false
	for _, piece := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t\n\r\"&=;,", r) }) {
		if len(piece) < 16 || !TokenLike(piece) {
			continue
		}
		if o, ok := lookup(c.b, c.sv, piece); ok {
			c.b.rule(o)
			found = true
		}
	}
	return found
}

func (c *refCarried) request(req *session.Request) {
	path, query, _ := strings.Cut(req.Target, "?")
	for _, seg := range strings.Split(path, "/") {
		if dec, err := url.PathUnescape(seg); err == nil && dec != "" {
			c.value("path", dec)
		}
	}
	c.form("query:", query)
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
		c.form("form:", string(body))
		return
	case strings.HasSuffix(mt, "json") || (mt == "" && LooksJSON(body)):
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			c.json("json:", v)
			return
		}
	}
	c.inText(string(body))
}

func (c *refCarried) form(prefix, s string) {
	if s == "" {
		return
	}
	for _, p := range strings.Split(s, "&") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		if dec, err := url.QueryUnescape(v); err == nil {
			name, _ := url.QueryUnescape(k)
			c.value(prefix+name, dec)
		}
	}
}

func (c *refCarried) header(name, value string) {
	name = http.CanonicalHeaderKey(name)
	switch name {
	case "Cookie":
		for _, p := range strings.Split(value, ";") {
			if k, v, ok := strings.Cut(p, "="); ok {
				c.value("cookie:"+strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`))
			}
		}
		return
	case "Authorization", "Proxy-Authorization":
		if _, cred, ok := strings.Cut(value, " "); ok {
			c.value("header:"+name, strings.TrimSpace(cred))
			return
		}
	}
	if Uncarrying(name) {
		return
	}
	if _, ok := lookup(c.b, c.sv, value); ok || !c.inText(value) {
		c.value("header:"+name, value)
	}
}

func (c *refCarried) json(path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c.json(path+"."+k, e)
		}
	case []any:
		for _, e := range x {
			c.json(path+"[*]", e)
		}
	case string:
		c.value(path, x)
	case json.Number:
		c.value(path, x.String())
	}
}

func refSuspect(place, v string) bool {
	kind, name, _ := strings.Cut(place, ":")
	switch kind {
	case "path":
		return false
	case "cookie":
		return Distinctive(place, v) && len(v) >= 8
	case "header":
		if name == "Authorization" || name == "Proxy-Authorization" {
			return len(v) >= 8
		}
		return refSecretName(name) && Distinctive(place, v)
	}
	last := lastName(place)
	return (refSecretName(last) || idName(last)) && Distinctive(place, v)
}

func refSecretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range [...]string{"token", "key", "auth", "session", "csrf", "xsrf", "secret", "signature", "nonce"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// samePlans builds the plan of exs both ways and compares them.
func samePlans(t *testing.T, name string, exs []*session.Exchange) *session.CorrelationPlan {
	t.Helper()
	fast, ref := NewBuilder(0), referenceBuilder()
	for _, x := range exs {
		fast.Add(x)
		ref.Add(x)
	}
	got, want := fast.Plan(), ref.Plan()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: plan\n%s\nwant (the reference reading's)\n%s", name, planText(got), planText(want))
	}
	return got
}

func planText(p *session.CorrelationPlan) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "  exchanges %d, forgotten %d, all %v\n", p.Exchanges, p.Forgotten, p.All)
	for _, r := range p.Rules {
		fmt.Fprintf(&sb, "  rule %s %s\n", r.Route, r.Field)
	}
	for _, u := range p.Unreplaced {
		fmt.Fprintf(&sb, "  unreplaced %s %s ×%d e.g. %s\n", u.Route, u.Place, u.Requests, u.Example)
	}
	return sb.String()
}

// TestPlanSameAsReference: the plans of recordings of every shape (and
// of the files in $REPRISE_PLAN_RECORDINGS) are the reference reading's.
func TestPlanSameAsReference(t *testing.T) {
	for _, kind := range []string{"json", "static", "h2c", "flow"} {
		samePlans(t, kind, madeUp(kind, 10_000, 1))
	}
	for seed := range uint64(4) {
		p := samePlans(t, fmt.Sprint("varied seed ", seed), madeUp("varied", 5000, seed))
		if len(p.Rules) < 10 || len(p.Unreplaced) < 5 || p.Forgotten == 0 && seed == 0 {
			t.Errorf("varied seed %d: too little found to compare:\n%s", seed, planText(p))
		}
	}
	if p := samePlans(t, "mixed", madeUp("mixed", 20_000, 3)); p.Forgotten == 0 || len(p.Rules) != 2 {
		t.Errorf("mixed: the bounds let nothing go, or the SKUs' rules are missing:\n%s", planText(p))
	}
	// Many sessions: the bounds drop the least recently active.
	many := madeUp("flow", 20_000, 2)
	for i, x := range many {
		x.Session = fmt.Sprint("s", i)
	}
	samePlans(t, "a session per exchange", many)
	for path, exs := range recordingFiles(t, 200_000) {
		samePlans(t, path, exs)
	}
}

// TestIssuedSameAsFields: the values a response issues are the
// distinctive fields of Fields, each at its generalized path.
func TestIssuedSameAsFields(t *testing.T) {
	for seed := range uint64(3) {
		for _, x := range madeUp("varied", 2000, seed) {
			checkIssued(t, &x.Response)
		}
	}
}

func checkIssued(t *testing.T, resp *session.Response) {
	b := NewBuilder(0)
	ro := b.routeOf("GET", "/")
	got := map[string]bool{}
	for _, is := range append(b.headerIssued(ro, resp), b.readBody(ro, resp)...) {
		got[fmt.Sprint(is.key, " ", is.o.route, " ", is.o.field)] = true
	}
	want := map[string]bool{}
	for path, f := range Fields(resp) {
		if Distinctive(path, f.Value) {
			want[fmt.Sprint(b.key(f.Value), " GET / ", Generalize(path))] = true
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("headers %q body %q:\nissued %v\nwant %v", resp.Header, resp.Body, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

// FuzzPlanSameAsReference: whatever a response holds and a later request
// carries, the Builder issues Fields' distinctive values and computes the
// reference reading's plan.
func FuzzPlanSameAsReference(f *testing.F) {
	for _, vb := range variedBodies {
		f.Add(vb.ctype, strings.ReplaceAll(vb.body, "%s", "tok-0123456789"), "x-order-id", "tok-0123456789", "application/json",
			`{"id":"tok-0123456789","a":[1,"b"]}`, "/o/tok-0123456789?k=tok-0123456789")
	}
	f.Add("application/x-www-form-urlencoded", "a=tok-0123456789abcdef&b=%zz", "Cookie", `sid="tok-0123456789abcdef"`, "",
		`x tok-0123456789abcdef,y`, "/%zz/a?=&&x")
	f.Fuzz(func(t *testing.T, respType, respBody, hdrName, hdrValue, reqType, reqBody, target string) {
		resp := session.Response{Status: 200, Body: []byte(respBody), Header: session.Headers{
			{Name: "Content-Type", Value: respType}, {Name: hdrName, Value: hdrValue}}}
		checkIssued(t, &resp)
		exs := []*session.Exchange{
			{Session: "s", Request: session.Request{Method: "GET", Target: "/a"}, Response: resp, Timing: session.Timing{RequestStart: 1}},
			{Session: "s", Request: session.Request{Method: "POST", Target: target, Body: []byte(reqBody), Header: session.Headers{
				{Name: "Content-Type", Value: reqType}, {Name: hdrName, Value: hdrValue}, {Name: "X-Api-Key", Value: reqBody}}},
				Timing: session.Timing{RequestStart: 2}},
		}
		fast, ref := NewBuilder(0), referenceBuilder()
		for _, x := range exs {
			fast.Add(x)
			ref.Add(x)
		}
		got, want := fast.Plan(), ref.Plan()
		// A request carrying one place twice may name either value as
		// its example in the reference reading (a map's order).
		for _, p := range []*session.CorrelationPlan{got, want} {
			for i := range p.Unreplaced {
				p.Unreplaced[i].Example = ""
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("plan\n%s\nwant\n%s", planText(got), planText(want))
		}
	})
}
