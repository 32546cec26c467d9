package spend

// ReadyProbes returns how many write probes the store's Ready has started.
func ReadyProbes(s Store) int {
	switch s := s.(type) {
	case *Bolt:
		return s.ready.probeCount()
	case *Postgres:
		return s.ready.probeCount()
	}
	panic("unknown store")
}

// MigrateUpTo applies the embedded migrations up to version (tests of upgrades).
var MigrateUpTo = migrateUpTo
