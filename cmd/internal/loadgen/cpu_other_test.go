//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loadgen

import "time"

// cpuTime is not measured on this platform: no cpu-ns/op metric.
func cpuTime() time.Duration { return 0 }
