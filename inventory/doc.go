// Package inventory is the record of the fleet and its users: GORM models, the store that
// reads and writes them, and the versioned schema migrations. One schema runs on PostgreSQL
// (production) and SQLite (dev, `anyops dev`); the store's tests run against both.
//
// # Schema and migrations
//
// The schema is plain SQL in migrations/NNNN_name.sql, embedded in the binary and applied in
// order by Open (every command that uses the inventory) and by `anyops migrate`. Each file
// runs in its own transaction and is recorded in schema_migrations, so a second run is a
// no-op; on PostgreSQL an advisory lock lets several processes start at once. A file that has
// been released is never edited: change the schema by adding the next number. The text is
// the same for both databases except {{AUTO_ID}} and {{TIMESTAMP}} (see migrate.go), and
// statements end with ";" at the end of a line.
//
// The schema carries the rules itself: unique instance and volume ids, foreign keys (enforced
// on SQLite through the DSN pragma foreign_keys), and CHECK lists on every enum column.
// TestSchemaAcceptsEveryEnumValue fails when a closed set of the root package gains a value
// the CHECK does not list: add a migration that widens it.
//
// # Conventions
//
// Natural keys are primary keys (server and zone names, volume ids, DRBD resource names);
// incidents, their events, audit events and images have numeric ids. Optional references are
// "" in Go and NULL in the database. Timestamps are UTC at microsecond precision. Lists page
// with an opaque cursor over their key (Page); bad input of any kind is an *anyops.Error with
// EINVALID, a missing row ENOTFOUND, a taken key ECONFLICT. User uids come from a counter and
// are never reused.
package inventory
