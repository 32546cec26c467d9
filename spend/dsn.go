package spend

import (
	"errors"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrBadDSN reports a PostgreSQL DSN that does not parse. The error's message says why and
// shows what a DSN looks like; it never quotes the DSN, which may hold a password.
var ErrBadDSN = errors.New("PostgreSQL DSN does not parse")

// DSNExamples shows the two forms of a PostgreSQL DSN (libpq's connection strings:
// https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING).
const DSNExamples = `a URL such as postgres://user:password@127.0.0.1:5432/ppredeem?sslmode=disable, ` +
	`or keyword/value settings such as "host=127.0.0.1 port=5432 user=postgres dbname=ppredeem"`

// parsePoolDSN parses dsn for a pool. maxConnsGiven reports whether the DSN sets the pool size
// itself (pool_max_conns, a pgxpool setting: pgxpool.ParseConfig's documentation).
func parsePoolDSN(dsn string) (cfg *pgxpool.Config, maxConnsGiven bool, err error) {
	// pgxpool.ParseConfig consumes pool_max_conns, and fills in its own default when it is
	// absent: the connection settings tell whether it was there.
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, false, badDSN(dsn, err)
	}
	_, maxConnsGiven = cc.RuntimeParams["pool_max_conns"]
	cfg, err = pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, false, badDSN(dsn, err)
	}
	return cfg, maxConnsGiven, nil
}

// quoted is a quoted value in a parse error's reason.
var quoted = regexp.MustCompile(`"[^"]*"`)

// badDSN is ErrBadDSN with the reason pgx gives, without the DSN. pgx's ParseConfigError
// quotes the DSN with the password masked, on a best-effort basis only (pgconn/errors.go:
// "an invalid connection string can be too ambiguous to identify every password"), so its
// DSN is dropped; its reason names a setting or a position, and quotes a value only in a few
// cases (an unexpected word in keyword/value settings, a bad option value), which are masked
// too when the DSN holds a password.
func badDSN(dsn string, err error) error {
	reason := "it is neither a postgres:// URL nor keyword/value settings"
	if pe, ok := errors.AsType[*pgconn.ParseConfigError](err); ok {
		bare := *pe
		bare.ConnString = ""
		reason = strings.TrimPrefix(bare.Error(), "cannot parse ``: ")
	}
	if holdsPassword(dsn) {
		reason = quoted.ReplaceAllLiteralString(reason, `"…"`)
	}
	return newError(ErrBadDSN, "spend: the PostgreSQL DSN does not parse: %s. A DSN is %s", reason, DSNExamples)
}

// holdsPassword reports whether dsn may hold a password: a password setting, or a URL whose
// user information has a colon (the search for '@' stops at the first '/', as libpq's and
// pgx's parsers do).
func holdsPassword(dsn string) bool {
	if strings.Contains(strings.ToLower(dsn), "password") {
		return true
	}
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		if rest, ok := strings.CutPrefix(dsn, scheme); ok {
			if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
				return strings.Contains(rest[:i], ":")
			}
		}
	}
	return false
}
