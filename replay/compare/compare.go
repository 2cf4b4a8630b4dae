package compare

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// Kind says how two answers differ at one path.
type Kind string

// The kinds of difference.
const (
	KindStatus  Kind = "status"  // the status codes differ
	KindHeader  Kind = "header"  // a chosen header's values differ
	KindValue   Kind = "value"   // a JSON leaf of the same type has another value
	KindType    Kind = "type"    // a JSON value changed type
	KindMissing Kind = "missing" // the shadow lacks a field the primary has
	KindExtra   Kind = "extra"   // the shadow has a field the primary lacks
	KindBody    Kind = "body"    // a non-JSON body differs (hash and length)
)

// Difference is one place where two answers differ.
type Difference struct {
	Kind Kind `json:"kind"`
	// Path is "status", "header:Name", "body", or a JSON path such as
	// "$.items[3].price_cents".
	Path string `json:"path"`
	// Primary and Shadow are the values as text ("" when absent). A JSON
	// string is given without quotes; an object or array as "{...}" or
	// "[...]" with its size.
	Primary string `json:"primary"`
	Shadow  string `json:"shadow"`
	// Volatile is set when the heuristics judge the difference noise (both
	// values timestamps, UUIDs, JWTs or random ids of one shape).
	Volatile bool `json:"volatile,omitempty"`
}

// Equivalent says whether the shadow's value s stands for the primary's
// value p although the text differs (correlation). Nil means never.
type Equivalent func(p, s string) bool

// DefaultHeaders are the headers compared unless WithHeaders says
// otherwise: the ones that change what a client does with the answer.
func DefaultHeaders() []string { return []string{"Content-Type", "Location", "Cache-Control"} }

// Defaults of the report's thresholds.
const (
	DefaultMargin   = 0.10
	DefaultMinCount = 3
	// maxDiffs bounds the differences kept for one pair of answers, so a
	// completely different 10 MB array costs bounded memory.
	maxDiffs = 256
	// maxDecoded bounds an inflated body.
	maxDecoded = 16 << 20
)

type options struct {
	headers    []string
	ignore     []pattern
	ignoreHdr  map[string]bool
	heuristics bool
	margin     float64
	minCount   int
	redact     func(string) string
	examples   int
	maxRoutes  int
}

// Option configures a Comparer.
type Option func(*options) error

// WithHeaders sets the headers compared (names, any case). None compares
// no headers.
func WithHeaders(names ...string) Option {
	return func(o *options) error {
		o.headers = nil
		for _, n := range names {
			n = strings.TrimSpace(n)
			if n == "" || strings.ContainsAny(n, " :\t") {
				return fmt.Errorf("header name %q is not a header name; give e.g. Content-Type", n)
			}
			o.headers = append(o.headers, http.CanonicalHeaderKey(n))
		}
		return nil
	}
}

// WithIgnore drops JSON paths ("$.items[*].updated_at"; "*" matches any
// key or index, and a pattern covers everything below the node it names),
// protobuf field paths ("1.3[*].2", "[*].4" for every message of a gRPC
// stream) and header names ("Date" or "header:Date") from every
// comparison.
func WithIgnore(items ...string) Option {
	return func(o *options) error {
		for _, it := range items {
			it = strings.TrimSpace(it)
			switch {
			case it == "":
				return errors.New("empty --ignore item; give a JSON path such as $.items[*].updated_at or a header name")
			case strings.HasPrefix(it, "$"), it[0] >= '0' && it[0] <= '9', it[0] == '[':
				// A protobuf path is a JSON path's segments without "$.".
				switch it[0] {
				case '$':
				case '[':
					it = "$" + it
				default:
					it = "$." + it
				}
				p, err := parsePattern(it)
				if err != nil {
					return err
				}
				o.ignore = append(o.ignore, p)
			default:
				name := strings.TrimPrefix(it, "header:")
				if strings.ContainsAny(name, " :\t[]") {
					return fmt.Errorf("ignore %q: neither a JSON path (starting with $) nor a header name", it)
				}
				o.ignoreHdr[http.CanonicalHeaderKey(name)] = true
			}
		}
		return nil
	}
}

// WithHeuristics turns the volatile-value heuristics on or off (default on).
func WithHeuristics(on bool) Option {
	return func(o *options) error { o.heuristics = on; return nil }
}

// WithMargin sets by how much a path's difference rate must exceed its
// noise rate to be reported (0 to 1, default 0.10).
func WithMargin(m float64) Option {
	return func(o *options) error {
		if m < 0 || m >= 1 || m != m {
			return fmt.Errorf("margin %v is outside 0..1; give e.g. 0.1", m)
		}
		o.margin = m
		return nil
	}
}

// WithMinCount sets how many differences a path needs on a route before it
// is reported (default 3).
func WithMinCount(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("minimum count %d: give at least 1", n)
		}
		o.minCount = n
		return nil
	}
}

// WithRedact sets how example values are shown, e.g. a capture redactor's
// keyed Hash, so a report can be shared without the values it saw.
func WithRedact(f func(string) string) Option {
	return func(o *options) error { o.redact = f; return nil }
}

// WithExamples sets how many examples a reported path keeps (default 3).
func WithExamples(n int) Option {
	return func(o *options) error {
		if n < 0 || n > 100 {
			return fmt.Errorf("examples %d is outside 0..100", n)
		}
		o.examples = n
		return nil
	}
}

// Comparer compares answers and gathers the results into a Report. Diff is
// a pure function of its inputs; Observe and ObserveNoise may be called
// from many goroutines.
type Comparer struct {
	opts options
	agg  aggregate
}

// New returns a Comparer configured by opts.
func New(opts ...Option) (*Comparer, error) {
	o := options{
		headers: DefaultHeaders(), ignoreHdr: map[string]bool{}, heuristics: true,
		margin: DefaultMargin, minCount: DefaultMinCount, examples: 3, maxRoutes: 1000,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	c := &Comparer{opts: o}
	c.agg.routes = map[string]*routeAgg{}
	return c, nil
}

// Diff compares the shadow's answer with the primary's. eq may be nil.
// The differences come in a stable order: status, headers, body.
func (c *Comparer) Diff(primary, shadow *session.Response, eq Equivalent) []Difference {
	var out []Difference
	if primary == nil || shadow == nil {
		return out
	}
	if primary.Status != shadow.Status {
		out = append(out, Difference{Kind: KindStatus, Path: "status",
			Primary: strconv.Itoa(primary.Status), Shadow: strconv.Itoa(shadow.Status)})
	}
	for _, h := range c.opts.headers {
		if c.opts.ignoreHdr[h] {
			continue
		}
		pv, sv := strings.Join(primary.Header.Values(h), ", "), strings.Join(shadow.Header.Values(h), ", ")
		if pv == sv || (eq != nil && eq(pv, sv)) {
			continue
		}
		d := Difference{Kind: KindHeader, Path: "header:" + h, Primary: pv, Shadow: sv}
		if pv != "" && sv != "" {
			switch partsMatch(pv, sv, eq, c.opts.heuristics) {
			case matchEqual:
				continue
			case matchVolatile:
				d.Volatile = true
			}
		}
		out = append(out, d)
	}
	out = grpcStatus(out, primary, shadow)
	if truncated(primary) || truncated(shadow) {
		return out
	}
	if grpcMedia(primary) || grpcMedia(shadow) {
		return c.diffGRPC(out, primary, shadow, eq)
	}
	pb, perr := decoded(primary)
	sb, serr := decoded(shadow)
	if perr != nil || serr != nil {
		pb, sb = primary.Body, shadow.Body // compare as sent
	}
	if len(pb) == 0 && len(sb) == 0 {
		return out
	}
	if protoMedia(primary) || protoMedia(shadow) {
		w := pbWalker{walker{c: c, eq: eq, out: out}}
		w.message([]byte("$"), pb, sb)
		return w.out
	}
	if isJSON(primary, pb) || isJSON(shadow, sb) {
		pv, pok := parseJSON(pb)
		sv, sok := parseJSON(sb)
		if pok && sok {
			w := walker{c: c, eq: eq, out: out}
			w.walk(make([]byte, 0, 64), pv, sv)
			return w.out
		}
	}
	if !bytes.Equal(pb, sb) {
		out = append(out, Difference{Kind: KindBody, Path: "body", Primary: digest(pb), Shadow: digest(sb)})
	}
	return out
}

func truncated(r *session.Response) bool { return r.BodySize > int64(len(r.Body)) }

// decoded undoes the body's Content-Encoding with session.DecodeBody,
// bounded by maxDecoded; a longer body is compared by its first
// maxDecoded bytes.
func decoded(r *session.Response) ([]byte, error) {
	b, err := session.DecodeBody(r.Header.Get("Content-Encoding"), r.Body, maxDecoded)
	if errors.Is(err, session.ErrBodyTooLarge) {
		err = nil
	}
	return b, err
}

func isJSON(r *session.Response, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasSuffix(mt, "json") {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

func parseJSON(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data: not one JSON document
	}
	return v, true
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:6]) + " len " + strconv.Itoa(len(b))
}

type walker struct {
	c   *Comparer
	eq  Equivalent
	out []Difference
}

func (w *walker) add(d Difference) {
	if len(w.out) < maxDiffs {
		w.out = append(w.out, d)
	}
}

func (w *walker) walk(path []byte, p, s any) {
	if len(w.out) >= maxDiffs {
		return
	}
	if len(path) == 0 {
		path = append(path, '$')
	}
	if w.ignored(path) {
		return
	}
	switch pv := p.(type) {
	case map[string]any:
		sv, ok := s.(map[string]any)
		if !ok {
			w.add(Difference{Kind: KindType, Path: string(path), Primary: show(p), Shadow: show(s)})
			return
		}
		keys := make([]string, 0, len(pv)+len(sv))
		for k := range pv {
			keys = append(keys, k)
		}
		for k := range sv {
			if _, ok := pv[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			sub := appendKey(path, k)
			pe, pok := pv[k]
			se, sok := sv[k]
			switch {
			case pok && sok:
				w.walk(sub, pe, se)
			case pok:
				if !w.ignored(sub) {
					w.add(Difference{Kind: KindMissing, Path: string(sub), Primary: show(pe)})
				}
			default:
				if !w.ignored(sub) {
					w.add(Difference{Kind: KindExtra, Path: string(sub), Shadow: show(se)})
				}
			}
		}
	case []any:
		sv, ok := s.([]any)
		if !ok {
			w.add(Difference{Kind: KindType, Path: string(path), Primary: show(p), Shadow: show(s)})
			return
		}
		for i := 0; i < max(len(pv), len(sv)); i++ {
			sub := append(append(append(path, '['), strconv.Itoa(i)...), ']')
			switch {
			case i < len(pv) && i < len(sv):
				w.walk(sub, pv[i], sv[i])
			case i < len(pv):
				if !w.ignored(sub) {
					w.add(Difference{Kind: KindMissing, Path: string(sub), Primary: show(pv[i])})
				}
			default:
				if !w.ignored(sub) {
					w.add(Difference{Kind: KindExtra, Path: string(sub), Shadow: show(sv[i])})
				}
			}
			if len(w.out) >= maxDiffs {
				return
			}
		}
	default:
		if typeName(p) != typeName(s) {
			w.add(Difference{Kind: KindType, Path: string(path), Primary: show(p), Shadow: show(s)})
			return
		}
		if scalarEqual(p, s) {
			return
		}
		ps, ss := show(p), show(s)
		if w.eq != nil && w.eq(ps, ss) {
			return
		}
		d := Difference{Kind: KindValue, Path: string(path), Primary: ps, Shadow: ss}
		if w.c.opts.heuristics {
			d.Volatile = volatile(lastKey(path), ps, ss)
		}
		w.add(d)
	}
}

func (w *walker) ignored(path []byte) bool {
	for _, p := range w.c.opts.ignore {
		if p.covers(path) {
			return true
		}
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func scalarEqual(p, s any) bool {
	switch pv := p.(type) {
	case nil:
		return s == nil
	case bool:
		return pv == s.(bool)
	case string:
		return pv == s.(string)
	case json.Number:
		sv := s.(json.Number)
		if pv == sv {
			return true
		}
		a, aok := new(big.Float).SetString(string(pv))
		b, bok := new(big.Float).SetString(string(sv))
		return aok && bok && a.Cmp(b) == 0
	}
	return false
}

// show gives a value as report text: strings unquoted, containers by size.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	case json.Number:
		return x.String()
	case []any:
		return "[" + strconv.Itoa(len(x)) + " items]"
	case map[string]any:
		return "{" + strconv.Itoa(len(x)) + " fields}"
	}
	return ""
}

// appendKey appends .key, or ["key"] for keys that are not identifiers.
func appendKey(path []byte, k string) []byte {
	if identKey(k) {
		return append(append(path, '.'), k...)
	}
	q, _ := json.Marshal(k)
	return append(append(append(path, '['), q...), ']')
}

func identKey(k string) bool {
	if k == "" || k == "*" {
		return false
	}
	for i, c := range k {
		if !(c == '_' || c == '-' && i > 0 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// lastKey returns the last object key of a path ("" for an index).
func lastKey(path []byte) string {
	s := string(path)
	if i := strings.LastIndexByte(s, '.'); i >= 0 && !strings.ContainsAny(s[i:], "[]") {
		return s[i+1:]
	}
	return ""
}
