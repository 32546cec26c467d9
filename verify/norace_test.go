//go:build !race

package verify

// raceEnabled: the race detector is on (see race_test.go).
const raceEnabled = false
