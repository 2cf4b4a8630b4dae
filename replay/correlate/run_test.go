package correlate

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/session"
)

// TestRunTable: what one session learns, another finds in the run table,
// long values only; a value still to be issued by an earlier request
// under way is awaited, not substituted, until that request settles.
func TestRunTable(t *testing.T) {
	run := NewRunTable()
	a, b := NewSessionTable(run), NewSessionTable(run)
	carrier := &session.Request{Method: "GET", Target: "/orders/7", Header: session.Headers{{Name: "Authorization", Value: "Bearer rec-token-0001"}}}

	// Before anything is learned: nothing to do.
	if out, rw := b.RewriteAt(carrier, 5); rw.Substituted != 0 || len(rw.Await) != 0 || out.Target != "/orders/7" {
		t.Fatalf("empty run table: %+v %+v", out, rw)
	}
	// Request 3 of session a will issue the token: request 5 of session
	// b awaits it, request 2 (before it) does not.
	login := "login#3"
	run.Issuing([]string{"rec-token-0001", "7"}, 3, login)
	if _, rw := b.RewriteAt(carrier, 5); len(rw.Await) != 1 || rw.Await[0] != login {
		t.Fatalf("request 5 awaits %v, want the login", rw.Await)
	}
	if _, rw := b.RewriteAt(carrier, 2); len(rw.Await) != 0 {
		t.Fatalf("request 2 awaits %v, want nothing", rw.Await)
	}
	// The login's response is learned and it settles: the live token
	// reaches session b; the short id 7 stays session a's.
	rec := &session.Response{Header: session.Headers{{Name: "Content-Type", Value: "application/json"}},
		Body: []byte(`{"token":"rec-token-0001","order":{"id":7}}`)}
	live := &session.Response{Header: rec.Header, Body: []byte(`{"token":"live-token-9999","order":{"id":42}}`)}
	if n := a.Learn(rec, live); n != 2 {
		t.Fatalf("learned %d values, want 2", n)
	}
	run.Settle([]string{"rec-token-0001", "7"}, 3)
	out, rw := b.RewriteAt(carrier, 5)
	if len(rw.Await) != 0 || rw.Substituted != 1 || out.Header[0].Value != "Bearer live-token-9999" || out.Target != "/orders/7" {
		t.Fatalf("session b after the login: %+v %+v", out, rw)
	}
	if out, _ := a.RewriteAt(carrier, 5); out.Target != "/orders/42" {
		t.Fatalf("session a's own id: %q, want /orders/42", out.Target)
	}
	// A failed issue of another token leaves it an orphan for every
	// session; a token inside other text is awaited too.
	run.Issuing([]string{"rec-token-0002"}, 6, "login#6")
	inText := &session.Request{Method: "POST", Target: "/x", Header: session.Headers{{Name: "X-Note", Value: "see rec-token-0002-and-more please"}}}
	if _, rw := b.RewriteAt(inText, 8); len(rw.Await) != 0 {
		t.Fatalf("a short token inside text awaited: %v", rw.Await)
	}
	long := "rec-token-long-0000000002"
	run.Issuing([]string{long}, 6, "login#6")
	inText.Header[0].Value = "see " + long + " please"
	if _, rw := b.RewriteAt(inText, 8); len(rw.Await) != 1 {
		t.Fatalf("a long token inside text: awaits %v, want the login", rw.Await)
	}
	a.LearnFields(map[string]Field{"json:.token": {Value: long}}, nil)
	run.Settle([]string{long}, 6)
	if _, rw := b.RewriteAt(inText, 8); len(rw.Orphans) != 1 || rw.Orphans[0] != long {
		t.Fatalf("orphans %v, want the failed login's token", rw.Orphans)
	}
}

// TestSessionLimit: the run table bounds what each session table sharing
// with it keeps, the newest kept; the run table still holds the long ones.
func TestSessionLimit(t *testing.T) {
	run := NewRunTable()
	run.SetSessionLimit(2)
	s := NewSessionTable(run)
	for _, v := range []string{"recorded-1", "recorded-2", "recorded-3"} {
		s.Map(v, "live"+v[8:])
	}
	if s.Len() != 2 {
		t.Fatalf("session table holds %d values, want 2", s.Len())
	}
	if run.Len() != 3 {
		t.Fatalf("run table holds %d values, want 3", run.Len())
	}
	out, _ := NewSessionTable(run).Rewrite(&session.Request{Method: "GET", Target: "/recorded-1"})
	if out.Target != "/live-1" {
		t.Fatalf("the oldest value from the run table: %q", out.Target)
	}
}

// TestRunShortValues: a session looks a value up in the run table only
// when the run table can hold it: a short value one session learned
// stays its own, but one mapped in the run table itself is found there,
// as an orphan put there is.
func TestRunShortValues(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(run, learner *Table)
		target     string
		want       string
		substitute int
		orphans    int
	}{
		{name: "short, learned by another session", setup: func(_, l *Table) { l.Map("7", "42") },
			target: "/orders/7", want: "/orders/7"},
		{name: "long, learned by another session", setup: func(_, l *Table) { l.Map("order-0000007", "order-42") },
			target: "/orders/order-0000007", want: "/orders/order-42", substitute: 1},
		{name: "short, mapped in the run table", setup: func(r, l *Table) {
			l.Map("order-0000001", "order-41") // the run table is in use
			r.Map("7", "42")
		}, target: "/orders/7", want: "/orders/42", substitute: 1},
		{name: "short orphan, learned in the run table", setup: func(r, l *Table) {
			l.Map("order-0000001", "order-41")
			r.LearnFields(map[string]Field{"json:.id": {Value: "7"}}, nil)
		}, target: "/orders/7", want: "/orders/7", orphans: 1},
		{name: "short, mapped in the run table after a long one", setup: func(r, l *Table) {
			l.Map("order-0000007", "order-42")
			r.Map("9", "99")
		}, target: "/orders/9/order-0000007", want: "/orders/99/order-42", substitute: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := NewRunTable()
			learner, other := NewSessionTable(run), NewSessionTable(run)
			tt.setup(run, learner)
			out, rw := other.RewriteAt(&session.Request{Method: "GET", Target: tt.target}, 1)
			if out.Target != tt.want || rw.Substituted != tt.substitute || len(rw.Orphans) != tt.orphans {
				t.Errorf("%s: %q, %d substituted, orphans %v; want %q, %d, %d orphans",
					tt.target, out.Target, rw.Substituted, rw.Orphans, tt.want, tt.substitute, tt.orphans)
			}
		})
	}
}

// TestTokenIndexLazy: a session's table sharing with a run table makes
// its token index on its first search, from the values it holds then
// (live or orphan, not the evicted), and keeps it from then on.
func TestTokenIndexLazy(t *testing.T) {
	tok := func(i int) string { return fmt.Sprintf("session-token-%04d", i) }
	learn := func(tab *Table, from, to int) {
		for i := from; i < to; i++ {
			tab.Map(tok(i), "live-"+tok(i))
		}
	}
	orphan := func(tab *Table, i int) {
		tab.LearnFields(map[string]Field{"json:.token": {Value: tok(i)}}, nil)
	}
	text := ""
	for i := range 30 {
		text += tok(i) + " "
	}
	tests := []struct {
		name          string
		limit         int
		before, after func(tab *Table)
		want1, want2  []int // the tokens found in text by the first and second search
	}{
		{name: "nothing", before: func(*Table) {}, after: func(*Table) {}},
		{name: "learned before", before: func(tab *Table) { learn(tab, 0, 3) }, after: func(*Table) {},
			want1: []int{0, 1, 2}, want2: []int{0, 1, 2}},
		{name: "learned after", before: func(*Table) {}, after: func(tab *Table) { learn(tab, 0, 3) },
			want2: []int{0, 1, 2}},
		{name: "orphans", before: func(tab *Table) { orphan(tab, 4); learn(tab, 5, 6) }, after: func(tab *Table) { orphan(tab, 7); learn(tab, 4, 5) },
			want1: []int{4, 5}, want2: []int{4, 5, 7}},
		{name: "evicted before and after", limit: 3, before: func(tab *Table) { learn(tab, 0, 12) }, after: func(tab *Table) { learn(tab, 12, 14) },
			want1: []int{9, 10, 11}, want2: []int{11, 12, 13}},
		{name: "indexed past scanTokens", limit: 20, before: func(tab *Table) { learn(tab, 0, 5) }, after: func(tab *Table) { learn(tab, 5, 25) },
			want1: []int{0, 1, 2, 3, 4}, want2: []int{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := NewRunTable()
			if tt.limit > 0 {
				run.SetSessionLimit(tt.limit)
			}
			tab := NewSessionTable(run)
			search := func(want []int) {
				tab.mu.Lock()
				got := tab.tokenIndex().in(text)
				tab.mu.Unlock()
				slices.Sort(got)
				var w []string
				for _, i := range want {
					w = append(w, tok(i))
				}
				if !slices.Equal(got, w) {
					t.Errorf("found %q, want %q", got, w)
				}
			}
			tt.before(tab)
			search(tt.want1)
			tt.after(tab)
			search(tt.want2)
		})
	}
}

// TestRunLockTaken: a rewrite takes the run table's lock only when a
// value it carries may be there: one that carries its session's own
// token and values no table holds goes by while another session is
// learning (here: holds the run table's lock), one that carries another
// session's token waits for it.
func TestRunLockTaken(t *testing.T) {
	own, other := "session-token-own-0001", "session-token-other-01"
	tests := []struct {
		name  string
		req   session.Request
		waits bool
		want  string
	}{
		{name: "own token", req: session.Request{Method: "GET", Target: "/api",
			Header: session.Headers{{Name: "Authorization", Value: "Bearer " + own}}}, want: "Bearer live-own"},
		{name: "short values", req: session.Request{Method: "POST", Target: "/login?user=bench",
			Header: session.Headers{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"user":"bench"}`)}, want: "application/json"},
		{name: "another session's token", req: session.Request{Method: "GET", Target: "/api",
			Header: session.Headers{{Name: "Authorization", Value: "Bearer " + other}}}, waits: true, want: "Bearer live-other"},
		{name: "a token inside text", req: session.Request{Method: "GET", Target: "/api",
			Header: session.Headers{{Name: "X-Note", Value: "see " + own}}}, waits: true, want: "see live-own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := NewRunTable()
			a, b := NewSessionTable(run), NewSessionTable(run)
			a.Map(own, "live-own")
			b.Map(other, "live-other")
			run.mu.Lock() // a session's learning under way
			done := make(chan string)
			go func() {
				out, _ := a.RewriteAt(&tt.req, 5)
				done <- out.Header[0].Value
			}()
			// Each wait is one that a slow machine can only lengthen
			// past its bound in the direction the test expects: a
			// rewrite that must go by the lock has 10 s to, one that
			// must wait is seen waiting after 100 ms.
			wait := 100 * time.Millisecond
			if !tt.waits {
				wait = 10 * time.Second
			}
			var got string
			select {
			case got = <-done:
				if tt.waits {
					t.Errorf("went by the run table's lock")
				}
				run.mu.Unlock()
			case <-time.After(wait):
				if !tt.waits {
					t.Errorf("waited for the run table's lock")
				}
				run.mu.Unlock()
				got = <-done
			}
			if got != tt.want {
				t.Errorf("header %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRunAwaitOrLive: a request dispatched after another that issues a
// value it carries (Issuing returned before its rewrite began) either
// awaits that one or, once it has learned and settled, takes the live
// value, whole and inside other text, however the learning and the
// rewrite interleave. The values' lengths are new to the run table when
// issued: a rewrite that read the run table's lengths (Table.lens)
// before its lock would miss them otherwise.
func TestRunAwaitOrLive(t *testing.T) {
	run := NewRunTable()
	learner, reader := NewSessionTable(run), NewSessionTable(run)
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	for i := 1; i <= 400 && time.Now().Before(deadline); i++ {
		n := 16 + i%48 // token-like, of every length from 16 to 63
		v := fmt.Sprintf("tok%04d", i) + strings.Repeat("x", n-7)
		lv := "live-" + v
		issued := []string{v}
		done := make(chan struct{})
		run.Issuing(issued, uint64(2*i-1), done) // the dispatcher, in order
		wg.Add(2)
		go func() { // the issuing request completes
			defer wg.Done()
			learner.Map(v, lv)
			run.Settle(issued, uint64(2*i-1))
			close(done)
		}()
		go func() { // the later request that carries v
			defer wg.Done()
			req := session.Request{Method: "GET", Target: "/api", Header: session.Headers{
				{Name: "Authorization", Value: "Bearer " + v}, {Name: "X-Note", Value: "see " + v + " here"}}}
			out, rw := reader.RewriteAt(&req, uint64(2*i))
			if len(rw.Await) > 0 {
				if len(rw.Await) != 1 || rw.Await[0] != done {
					t.Errorf("%s: awaits %v, want its issuer alone", v, rw.Await)
					return
				}
				<-done
				out, rw = reader.RewriteAt(&req, uint64(2*i))
			}
			if out.Header[0].Value != "Bearer "+lv || out.Header[1].Value != "see "+lv+" here" || len(rw.Await) > 0 {
				t.Errorf("%s: neither awaited nor took the live value: %q, %q, await %v",
					v, out.Header[0].Value, out.Header[1].Value, rw.Await)
			}
		}()
	}
	wg.Wait()
}

// TestTokenIndexConsistent: whatever the order of learning, orphans,
// eviction, issuing and settling, a table's token index, once made (a
// session's on its first search, a run table's at once), holds exactly
// the token-like values it holds live or as orphans (and, for a run
// table, the ones under way), counted right in its heads.
func TestTokenIndexConsistent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	run := NewRunTable()
	run.SetSessionLimit(12)
	run.max = 16 // evicts, as a run table at its bound does
	tabs := []*Table{NewSessionTable(run), NewSessionTable(run)}
	value := func() string {
		k := rng.IntN(60)
		switch rng.IntN(3) {
		case 0:
			return fmt.Sprintf("eyJhbGci.%08d", k) // one head for all
		case 1:
			return fmt.Sprintf("tok-%012d", k*7919)
		}
		return fmt.Sprintf("id-%d", k) // short: not a token
	}
	check := func(step int, name string, tab *Table) {
		tab.mu.Lock()
		defer tab.mu.Unlock()
		if !tab.indexing() {
			if tab.tokens.len() != 0 {
				t.Fatalf("step %d, %s: %d tokens before its index was made", step, name, tab.tokens.len())
			}
			return
		}
		want := map[string]bool{}
		for v := range tab.live {
			want[v] = tokenLike(v)
		}
		for v := range tab.orphan {
			want[v] = tokenLike(v)
		}
		for v := range tab.issuing {
			want[v] = tokenLike(v)
		}
		got := map[string]bool{}
		for _, l := range tab.tokens.byHead {
			for _, tok := range append([]string{l.first}, l.more...) {
				if got[tok] {
					t.Fatalf("step %d, %s: %q held twice", step, name, tok)
				}
				got[tok] = true
			}
			if l.set != nil && len(l.set) != 1+len(l.more) {
				t.Fatalf("step %d, %s: a head's set holds %d, its list %d", step, name, len(l.set), 1+len(l.more))
			}
		}
		for v, tok := range want {
			if tok != got[v] {
				t.Fatalf("step %d, %s: %q in the index %v, want %v", step, name, v, got[v], tok)
			}
			delete(got, v)
		}
		if len(got) > 0 {
			t.Fatalf("step %d, %s: the index holds values the table does not: %v", step, name, got)
		}
		if n := len(slices.Collect(maps.Keys(want))); tab.tokens.len() > n {
			t.Fatalf("step %d, %s: counts %d tokens of %d values", step, name, tab.tokens.len(), n)
		}
		if tab.tokens.heads != nil {
			sum := 0
			for _, c := range tab.tokens.heads {
				sum += int(c)
			}
			if sum != tab.tokens.len() {
				t.Fatalf("step %d, %s: heads count %d tokens, want %d", step, name, sum, tab.tokens.len())
			}
		}
	}
	var under [][]string // the values issued and not yet settled, by seq-1
	for step := range 3000 {
		tab := tabs[rng.IntN(len(tabs))]
		switch op := rng.IntN(10); {
		case op < 4:
			tab.Map(value(), "live")
		case op < 6:
			tab.LearnFields(map[string]Field{"json:.token": {Value: value()}}, nil)
		case op < 7:
			v := []string{value(), value()}
			under = append(under, v)
			run.Issuing(v, uint64(len(under)), len(under))
		case op < 8:
			if len(under) > 0 {
				seq := 1 + rng.IntN(len(under))
				run.Settle(under[seq-1], uint64(seq))
			}
		default: // a search, which makes a session's index
			req := session.Request{Method: "GET", Target: "/api",
				Header: session.Headers{{Name: "X-Note", Value: "see " + value()}}}
			tab.RewriteAt(&req, uint64(len(under)+1))
		}
		check(step, "run", run)
		check(step, "session 0", tabs[0])
		check(step, "session 1", tabs[1])
	}
}

// TestRunEvictedUnderWay: a token a run table evicts while a request
// under way issues it again is still found inside other text, and a
// later request that carries it there awaits that one.
func TestRunEvictedUnderWay(t *testing.T) {
	run := NewRunTable()
	run.max = 4
	tab := NewSessionTable(run)
	tok := "recorded-token-0001"
	tab.Map(tok, "live-token-0001")
	run.Issuing([]string{tok}, 1, "login")
	for i := range run.max {
		tab.Map(fmt.Sprintf("recorded-token-1%03d", i), "live") // evicts tok
	}
	req := session.Request{Method: "GET", Target: "/api", Header: session.Headers{{Name: "X-Note", Value: "see " + tok}}}
	if _, rw := NewSessionTable(run).RewriteAt(&req, 2); !slices.Equal(rw.Await, []any{"login"}) {
		t.Errorf("awaits %v, want the login under way", rw.Await)
	}
}
