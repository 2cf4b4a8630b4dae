package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/reprise-tool/reprise/replay/ramp"
	"github.com/reprise-tool/reprise/replay/schedule"
)

// A data edge to a request that one of deps waits for by the time rule
// is left out; one to a request still running when deps started, or
// dispatched after them, is kept.
func TestUnimplied(t *testing.T) {
	mk := func(seq uint64, start, end int64, issued ...string) *pending {
		p := &pending{seq: seq}
		p.rec.Start, p.rec.End, p.rec.Issued = start, end, issued
		return p
	}
	login := mk(1, 0, 10, "tok-1")   // issued a token
	api := mk(2, 20, 30)             // after the login: waits for it
	overlap := mk(3, 5, 40, "tok-2") // ran while api started
	unended := mk(4, 25, 0, "tok-3") // no recorded end
	later := mk(5, 50, 60, "tok-4")  // dispatched after api
	tests := []struct {
		name        string
		outstanding []*pending
		deps        []*pending
		want        []*pending
	}{
		{"implied by the time rule", []*pending{login, api}, []*pending{api}, nil},
		{"a dep itself", []*pending{login}, []*pending{login}, nil},
		{"no deps", []*pending{login, api}, nil, []*pending{login}},
		{"still running", []*pending{login, overlap, api}, []*pending{api}, []*pending{overlap}},
		{"no end", []*pending{login, api, unended}, []*pending{api}, []*pending{unended}},
		{"dispatched later", []*pending{api, later}, []*pending{api}, []*pending{later}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unimplied(nil, tt.outstanding, tt.deps); !slices.Equal(got, tt.want) {
				t.Errorf("unimplied = %v, want %v", got, tt.want)
			}
		})
	}
}

// sessState.after finds what schedule.After does, whatever the order the
// requests of a session start, end and complete in.
func TestSessAfter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		ss := &sessState{}
		var start int64
		for seq := uint64(1); seq <= 40; seq++ {
			start += rng.Int64N(10)
			p := &pending{seq: seq}
			p.rec.Start = start
			if rng.IntN(10) > 0 { // a request with no recorded end now and then
				p.rec.End = start + rng.Int64N(30)
			}
			want := schedule.After(nil, ss.outstanding, start)
			got := ss.after(nil, start)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, request %d: after = %v, want %v", round, seq, got, want)
			}
			ss.outstanding = append(ss.outstanding, p)
			for len(ss.outstanding) > 0 && rng.IntN(3) == 0 { // some complete, in any order
				q := ss.outstanding[rng.IntN(len(ss.outstanding))]
				(&Replayer{}).complete(ss, q)
			}
		}
	}
}

// evictIdle releases the same sessions at the same points as a pass over
// every session each time, which it skips while none can be idle long
// enough: sessions touched at random in offset order, some still working.
func TestEvictIdle(t *testing.T) {
	const idle = 100 * time.Millisecond
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		mk := func() *dispatcher {
			r, err := New("http://127.0.0.1:1", WithSessionIdle(idle))
			if err != nil {
				t.Fatal(err)
			}
			return r.newDispatcher(context.Background())
		}
		got, want := mk(), mk()
		var now time.Duration
		for step := range 3000 {
			now += time.Duration(rng.IntN(3000)) * time.Microsecond
			key := fmt.Sprintf("s%d", rng.IntN(400))
			it := &item{key: key, base: key, offset: now}
			for _, d := range []*dispatcher{got, want} {
				ss := d.session(it)
				ss.lastOffset = it.offset
				d.oldest = min(d.oldest, it.offset)
				if step%7 == 0 {
					ss.active.Store(1) // working: kept however idle
				} else if step%5 == 0 {
					ss.active.Store(0)
				}
			}
			if step%16 == 0 {
				got.evictIdle(now)
				want.r.evict(want.sessions, now)
			}
			if !sameKeys(got.sessions, want.sessions) {
				t.Fatalf("seed %d step %d: sessions %v, want %v", seed, step, len(got.sessions), len(want.sessions))
			}
		}
		if g, w := got.r.st.sessions, want.r.st.sessions; g != w || g.Total == 0 {
			t.Fatalf("seed %d: finished %+v, want %+v", seed, g, w)
		}
	}
}

func sameKeys(a, b map[string]*sessState) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if b[k] == nil {
			return false
		}
	}
	return true
}

// TestAdmitBlockedDue checks what admit says of the request it holds
// (blockedDue, read by the live view as the backlog): nothing when a slot
// is free, the request's due time while it waits at the pending cap or
// the session cap, and 0 again once it has its slot.
func TestAdmitBlockedDue(t *testing.T) {
	for _, c := range []struct {
		name              string
		pendFull, sesFull bool
	}{
		{"free", false, false},
		{"pending cap", true, false},
		{"session cap", false, true},
		{"both caps", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Replayer{stopCh: make(chan struct{}), issueCtx: context.Background(), sessSem: ramp.NewSemaphore(1)}
			d := &dispatcher{r: r, ctx: context.Background(), pendSem: newSlots(1)}
			if c.pendFull {
				d.pendSem.acquire(nil, nil)
			}
			if c.sesFull {
				if _, err := r.sessSem.Acquire(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			due := time.Unix(1000, 5)
			tk := &task{ss: &sessState{}, due: due}
			admitted := make(chan bool, 1)
			go func() { admitted <- d.admit(tk) }()
			if c.pendFull || c.sesFull {
				deadline := time.Now().Add(5 * time.Second)
				for r.blockedDue.Load() != due.UnixNano() {
					if time.Now().After(deadline) {
						t.Fatalf("blockedDue %d while admit waits, want %d", r.blockedDue.Load(), due.UnixNano())
					}
					time.Sleep(time.Millisecond)
				}
				if c.pendFull {
					d.pendSem.release()
				}
				if c.sesFull {
					if err := r.sessSem.Release(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !<-admitted {
				t.Fatal("admit refused")
			}
			if bd := r.blockedDue.Load(); bd != 0 {
				t.Errorf("blockedDue %d once admitted, want 0", bd)
			}
		})
	}
}
