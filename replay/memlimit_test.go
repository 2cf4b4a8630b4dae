package replay

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestSoftMemoryLimit checks that the limit is set only where none is,
// rises above a live heap that needs more, and is taken back.
func TestSoftMemoryLimit(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Skip("a memory limit is set already")
	}
	const limit = 16 << 20
	restore := SoftMemoryLimit(limit)
	defer restore()
	start := debug.SetMemoryLimit(-1)
	if start < limit || start == math.MaxInt64 {
		t.Fatalf("limit %d, want at least %d", start, limit)
	}
	// Another caller, or a second replay, leaves the limit in force alone.
	SoftMemoryLimit(2 * limit)()
	if got := debug.SetMemoryLimit(-1); got != start {
		t.Fatalf("a second call changed the limit from %d to %d", start, got)
	}
	// A live heap larger than the limit and than what the program held
	// at the start: after a collection the limit is the live heap plus
	// half of limit, not a wall to collect against.
	live := make([]byte, start+limit)
	want := int64(len(live)) + limit/2
	deadline := time.Now().Add(10 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer runs on its own goroutine
		if got = debug.SetMemoryLimit(-1); got >= want {
			break
		}
	}
	runtime.KeepAlive(live)
	if got < want {
		t.Errorf("limit %d MiB under a live heap of %d MiB", got>>20, len(live)>>20)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit %d after restore, want none", got)
	}
	restore() // twice is harmless
}
