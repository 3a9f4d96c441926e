// Package lint finds statements in SQL migrations that lock or break a live
// PostgreSQL database, and says why and what to do instead.
//
// Files are parsed with PostgreSQL's own parser (pg_query, through
// internal/sqlsrc), so a statement is judged by its parse tree, never by a
// regular expression. SQL files of golang-migrate, goose and Flyway are read
// the way those tools run them (whether the file runs in a transaction
// matters for CONCURRENTLY). online's own migration files are linted too:
// the SQL of their sql operations, and add_column defaults.
//
// Each rule has an id (Rules). A finding is silenced for one statement by a
// comment on the lines directly above it:
//
//	-- online-lint-ignore require-concurrent-index-creation: the table is empty
//
// (or "# online-lint-ignore ..." above an operation of a migration file);
// an ignore without a reason is itself reported.
//
// Files are read in the order given (a directory in name order), and what
// earlier files establish (column types, validated NOT NULL checks) is known
// to later ones, as it is to the database when they run in that order.
//
// Lint reads files only and never connects to a database: what depends on
// the live catalog (a column's old type when the file does not declare it,
// whether a user function is volatile) is judged from the file alone, and
// the README lists where that leads to false alarms.
package lint
