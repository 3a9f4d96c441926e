// Package diff writes a migration that takes one schema to another, and
// checks that it does.
//
// The desired schema is usually plain SQL DDL, the schema.sql a team keeps:
// LoadDesired runs it in a scratch database of the same server (created for
// the purpose, dropped at the end, on error and on cancel too) and reads it
// back, so that both sides are compared as PostgreSQL itself understood
// them, never by parsing SQL here. A Snapshot holds one side: the managed
// schema (schema.Read), the objects only "sql" operations express (Objects:
// views, sequences, domains, functions, triggers, policies, collations,
// partitions...), each other user schema's tables and objects (Others),
// and the Catalog of every user schema.
//
// Plan writes the operations. Operations of the format come first;
// what only sql operations express is written when nothing else is left
// (an sql operation must be alone in its migration), and until then listed
// as what the next migration does, except where order demands otherwise:
// new domains and free sequences go before the operations that may use
// them, and views and policies that depend on what the operations drop are
// replaced before it (even unchanged ones, when the operations drop or
// rewrite what they depend on). Schemas other than the managed one have no
// version schemas: their changes are plain DDL in sql operations
// (schemas.go), and a table that only moved between schemas is moved.
// Render writes the migration file (YAML), with
// comments where a person must review what was generated and where a
// difference could not be expressed.
//
// Verify is the promise that diff is never silently wrong: it copies the
// live schemas (and online's state) into a scratch database with pg_dump,
// runs the migration there through start and complete, and compares the
// Catalog it leaves with the desired one. Every difference that remains is
// returned, to be reported; the CLI exits 5 on any.
//
// A rename cannot be told from a drop plus an add: Plan never guesses. It
// takes renames as Options and lists the candidates it saw (a table dropped
// and one added with the same columns; in one table, a column dropped and one
// added with the same type), for the caller to show.
package diff
