package spend

// SetPGFlushWorkers sets the number of PostgreSQL flush workers for stores opened afterwards
// (benchmarks compare worker counts) and returns a function restoring the default.
func SetPGFlushWorkers(n int) (restore func()) {
	old := pgFlushWorkers
	pgFlushWorkers = n
	return func() { pgFlushWorkers = old }
}
