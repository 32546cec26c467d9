// Package benchclock is the measuring of the ratio benchmarks of package
// verify and package verify/pass: the calling thread's CPU time, and two
// operations timed in interleaved blocks so that their quotient can be
// reported.
//
// The figures of those benchmarks are ratios (an operation against the bare
// cryptography it cannot avoid) because the machine they run on is shared:
// absolute times move with the neighbours' load, a ratio measured in one run
// moves far less. Interleave runs a block of the baseline, then a block of
// the subject, over and over, so that frequency scaling and noisy
// neighbours hit both alike, and it reads both the wall clock and the
// thread's CPU clock (CLOCK_THREAD_CPUTIME_ID, clock_gettime(2)), which
// does not count the time spent waiting for a CPU.
//
// Limits: the thread CPU clock exists on Linux only; elsewhere ThreadCPU
// reports it unavailable and Interleave's CPU figures are wall time. The
// CPU clock counts the calling thread alone: work done on other threads
// for the measured code (garbage collection, above all) is not in it. It is
// test support, imported by benchmarks only.
package benchclock
