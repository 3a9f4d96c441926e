// Package phases runs migrations: it is online's library API. An Engine
// holds one dedicated connection (session settings in its startup packet,
// never SET on a pool) and carries a compiled plan through its phases:
//
//	expand   additive DDL, each statement under lock_timeout with retries
//	backfill rewrite pre-existing rows in short batches, checkpointed
//	finish   constraints and indexes over rewritten columns, non-blocking
//	publish  create the new version schema of views
//	contract (Complete) drop what only the old version needed
//
// Every step records its progress in the state schema in the same
// transaction as its work, so a crash at any point can be resumed (Start
// again, or Resume) or rolled back (Rollback).
//
// A team's migrations directory (the files, their history, migrate,
// revert, drift) is package workflow, built on this one: Start records
// the file it ran, the schema after each complete and each rollback, and
// exports what workflow needs (Locked, StartRecorded, SchemaModel,
// Preflight); this package never imports workflow.
package phases
