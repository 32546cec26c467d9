//go:build !linux

package verify

import "time"

// threadCPUTime is unavailable here; BenchmarkVerifyRatio falls back to wall
// time.
func threadCPUTime() (time.Duration, bool) { return 0, false }
