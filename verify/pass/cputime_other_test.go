//go:build !linux

package pass

import "time"

// threadCPUTime is unavailable here: BenchmarkVerifyRatio falls back to wall
// time.
func threadCPUTime() (time.Duration, bool) { return 0, false }
