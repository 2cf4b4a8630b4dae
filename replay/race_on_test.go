//go:build race

package replay

// raceEnabled shortens the memory test under the race detector, which
// slows every request several times.
const raceEnabled = true
