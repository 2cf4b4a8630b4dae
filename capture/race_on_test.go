//go:build race

package capture_test

// raceEnabled lowers the live test's load under the race detector, which
// slows packet processing several times.
const raceEnabled = true
