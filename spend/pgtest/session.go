package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is one connection to a test database, for tests that change the database behind
// a server's back (drop a partition) or keep state in a session (a transaction holding a
// lock). It is closed when the test ends.
type Session struct {
	conn *pgx.Conn
}

// Connect opens a Session on dsn, failing the test on an error.
func Connect(t testing.TB, dsn string) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &Session{conn: conn}
}

// Exec runs each statement in turn in the session, failing the test on the first error.
func (s *Session) Exec(t testing.TB, statements ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range statements {
		if _, err := s.conn.Exec(ctx, q); err != nil {
			t.Fatalf("pgtest: %s: %v", q, err)
		}
	}
}
