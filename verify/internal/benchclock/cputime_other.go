//go:build !linux

package benchclock

import "time"

// ThreadCPU is unavailable here: ok is always false, and Interleave falls
// back to wall time.
func ThreadCPU() (d time.Duration, ok bool) { return 0, false }
