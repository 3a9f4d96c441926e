// Package sqllex splits a SQL expression (a default, a check, an index
// element, an up or down expression) into tokens, just far enough to find the
// column names it uses and to rename them. It is not a SQL parser: it knows
// string literals of every form, dollar quotes, comments, quoted and
// U&"quoted" identifiers, and which words can never be a column (reserved
// words, type names before a literal, interval fields), and nothing else.
//
// Lex gives tokens whose texts concatenate back to the input byte for byte,
// so RenameIdentifiers changes only the names it renames. ReferencedColumns
// may over-report (a column named like a keyword) but never misses a plain,
// quoted or qualified reference: callers use it to decide what a statement
// depends on, where a false positive costs a check and a miss costs data.
// UnqualifiedColumns lists the bare names an expression uses, and refuses to
// answer for expressions with a subquery.
//
// The operations package uses it to write expressions over physical column
// names and to check the names in the SQL fields of a migration file. It has
// no state and reads no catalog; its tests run the renamed expressions on
// PostgreSQL to check they mean what the originals mean.
package sqllex
