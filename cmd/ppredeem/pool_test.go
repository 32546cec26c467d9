package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPoolSize: a pool_max_conns in the DSN sizes the Postgres pool
// unless db_max_conns is given, by flag, environment or config file; with
// neither the pool has db_max_conns' default, 16.
func TestPoolSize(t *testing.T) {
	dsn := postgresStore(t)[1]
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	withPool := dsn + sep + "pool_max_conns=3"
	for _, tc := range []struct {
		name string
		env  string // PPREDEEM_DB_MAX_CONNS
		args []string
		want float64
	}{
		{"default", "", []string{"--database-url", dsn}, 16},
		{"DSN", "", []string{"--database-url", withPool}, 3},
		{"DSN and flag", "", []string{"--database-url", withPool, "--db-max-conns", "5"}, 5},
		{"DSN and flag at the default", "", []string{"--database-url", withPool, "--db-max-conns", "16"}, 16},
		{"DSN and environment", "6", []string{"--database-url", withPool}, 6},
		{"DSN and config file", "", []string{"--database-url", withPool, "--config", writeConfig(t, "db_max_conns: 7\n")}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PPREDEEM_DB_MAX_CONNS", tc.env)
			srv := startServer(t, newConfig(t, append(tc.args, "--keys", testKeyFile, "--admin-listen", "127.0.0.1:0")...))
			if got := metric(t, srv.admin, "ppredeem_db_pool_max_conns"); got != tc.want {
				t.Errorf("pool of %v connections, want %v", got, tc.want)
			}
		})
	}
}

// writeConfig writes a config file in a fresh directory and returns its path.
func writeConfig(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ppredeem.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
