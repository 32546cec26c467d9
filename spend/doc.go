// Package spend records redeemed tokens so that none is accepted twice.
//
// # The double-spend guarantee
//
// A token is identified by its raw bytes under the key that verified it: the same bytes
// under two keys are two tokens. For every (key, token):
//
//   - At most one Spend call ever returns nil. One atomic insert-if-absent decides — a
//     PostgreSQL INSERT … ON CONFLICT DO NOTHING against the primary key, or a Get and Put in
//     bbolt's single write transaction — never a select followed by an insert, which lets two
//     concurrent requests both see "absent" (the reference server let 2 of 64 concurrent
//     redemptions of one token through that way).
//   - Spend returns nil only after the record is durable: the PostgreSQL statement is its own
//     transaction and returns after COMMIT, which waits for the WAL flush as far as the
//     server's synchronous_commit says (the default, on, waits for the local fsync; off trades
//     the last few hundred milliseconds of spends for speed, and a crash could then forget a
//     spend that was reported — configure it on the server knowingly); bbolt returns after its
//     commit fsync.
//   - ErrAlreadySpent means the token was recorded before (by an earlier call, or by another
//     copy of it that won inside the same batch).
//   - Any other error means "not known to be spent by this call": the token may be unrecorded
//     (say, the database was down) or recorded with the answer lost (say, the connection
//     broke after COMMIT). The server must answer with an internal error, never success; a
//     client retrying later gets either success or "already spent". A lost answer can thus
//     cost an honest client its token, but can never let a token through twice.
//
// # Cancellation and time limits
//
// Spend ignores the caller's context: a client hanging up halfway must not leave a spend
// half-decided, so the write runs detached from the caller (as with context.WithoutCancel)
// and each Spend waits at most the store's own SpendTimeout, counted from the moment it was
// queued. So a Spend with an already cancelled context still completes, and a later Spend of
// the same token returns ErrAlreadySpent. On timeout Spend returns an error whose outcome is
// unknown: a PostgreSQL statement past its deadline is cancelled on the server (a cancel
// request, so a statement stuck behind a lock rolls back), but a commit can still win that
// race. Requests that time out while still queued are dropped unwritten. Closing the store writes what is queued; Spend after Close
// returns an error.
//
// # Group commit
//
// Both stores funnel spends through one batcher (batcher.go). A few flush workers each take
// one request, then whatever else is queued at that moment up to BatchMax, without waiting:
// a lone spend goes out at once, and under load batches grow while workers are busy, so the
// cost of one commit (one WAL flush, one fsync) is shared by many spends. Inside a batch the
// requests are grouped by key and duplicates of a token resolve to one winner; each key's
// group is written by its own statement (PostgreSQL) or checked separately inside the one
// transaction (bbolt), so a key without storage fails only its own callers with
// ErrUnknownKey. Tokens in a statement are sorted, so two concurrent statements that share
// tokens take their index locks in the same order and cannot deadlock.
//
// PostgreSQL runs one flush worker per CPU, at most 4 and at most half the pool, each holding
// one connection while writing; batches of at most 256 tokens (BatchMax). bbolt runs exactly
// one, since bbolt admits one writer, with batches of at most 1024.
//
// # Storage
//
// PostgreSQL: table spent_tokens (migrations/00001_spent_tokens.sql), list-partitioned by key
// ID, one partition spent_tokens_<keyid> per key, created by PrepareKeys and dropped by
// Retire (DETACH PARTITION + DROP TABLE in one transaction: O(1) whatever the number of
// rows). A spend under a key without a partition is refused by PostgreSQL itself (SQLSTATE
// 23514) and reported as ErrUnknownKey. The schema is changed only by MigrateUp (goose, under
// a session advisory lock); the server calls CheckSchema and refuses to start when it gets
// ErrSchemaBehind. OpenPostgres parses the DSN (a DSN that does not parse is ErrBadDSN, whose
// message gives the reason but never the DSN, which may hold a password) and sizes the pool by
// PostgresConfig.MaxConns, else the DSN's pool_max_conns, else 16; MigrateUp accepts the same
// DSN, pool settings included. OpenPostgres does not connect: the pool connects on demand, reconnects by
// itself after an outage, and discards broken connections (pgconn closes a connection on a
// fatal error, and connections idle over a second are pinged before reuse). While the
// database is unreachable, Spend fails within AcquireTimeout (2s by default) or SpendTimeout.
//
// bbolt (go.etcd.io/bbolt) is the single-node alternative: pure Go (no cgo), one file, ACID
// transactions made durable with fsync on commit, maintained by the etcd project as etcd's
// own storage engine. One top-level bucket per key ID mirrors the partitions, so retiring a
// key deletes one bucket; the store's own records (identity, key registry, holds) live in a
// top-level bucket named "ppredeem". The file is locked by one process at a time.
//
// # Nothing an operator does re-opens a spent token
//
// Losing a key's records makes every token the key accepted redeemable again. The stores
// refuse each way that could happen by mistake, with an error that names what happened and
// what to do:
//
//   - The key registry (PostgreSQL: spend_keys; bbolt: bucket ppredeem/keys) remembers every
//     key that ever had storage, when it was prepared and when it was retired. Retire keeps
//     a tombstone: PrepareKeys and Hold refuse a retired key (ErrKeyRetired), so a server with
//     a stale key list cannot start or reload with it. PrepareKeys also refuses to create again
//     the storage of a registered key whose partition or bucket is gone (ErrKeyStorageLost):
//     the records must be restored from a backup, or the key retired.
//   - Holds: a running server holds the keys it serves (Hold, or the Holding helper that
//     renews the hold every DefaultHoldRenew = 10s with a DefaultHoldTTL = 30s expiry, and
//     releases it on Stop), and Retire refuses a key with a live hold (ErrKeyHeld), naming the
//     holder and when the hold expires. A hold changes with the server's key set (a reload
//     releases the keys it drops at once). On PostgreSQL, PrepareKeys, Hold and Retire take
//     the same transaction advisory lock, so a retire and a starting server cannot both
//     succeed: one commits first and the other sees it. Expiry is the database's clock. A
//     server that dies keeps its keys from being retired until its hold lapses (at most the
//     TTL). On bbolt the file lock already admits one process; holds work the same through
//     its handle, and OpenBolt drops the holds of processes that are gone.
//   - A store is created on purpose. PostgreSQL: `ppredeem migrate up` inserts the store's
//     identity (spend_store: a UUID and the creation time); CheckSchema refuses a database
//     without it (ErrNoStore). bbolt: the data directory holds the store file and a marker,
//     STORE, written when the store was created (InitBolt, or OpenBolt in a missing or empty
//     directory); the same identity is inside the file. OpenBolt refuses a directory whose
//     marker says a store was created there but whose file is missing or empty, a file of 0
//     bytes, a file with another store's identity (ErrStoreLost), and a non-empty directory
//     with neither marker nor file (ErrNoStore). A file from before identities is upgraded in
//     place (BoltUpgraded), and PostgreSQL's migration 00003 registers the partitions that
//     exist when it runs.
//   - A damaged bbolt file is an error at open (ErrStoreDamaged), never a crash. bbolt trusts
//     the file: it follows page numbers and offsets without bounds checks, its open-time scan
//     runs in a goroutine of its own (a panic there ends the process), and it silently falls
//     back to the older meta page when the newer one is unreadable, forgetting the last
//     commit. So OpenBolt first reads the file with plain reads, under a shared lock
//     (boltfile.go): both meta pages must be bbolt meta pages (a torn checksum is accepted as
//     a crash during the last, unacknowledged commit; a page without bbolt's magic number is
//     damage), the file must hold every page the meta page lists, and every page reachable
//     from the root must have its own page number, a valid type and its elements inside the
//     page. Then bbolt opens it, with any panic recovered. Cost: one read of every page in
//     use; on a store of 1M tokens (116 MB), 106 ms against 433 ms for bbolt's own open, so
//     OpenBolt took 613 ms (BenchmarkBoltOpen, one run on a loaded 2-core machine).
//
// # Readiness
//
// Ready fails while the store refuses writes, not only when it cannot be reached. The most
// recent evidence decides: the outcome of the last batch of spends (a failed write, a spend
// timeout, a key without storage: not ready; a write that succeeded: ready), or, when no
// spend was answered within ReadyCacheFor (1s), a write probe: on bbolt a small write
// transaction with its fsync; on PostgreSQL one round trip that takes the ROW EXCLUSIVE lock
// an INSERT needs on spent_tokens within the spend timeout, then updates the store's identity
// row and commits (so a read-only standby or a full disk fails it too). One probe runs at a
// time, and its answer, good or bad, stands for
// ReadyCacheFor, so a flood of readiness checks costs at most one store round trip a second.
// A server under traffic never probes; a failing spend makes it unready at once and the first
// succeeding one ready again.
//
// # Check and backups
//
// Check reads the whole store: on bbolt, bbolt's own consistency check (tx.Check, inside a
// write transaction that spends wait for), the registry against the buckets, the identity
// against the marker; on PostgreSQL, the schema version, the identity, the registry against
// the partitions, and tables named like a partition but not attached. It is for an operator's
// check command, not for every start: on 1M tokens bbolt's tx.Check took 246 ms, more than half
// of bbolt's open (BenchmarkBoltOpen), and what it would find at start bbolt's open-time scan
// already finds (reachability, page types, key order; bbolt then panics, and OpenBolt turns
// the panic into ErrStoreDamaged); the rest (double frees, pages neither reachable nor free)
// cannot arise with a freelist rebuilt at every open. Back up a bbolt store with Bolt.Backup (a consistent copy while
// spends go on) or by copying spent.db while no process has it open; restoring spent.db
// alone is enough, its identity is inside. Back up PostgreSQL with its own tools (pg_dump,
// base backups), all tables of the schema together: a partition restored without its
// registry row, or the reverse, is reported by Check.
//
// # Relays
//
// RelayStore (relay.go) is the relay provider API's storage on both stores: relay
// sessions, idempotency records, the provider's shared secrets and when each Privacy Pass
// key last issued (PostgreSQL: migrations/00005; bbolt: buckets inside "ppredeem").
// RedeemRelay spends a pass and marks the relay redeemed by it as one atomic step: on
// PostgreSQL one call of the SQL function relay_redeem, one autocommit transaction that
// locks the relay row (so passes racing for a relay take turns) and inserts the spend into
// spent_tokens with ON CONFLICT DO NOTHING (so the primary key decides between relays racing
// for a pass); on bbolt one write transaction. A crash leaves both or neither. The spend is
// an ordinary spent-token record: the key's partition (bucket) must be prepared, and
// retiring the key drops it with the key's other records. AddUsageOnce stores an
// idempotency record and adds to a usage counter in one transaction (PostgreSQL: one
// statement of data-modifying WITH queries), so a retried request is counted once.
// Expired relays and records are deleted by PurgeRelays, by their expires_at (PostgreSQL:
// an index, 10,000 rows per statement; bbolt: an expiry index bucket); relays are written
// several times in a short life, so row deletes suit them, while spent records of a pass
// key go all at once with its partition when the key is retired.
//
// # Usage counters
//
// AddUsage and Usage (usage.go) keep durable counters per (subject, item), for billing: the
// Privacy Passes issued to an API key per claim type, the tokens issued under a key. A
// count only grows; AddUsage returns once the addition is durable (PostgreSQL: table
// usage_counts, migrations/00004, one INSERT ... ON CONFLICT DO UPDATE; bbolt: bucket
// ppredeem/usage, one write transaction), and concurrent additions to one counter all count.
// An error leaves the addition unknown: a caller that bills must not hand out what it was
// counting.
//
// # Limits
//
//   - Tokens longer than MaxTokenLen bytes are refused (not recorded).
//   - Key IDs are 16 lowercase hex characters (ValidKeyID); anything else is ErrUnknownKey
//     for Spend and an error for PrepareKeys.
//   - Retiring a key forgets its tokens: a retired key must also be removed from the
//     verifying key set (its spends fail with ErrUnknownKey, an internal error), and it can
//     never be prepared again.
//   - A hold protects a key only while it is renewed: a server cut off from the database for
//     longer than the TTL loses its hold, and the key can then be retired under it; its
//     spends then fail (ErrUnknownKey), never succeed twice.
//   - Binaries older than the key registry (schema version 1) do not know tombstones or
//     holds: do not run them against a store that has retired keys. A partition such a
//     binary creates is registered by the next PrepareKeys and reported by Check.
//   - The bbolt checks find damage, not malice: a file crafted to look valid can still make
//     bbolt fault. A torn newest meta page lets bbolt open the previous transaction, as
//     designed: that commit never returned, so no spend it held was acknowledged.
//   - Durability is as good as the storage below: synchronous_commit and fsync on the
//     PostgreSQL server, a disk that honours fsync, and replication (if any) as configured.
//     With asynchronous replication a failover can lose recently committed spends.
//   - A bbolt write probe that succeeds may still leave spends failing when they need the
//     file to grow on a full disk and the probe does not: readiness then follows the traffic.
//   - Count walks the key's records; it is for operators and tests, not the request path.
package spend
