package benchclock

import (
	"runtime"
	"testing"
	"time"
)

// Split is what Interleave measured: the wall time and the thread CPU time
// spent in the baseline's blocks and in the subject's blocks.
type Split struct {
	// Rounds is how many blocks of each ran: b.N.
	Rounds int
	// BaseWall and SubjectWall are wall time.
	BaseWall, SubjectWall time.Duration
	// BaseCPU and SubjectCPU are the thread's CPU time, or wall time where
	// the thread clock is unavailable (CPU false).
	BaseCPU, SubjectCPU time.Duration
	// CPU says BaseCPU and SubjectCPU come from the thread clock.
	CPU bool
}

// Interleave runs base and then subject once per iteration of b.Loop, on
// one OS thread (runtime.LockOSThread), and adds up the wall time and the
// thread CPU time each took. base and subject each run one block of their
// operation: several calls, so that reading the clocks is a small part of
// a block. They may call b.Fatal.
func Interleave(b *testing.B, base, subject func()) Split {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, haveCPU := ThreadCPU()
	return interleave(b.Loop, readClocks, haveCPU, base, subject)
}

// readClocks reads the thread CPU clock, then the wall clock.
func readClocks() (wall, cpu time.Duration) {
	c, _ := ThreadCPU()
	return time.Duration(time.Now().UnixNano()), c
}

// interleave is Interleave with its loop and clocks given, for tests.
func interleave(loop func() bool, now func() (wall, cpu time.Duration), haveCPU bool, base, subject func()) Split {
	var s Split
	for loop() {
		w0, c0 := now()
		base()
		w1, c1 := now()
		subject()
		w2, c2 := now()
		s.BaseWall += w1 - w0
		s.SubjectWall += w2 - w1
		s.BaseCPU += c1 - c0
		s.SubjectCPU += c2 - c1
		s.Rounds++
	}
	s.CPU = haveCPU
	if !haveCPU {
		s.BaseCPU, s.SubjectCPU = s.BaseWall, s.SubjectWall
	}
	return s
}

// Report reports subject ÷ base as the benchmark's metrics: "x-baseline"
// by CPU time (wall time without the thread clock) and "x-baseline-wall"
// by wall time, each only when its baseline took measurable time. It sets
// ns/op to zero: an iteration is one block of two different operations, so
// a time per iteration means nothing. Callers add their own per-operation
// metrics from the Split's sums.
func (s Split) Report(b *testing.B) {
	for unit, v := range s.metrics() {
		b.ReportMetric(v, unit)
	}
}

// metrics are the metrics Report reports, by unit.
func (s Split) metrics() map[string]float64 {
	m := map[string]float64{"ns/op": 0}
	if s.BaseWall > 0 {
		m["x-baseline-wall"] = float64(s.SubjectWall) / float64(s.BaseWall)
	}
	if s.BaseCPU > 0 {
		m["x-baseline"] = float64(s.SubjectCPU) / float64(s.BaseCPU)
	}
	return m
}
