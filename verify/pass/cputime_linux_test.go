//go:build linux

package pass

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID of <time.h> (Linux).
const clockThreadCPUTime = 3

// threadCPUTime returns the CPU time consumed by the calling OS thread, so
// that BenchmarkVerifyRatio does not count time spent waiting for a CPU on a
// busy machine. The caller must hold runtime.LockOSThread. ok is false if the
// clock is unavailable.
func threadCPUTime() (d time.Duration, ok bool) {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
