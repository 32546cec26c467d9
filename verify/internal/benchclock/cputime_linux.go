//go:build linux

package benchclock

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID of <time.h> (Linux).
const clockThreadCPUTime = 3

// ThreadCPU returns the CPU time consumed by the calling OS thread. The
// caller must hold runtime.LockOSThread for two readings to be comparable.
// ok is false if the clock is unavailable.
func ThreadCPU() (d time.Duration, ok bool) {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
