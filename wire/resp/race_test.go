//go:build race

package resp

// raceEnabled is set when the tests run under the race detector, which
// slows them and limits them to 8128 goroutines.
const raceEnabled = true
