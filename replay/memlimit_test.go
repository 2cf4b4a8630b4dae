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
	if got := debug.SetMemoryLimit(-1); got != limit {
		restore()
		t.Fatalf("limit %d, want %d", got, limit)
	}
	// Another caller, or a second replay, leaves the limit in force alone.
	SoftMemoryLimit(2 * limit)()
	if got := debug.SetMemoryLimit(-1); got != limit {
		restore()
		t.Fatalf("a second call changed the limit to %d", got)
	}
	// A live heap of 32 MiB, twice the limit: after a collection the
	// limit is the live heap plus half of limit, not a wall to collect
	// against.
	live := make([]byte, 32<<20)
	deadline := time.Now().Add(10 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer runs on its own goroutine
		if got = debug.SetMemoryLimit(-1); got >= int64(len(live))+limit/2 {
			break
		}
	}
	runtime.KeepAlive(live)
	restore()
	if got < 32<<20+limit/2 {
		t.Errorf("limit %d MiB under a live heap of 32 MiB", got>>20)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit %d after restore, want none", got)
	}
	restore() // twice is harmless
}
