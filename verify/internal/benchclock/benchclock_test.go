package benchclock

import (
	"crypto/sha256"
	"maps"
	"runtime"
	"testing"
	"time"
)

// fakeClocks are a wall clock and a CPU clock that move only when told.
type fakeClocks struct{ wall, cpu time.Duration }

func (c *fakeClocks) now() (wall, cpu time.Duration) { return c.wall, c.cpu }

func (c *fakeClocks) spend(wall, cpu time.Duration) func() {
	return func() { c.wall += wall; c.cpu += cpu }
}

// loopN is a b.Loop that runs n iterations.
func loopN(n int) func() bool {
	return func() bool { n--; return n >= 0 }
}

// TestInterleave: the sums of each side, the fallback to wall time without
// the thread clock, and the quotients, which are left out when the baseline
// took no measurable time (rather than reported infinite or NaN).
func TestInterleave(t *testing.T) {
	type cost struct{ wall, cpu time.Duration }
	for _, c := range []struct {
		name          string
		rounds        int
		haveCPU       bool
		base, subject cost
		want          Split
		metrics       map[string]float64
	}{
		{"thread clock", 5, true, cost{10, 7}, cost{30, 14},
			Split{Rounds: 5, BaseWall: 50, SubjectWall: 150, BaseCPU: 35, SubjectCPU: 70, CPU: true},
			map[string]float64{"ns/op": 0, "x-baseline": 2, "x-baseline-wall": 3}},
		{"no thread clock: CPU figures are wall time", 4, false, cost{10, 1}, cost{25, 1},
			Split{Rounds: 4, BaseWall: 40, SubjectWall: 100, BaseCPU: 40, SubjectCPU: 100},
			map[string]float64{"ns/op": 0, "x-baseline": 2.5, "x-baseline-wall": 2.5}},
		{"baseline took no time", 3, true, cost{0, 0}, cost{5, 5},
			Split{Rounds: 3, SubjectWall: 15, SubjectCPU: 15, CPU: true},
			map[string]float64{"ns/op": 0}},
		{"no rounds", 0, true, cost{1, 1}, cost{1, 1},
			Split{CPU: true},
			map[string]float64{"ns/op": 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var clocks fakeClocks
			s := interleave(loopN(c.rounds), clocks.now, c.haveCPU,
				clocks.spend(c.base.wall, c.base.cpu), clocks.spend(c.subject.wall, c.subject.cpu))
			if s != c.want {
				t.Fatalf("got %+v, want %+v", s, c.want)
			}
			if got := s.metrics(); !maps.Equal(got, c.metrics) {
				t.Errorf("metrics %v, want %v", got, c.metrics)
			}
		})
	}
}

// The thread clock exists on Linux, and it moves with work done on the
// thread: the loop runs until it has moved 2 ms (a condition, not a time
// limit), or fails after a generous wall-clock bound.
func TestThreadCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, ok := ThreadCPU()
	if ok != (runtime.GOOS == "linux") {
		t.Fatalf("ThreadCPU ok = %v on %s", ok, runtime.GOOS)
	}
	if !ok {
		return
	}
	deadline := time.Now().Add(time.Minute)
	sum := sha256.Sum256(nil)
	last := start
	for {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
		now, ok := ThreadCPU()
		if !ok {
			t.Fatal("ThreadCPU became unavailable")
		}
		if now < last {
			t.Fatalf("the thread clock went back: %v after %v", now, last)
		}
		last = now
		if now-start >= 2*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the thread clock moved %v in a minute of hashing", now-start)
		}
	}
}
