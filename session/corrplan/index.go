package corrplan

import (
	"context"
	"io"
	"strings"

	"github.com/reprise-tool/reprise/session"
)

// Index answers a replay's questions of a plan for each exchange: whether
// its response issues anything to learn, which of its fields, and whether
// its recorded body is needed for them. A nil *Index is no plan: every
// distinctive value is learned, as before plans existed.
type Index struct {
	all    bool
	routes map[string]*routeRules
}

type routeRules struct {
	fields map[string]struct{}
	body   bool // a json: or form: rule, read from the body
}

// NewIndex indexes p; nil when p is nil.
func NewIndex(p *session.CorrelationPlan) *Index {
	if p == nil {
		return nil
	}
	x := &Index{all: p.All, routes: make(map[string]*routeRules)}
	for _, r := range p.Rules {
		rr := x.routes[r.Route]
		if rr == nil {
			rr = &routeRules{fields: make(map[string]struct{})}
			x.routes[r.Route] = rr
		}
		rr.fields[r.Field] = struct{}{}
		if strings.HasPrefix(r.Field, "json:") || strings.HasPrefix(r.Field, "form:") {
			rr.body = true
		}
	}
	return x
}

// Learns reports whether responses of route issue values to learn.
func (x *Index) Learns(route string) bool {
	return x == nil || x.all || x.routes[route] != nil
}

// NeedsBody reports whether the recorded response body of route is read
// for learning (a JSON or form field is planned).
func (x *Index) NeedsBody(route string) bool {
	if x == nil || x.all {
		return true
	}
	rr := x.routes[route]
	return rr != nil && rr.body
}

// Filter keeps the fields of a route's response that the plan names; it
// returns fields itself when everything is learned, nil when nothing is.
func (x *Index) Filter(route string, fields map[string]Field) map[string]Field {
	if x == nil || x.all || len(fields) == 0 {
		return fields
	}
	rr := x.routes[route]
	if rr == nil {
		return nil
	}
	var out map[string]Field
	for path, f := range fields {
		if _, ok := rr.fields[Generalize(path)]; ok {
			if out == nil {
				out = make(map[string]Field, len(rr.fields))
			}
			out[path] = f
		}
	}
	return out
}

// Merge joins the plans of a recording's parts (or of several recordings
// replayed together) into one; nil when any is nil, for then a part has
// no plan and one must be computed.
func Merge(plans ...*session.CorrelationPlan) *session.CorrelationPlan {
	if len(plans) == 0 {
		return nil
	}
	if len(plans) == 1 {
		return plans[0]
	}
	out := &session.CorrelationPlan{Rules: []session.CorrelationRule{}}
	seen := make(map[session.CorrelationRule]bool)
	for _, p := range plans {
		if p == nil {
			return nil
		}
		out.All = out.All || p.All
		out.Exchanges += p.Exchanges
		out.Forgotten += p.Forgotten
		for _, r := range p.Rules {
			if !seen[r] {
				seen[r] = true
				out.Rules = append(out.Rules, r)
			}
		}
		out.Unreplaced = append(out.Unreplaced, p.Unreplaced...)
	}
	return out
}

// Stored is the correlation plan in src's metadata (a session.Reader's,
// or a MultiReader's joined over its parts); nil when src has no
// metadata or a part has no plan. session.Open reads a file's final
// metadata, which holds the plan, up front when the file has a trailer.
func Stored(src session.Source) *session.CorrelationPlan {
	switch m := src.(type) {
	case interface{ Metadata() []session.Metadata }:
		mds := m.Metadata()
		plans := make([]*session.CorrelationPlan, len(mds))
		for i := range mds {
			plans[i] = mds[i].Correlation
		}
		return Merge(plans...)
	case interface{ Metadata() session.Metadata }:
		return m.Metadata().Correlation
	}
	return nil
}

// Compute reads src to its end and returns its plan, in memory bounded
// whatever its length, for a recording made without one.
func Compute(ctx context.Context, src session.Source) (*session.CorrelationPlan, error) {
	b := NewBuilder(0)
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ex, err := src.Next()
		if err == io.EOF {
			return b.Plan(), nil
		}
		if err != nil {
			return nil, err
		}
		b.Add(ex)
	}
}
