package identity

import (
	"testing"

	"github.com/reprise-tool/reprise/session"
)

// filtering is a Source that keeps the filter it is given.
type filtering struct {
	session.SliceSource
	keep func(*session.Exchange) bool
}

func (f *filtering) FilterResponseBodies(keep func(*session.Exchange) bool) bool {
	f.keep = keep
	return true
}

// TestAnnotateFiltersBodies checks that recomputed sessions pass a body
// filter on, widened to the bodies the tracker reads: a token may be in
// any answer to a POST or PUT, or to a login path the options name.
func TestAnnotateFiltersBodies(t *testing.T) {
	tr, err := NewTracker(WithLoginPaths("/sso/*"))
	if err != nil {
		t.Fatal(err)
	}
	src := &filtering{}
	none := func(*session.Exchange) bool { return false }
	if !session.FilterResponseBodies(tr.Recompute(src), none) || src.keep == nil {
		t.Fatal("Recompute does not pass the filter on")
	}
	for _, tc := range []struct {
		method, target string
		want           bool
	}{
		{"GET", "/items", false},    // read for its status alone
		{"POST", "/items", true},    // may issue an access_token
		{"PUT", "/session", true},   // likewise
		{"GET", "/sso/start", true}, // a login path the options name
		{"DELETE", "/items", false}, // no token comes back
	} {
		ex := &session.Exchange{Request: session.Request{Method: tc.method, Target: tc.target}}
		if got := src.keep(ex); got != tc.want {
			t.Errorf("%s %s: kept %v, want %v", tc.method, tc.target, got, tc.want)
		}
	}
	if !session.FilterResponseBodies(tr.Recompute(src), nil) || src.keep != nil {
		t.Error("a nil filter is not passed on as nil")
	}
}
