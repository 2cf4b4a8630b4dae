package replay

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultMemoryLimit is the soft memory limit SoftMemoryLimit sets for a
// replay: Go's own memory (heap, stacks, the runtime's), to which the
// binary's mapped code (about 19 MiB of the replay command's resident
// set) adds. A replay's live heap is 15-20 MiB at 30k requests a second
// (the reader's 4 MiB block, the look-ahead window, the histograms, the
// connections' buffers); left to GOGC alone the heap grows to twice that
// before a collection, and with the runtime's own memory the resident
// set reached 75 MiB. Under this limit it stayed at 54-58 MiB.
const DefaultMemoryLimit = 40 << 20

// SoftMemoryLimit sets the process's soft memory limit (debug.SetMemoryLimit)
// to limit for a replay, unless one is set already (the GOMEMLIMIT
// environment variable, or a program's own): the collector then runs
// before Go's memory passes limit instead of when the heap has doubled.
// So that a replay whose live heap needs more (thousands of connections
// open at once, a large look-ahead window under WithCompare) never spends
// its CPU collecting back to a limit it cannot meet, the limit rises after
// each collection to the live heap plus half of limit or plus the live
// heap, whichever is more (and starts above what the program already
// holds by half of limit): there is always that much room to allocate
// between collections, less the runtime's own memory, so the collector
// never runs back to back, and once the live heap passes half of limit
// it collects no more often than GOGC=100 would. A fixed half of limit
// above a live heap of 40 MB (40,000 sessions of one HTTP/2 stream each,
// held for the idle limit) made the replay collect five times as often
// as GOGC and spend 60% of its CPU in the collector. The runtime's own
// memory comes out of the room, and it is not always small: with 2 000
// requests parked on in-flight slots (16 times a cap of 128, before
// maxPending came down to 4 times), their stacks were 9 MiB, with the
// runtime's metadata and profiling buckets 15 MiB, and a live heap of 21
// MB left 3 MB to allocate between collections: a fifth of the CPU went
// to the collector, 5% with a quarter of the goroutines. restore ends that
// and puts back no limit. It changes process-wide settings, so a program
// calls it once, around its replay; the replay command does, and
// GOMEMLIMIT=off (or any value) turns it off.
func SoftMemoryLimit(limit int64) (restore func()) {
	if limit <= 0 || os.Getenv("GOMEMLIMIT") != "" || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		return func() {}
	}
	// A program that already holds more than limit (a test binary with
	// its own servers in it) starts with room above what it holds, as
	// after a collection.
	used := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(used)
	debug.SetMemoryLimit(max(limit, int64(used[0].Value.Uint64()-used[1].Value.Uint64())+limit/2))
	var mu sync.Mutex // done, and the limit against a finalizer still running
	done := false
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var afterGC func(*gcSentinel)
	afterGC = func(s *gcSentinel) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live := int64(sample[0].Value.Uint64())
			debug.SetMemoryLimit(max(limit, live+max(limit/2, live)))
		}
		runtime.SetFinalizer(s, afterGC) // again after the next collection
	}
	runtime.SetFinalizer(&gcSentinel{}, afterGC)
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			done = true
			debug.SetMemoryLimit(math.MaxInt64)
		}
	}
}

// gcSentinel is an object nothing references, whose finalizer runs after
// each collection and sets itself again. It holds a pointer, so that the
// tiny allocator, whose objects may never be finalized, leaves it alone.
type gcSentinel struct{ _ *byte }
