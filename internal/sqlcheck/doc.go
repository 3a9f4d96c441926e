// Package sqlcheck proves, with PostgreSQL's own parser (pg_query), that a
// piece of SQL taken from a migration file is exactly one thing of the kind
// its field asks for (one type name, one expression, one list of storage
// parameters...) before online splices it into a statement.
//
// A field's text is spliced into DDL, into trigger functions and into the
// backfill's UPDATE as written, so a field that is more than it claims to be
// could end its statement and start another ("int; drop table x"), add a
// clause to it ("int, drop column k"), or comment out what follows it. Each
// check therefore works on the text exactly as online embeds it:
//
//   - the fragment alone must scan into whole tokens: no unterminated
//     string, quoted name, dollar quote or block comment; no ";" token at
//     all; brackets balanced and never closed before they are opened; no
//     NUL byte (PostgreSQL's parser would stop at it, online would not);
//     and no "--" comment running to the end of the fragment, which would
//     swallow whatever online writes after it on the same line;
//   - the fragment placed in a probe statement of its own shape (for a type,
//     "SELECT NULL::<type>"; for a check, "ALTER TABLE t ADD CONSTRAINT c
//     CHECK (<expr>)") must parse into exactly one statement whose tree,
//     with the fragment's part cut out, is the tree of the same probe
//     around a known benign value: nothing was added around the slot;
//   - what fills the slot must be of its kind (a type name that is not
//     SETOF, an expression that is not an implicit row "a, b"), and hold no
//     statement that writes (INSERT, UPDATE, DELETE, MERGE, SELECT INTO,
//     SELECT ... FOR UPDATE) anywhere, subqueries included.
//
// What the parser cannot know (does the type exist, does a column exist,
// does the expression type-check, does a function it calls write) is left to
// the pre-flight of online start, which asks the live catalog.
//
// Columns reports the column names an expression reads, from the parse tree.
package sqlcheck
