// Package convert turns SQL DDL into online migration files, so that a
// change written for a blocking ALTER runs expand/contract instead.
//
// Each statement is parsed with PostgreSQL's own parser (pg_query) and
// mapped to an operation of the file format; expressions and types are
// rendered back to SQL text by pg_query's deparser. Several statements on
// one column compose into one alter_column. What needs a data conversion
// (a USING clause, a type cast, a value for rows that are NULL when a
// column becomes NOT NULL) gets up/down marked with a "review" comment.
//
// A statement with no online equivalent becomes a sql operation with a
// comment saying why. online requires a sql operation to be alone in its
// migration, so a file that mixes both is split: each run of convertible
// statements is one migration, each run of the others one sql migration,
// in the file's order. Convert never talks to a database: what depends on
// the live catalog (a column's type, whether it is NOT NULL) is left to
// online's compiler, which checks it at plan and start.
package convert
