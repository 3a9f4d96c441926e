// Package diff writes a migration that takes one schema to another.
//
// The desired schema is usually plain SQL DDL, the schema.sql a team keeps:
// LoadSQL runs it in a scratch database of the same server (created for the
// purpose, dropped at the end, on error and on cancel too) and reads it back
// with schema.Read, so that both sides are compared as PostgreSQL itself
// understood them, never by parsing SQL here. Compare then works on two
// schema.Schema values only, and Render writes the operations as a migration
// file of online's format (YAML), with comments where a person must review
// what was generated (a cast, a placeholder for existing NULLs) and where a
// difference could not be expressed.
//
// A rename cannot be told from a drop plus an add: Compare never guesses. It
// takes renames as Options and lists the candidates it saw (a table dropped
// and one added with the same columns; in one table, a column dropped and one
// added with the same type), for the caller to show.
package diff
