// Package spend records redeemed tokens so that none is accepted twice.
//
// # The double-spend guarantee
//
// A token is identified by its raw bytes under the key that verified it (PROTOCOL.md §6): the
// same bytes under two keys are two tokens. For every (key, token):
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
// ErrSchemaBehind. OpenPostgres does not connect: the pool connects on demand, reconnects by
// itself after an outage, and discards broken connections (pgconn closes a connection on a
// fatal error, and connections idle over a second are pinged before reuse). While the
// database is unreachable, Spend fails within AcquireTimeout (2s by default) or SpendTimeout.
//
// bbolt (go.etcd.io/bbolt) is the single-node alternative: pure Go (no cgo), one file, ACID
// transactions made durable with fsync on commit, maintained by the etcd project as etcd's
// own storage engine. One top-level bucket per key ID mirrors the partitions, so retiring a
// key deletes one bucket. The file is locked by one process at a time.
//
// # Limits
//
//   - Tokens longer than MaxTokenLen bytes are refused (not recorded).
//   - Key IDs are 16 lowercase hex characters (ValidKeyID); anything else is ErrUnknownKey
//     for Spend and an error for PrepareKeys.
//   - Retiring a key forgets its tokens: a retired key must also be removed from the
//     verifying key set, or its tokens would be ErrUnknownKey (an internal error), and if it
//     were prepared again they would be spendable again.
//   - Durability is as good as the storage below: synchronous_commit and fsync on the
//     PostgreSQL server, a disk that honours fsync, and replication (if any) as configured.
//     With asynchronous replication a failover can lose recently committed spends.
//   - Count walks the key's records; it is for operators and tests, not the request path.
package spend
