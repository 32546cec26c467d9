//go:build race

package verify

// raceEnabled: the race detector is on. It changes allocation counts (and
// makes sync.Pool drop a random share of what it is given), so allocation
// tests skip.
const raceEnabled = true
