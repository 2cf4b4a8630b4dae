package compare

import (
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxSignatures bounds the distinct sets of differing paths kept per route
// to compute the share of differing requests; beyond it a request with
// any non-volatile difference counts as differing.
const maxSignatures = 1024

// maxPaths bounds the paths tracked per route.
const maxPaths = 512

// exampleLen bounds an example value's length in the report.
const exampleLen = 80

type pathAgg struct {
	kind      Kind
	diffs     int // non-volatile differences
	volatile  int // differences the heuristics discounted
	noise     int // differences among the noise comparisons
	examples  []Example
	volatileX []Example
}

type routeAgg struct {
	compared, noiseN int
	paths            map[string]*pathAgg
	sigs             map[string]int // sorted differing paths joined by \x00 -> requests
	overflow         int            // requests with differences beyond maxSignatures
	overPaths        int            // differences on paths beyond maxPaths
}

type aggregate struct {
	mu     sync.Mutex
	routes map[string]*routeAgg
	over   int // comparisons on routes beyond maxRoutes
}

func (c *Comparer) route(name string) *routeAgg {
	r := c.agg.routes[name]
	if r == nil {
		if len(c.agg.routes) >= c.opts.maxRoutes {
			return nil
		}
		r = &routeAgg{paths: map[string]*pathAgg{}, sigs: map[string]int{}}
		c.agg.routes[name] = r
	}
	return r
}

func (r *routeAgg) path(p string, k Kind) *pathAgg {
	a := r.paths[p]
	if a == nil {
		if len(r.paths) >= maxPaths {
			r.overPaths++
			return nil
		}
		a = &pathAgg{kind: k}
		r.paths[p] = a
	}
	return a
}

// Observe counts one primary-vs-shadow comparison of a request on route.
func (c *Comparer) Observe(route string, diffs []Difference) {
	c.agg.mu.Lock()
	defer c.agg.mu.Unlock()
	r := c.route(route)
	if r == nil {
		c.agg.over++
		return
	}
	r.compared++
	var sig []string
	for _, d := range diffs {
		a := r.path(d.Path, d.Kind)
		if a == nil {
			continue
		}
		ex := Example{Primary: c.show(d.Primary), Shadow: c.show(d.Shadow)}
		if d.Volatile {
			a.volatile++
			if len(a.volatileX) < c.opts.examples {
				a.volatileX = append(a.volatileX, ex)
			}
			continue
		}
		a.diffs++
		if len(a.examples) < c.opts.examples {
			a.examples = append(a.examples, ex)
		}
		sig = append(sig, d.Path)
	}
	if len(sig) == 0 {
		r.sigs[""]++
		return
	}
	slices.Sort(sig)
	key := strings.Join(slices.Compact(sig), "\x00")
	if _, ok := r.sigs[key]; ok || len(r.sigs) < maxSignatures {
		r.sigs[key]++
	} else {
		r.overflow++
	}
}

// ObserveNoise counts one comparison between two answers that should be
// the same (the same request twice to the shadow, or primary vs a
// known-good baseline); its differences are the route's noise.
func (c *Comparer) ObserveNoise(route string, diffs []Difference) {
	c.agg.mu.Lock()
	defer c.agg.mu.Unlock()
	r := c.route(route)
	if r == nil {
		return
	}
	r.noiseN++
	seen := map[string]bool{}
	for _, d := range diffs {
		if seen[d.Path] {
			continue
		}
		seen[d.Path] = true
		if a := r.path(d.Path, d.Kind); a != nil {
			a.noise++
		}
	}
}

func (c *Comparer) show(v string) string {
	if v == "" {
		return ""
	}
	if c.opts.redact != nil && !strings.HasPrefix(v, "sha256:") && !placeholder(v) {
		v = c.opts.redact(v)
	}
	if len(v) > exampleLen {
		cut := exampleLen
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut] + "…"
	}
	return v
}

// placeholder: "[3 items]", "{2 fields}", null, booleans carry no user data.
func placeholder(v string) bool {
	return v == "null" || v == "true" || v == "false" ||
		strings.HasSuffix(v, " items]") || strings.HasSuffix(v, " fields}")
}

// Example is one pair of differing values, redacted and truncated.
type Example struct {
	Primary string `json:"primary"`
	Shadow  string `json:"shadow"`
}

// Field is one path of one route in the report.
type Field struct {
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Count is the non-volatile differences; Rate is Count over the
	// route's comparisons; NoiseRate the path's share of noise comparisons
	// that differed there.
	Count     int     `json:"count"`
	Rate      float64 `json:"rate"`
	NoiseRate float64 `json:"noise_rate"`
	// Volatile counts the differences the heuristics discounted.
	Volatile int       `json:"volatile,omitempty"`
	Examples []Example `json:"examples,omitempty"`
	// Why says why a path was held back as noise.
	Why string `json:"why,omitempty"`
}

// Route is one route's part of the report.
type Route struct {
	Route    string `json:"route"`
	Compared int    `json:"compared"`
	// Differing counts the comparisons with at least one reported path,
	// Share is Differing over Compared.
	Differing    int     `json:"differing"`
	Share        float64 `json:"share"`
	NoiseSamples int     `json:"noise_samples"`
	// Fields are the reported paths, most frequent first; Noise the paths
	// held back, with the reason.
	Fields []Field `json:"fields"`
	Noise  []Field `json:"noise,omitempty"`
}

// Report is the comparison's result.
type Report struct {
	Compared     int     `json:"compared"`
	Differing    int     `json:"differing"`
	NoiseSamples int     `json:"noise_samples"`
	Margin       float64 `json:"margin"`
	MinCount     int     `json:"min_count"`
	Heuristics   bool    `json:"heuristics"`
	// Overflow counts comparisons not kept because too many routes were seen.
	Overflow int     `json:"overflow,omitempty"`
	Routes   []Route `json:"routes"`
}

// Report applies the noise rule to what was observed so far. Routes with
// reported differences come first, by share, then the rest by name.
func (c *Comparer) Report() Report {
	c.agg.mu.Lock()
	defer c.agg.mu.Unlock()
	rep := Report{Margin: c.opts.margin, MinCount: c.opts.minCount, Heuristics: c.opts.heuristics,
		Overflow: c.agg.over, Routes: []Route{}}
	for name, r := range c.agg.routes {
		rr := Route{Route: name, Compared: r.compared, NoiseSamples: r.noiseN, Fields: []Field{}}
		reported := map[string]bool{}
		for p, a := range r.paths {
			f := Field{Path: p, Kind: a.kind, Count: a.diffs, Volatile: a.volatile}
			if r.compared > 0 {
				f.Rate = float64(a.diffs) / float64(r.compared)
			}
			if r.noiseN > 0 {
				f.NoiseRate = float64(a.noise) / float64(r.noiseN)
			}
			switch {
			case a.diffs == 0 && a.volatile == 0:
				continue // seen only in noise comparisons
			case a.diffs == 0:
				f.Why = "volatile values (timestamps, ids, tokens)"
				f.Examples = a.volatileX
			case a.diffs < c.opts.minCount:
				f.Why = "fewer than the minimum count"
				f.Examples = a.examples
			case f.Rate-f.NoiseRate <= c.opts.margin:
				f.Why = "within the noise rate plus margin"
				f.Examples = a.examples
			default:
				f.Examples = a.examples
				reported[p] = true
				rr.Fields = append(rr.Fields, f)
				continue
			}
			rr.Noise = append(rr.Noise, f)
		}
		for sig, n := range r.sigs {
			if sig == "" {
				continue
			}
			for _, p := range strings.Split(sig, "\x00") {
				if reported[p] {
					rr.Differing += n
					break
				}
			}
		}
		if len(reported) > 0 {
			rr.Differing += r.overflow
		}
		if rr.Compared > 0 {
			rr.Share = float64(rr.Differing) / float64(rr.Compared)
		}
		sortFields(rr.Fields)
		sortFields(rr.Noise)
		rep.Compared += rr.Compared
		rep.Differing += rr.Differing
		rep.NoiseSamples += rr.NoiseSamples
		rep.Routes = append(rep.Routes, rr)
	}
	slices.SortFunc(rep.Routes, func(a, b Route) int {
		if a.Share != b.Share {
			if a.Share > b.Share {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Route, b.Route)
	})
	return rep
}

func sortFields(f []Field) {
	slices.SortFunc(f, func(a, b Field) int {
		if a.Count+a.Volatile != b.Count+b.Volatile {
			return (b.Count + b.Volatile) - (a.Count + a.Volatile)
		}
		return strings.Compare(a.Path, b.Path)
	})
}

// Reported lists "route path" for every reported field, for tests and
// scripts that want the verdict alone.
func (r Report) Reported() []string {
	var out []string
	for _, rt := range r.Routes {
		for _, f := range rt.Fields {
			out = append(out, rt.Route+" "+f.Path)
		}
	}
	return out
}
