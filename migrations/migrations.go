// Package migrations holds ppredeem's PostgreSQL schema as goose SQL migrations, embedded in
// the binary so that `ppredeem migrate up` needs no files on disk.
//
// Each file is named NNNNN_description.sql and carries goose annotations
// (`-- +goose Up` / `-- +goose Down`); goose runs each file in one transaction and records the
// version in goose_db_version. Files are applied by spend.MigrateUp, never implicitly at
// server start: the server only checks the version (spend.(*Postgres).CheckSchema) and refuses
// to start when the schema is behind.
//
// Rules for new migrations:
//   - never edit a released file; add a new one with the next number;
//   - the per-key partitions of spent_tokens are created and dropped at run time by
//     spend.PrepareKeys and spend.Retire, not here, so a migration that changes spent_tokens
//     must also work on a table that already has partitions;
//   - the rows of spend_keys (the key registry and its tombstones) and spend_key_holders are
//     written at run time too, and spend_store holds the one identity row 00002 inserted: a
//     migration must keep all of them, since losing a tombstone or the registry lets a key's
//     spent tokens be redeemed again;
//   - a Down section must undo exactly its Up section, and refuse (RAISE EXCEPTION) when
//     that would forget recorded spends or registered keys.
//
// Annotation syntax: https://pressly.github.io/goose/documentation/annotations/
package migrations

import "embed"

// FS holds the migration files, for goose.NewProvider.
//
//go:embed *.sql
var FS embed.FS
