// Package operations parses migration files and compiles their operations
// into a Plan: the statements of each phase (expand, backfill, finish,
// publish, contract) with what undoes them, as data.
//
// Compiling is pure: it reads a schema.Schema model of the live catalog,
// applies every operation to a clone of it (so the whole migration is checked
// before anything runs) and returns the plan. The phases package executes
// plans; `online plan` prints them.
//
// Each operation lives in its own file behind the Operation interface and is
// registered in registry.go, which serves parsing, naming and docs alike.
//
// # Adding an operation
//
// An operation is one file, <name>.go, named after its key in the file
// format, and its test beside it, <name>_test.go. In order:
//
//  1. A struct whose fields carry the file's keys as yaml tags
//     (`yaml:"table"`); a field that may be left out and whose zero value
//     means something is a pointer. The parser reads the tags strictly (unknown keys, wrong kinds
//     and the position of each are reported by parse.go), and jsonschema.go
//     builds the published JSON Schema from the same tags: add the struct's
//     required keys to its required-fields map there.
//  2. `var _ Operation = (*MyOp)(nil)` under the struct, and a Compile method.
//     Compile validates its fields against c.Schema (the new version as the
//     operations before it left it), reporting bad input with errField or
//     Required so the error names the field; changes c.Schema the way the
//     operation changes the catalog; and adds steps with c.Expand, c.Finish
//     and c.Contract (each Step says what it does, its SQL, its lock and what
//     undoes it). Names go through pg.Ident or c.Qualified, never into a
//     format string raw.
//  3. An entry in registry.go's map: that is what makes the parser, the JSON
//     Schema and the error that lists the known operations see it. Its
//     reference page is generated too: describe it in
//     internal/docgen/text/operations/<name>.md (and its fields in
//     internal/docgen/text/fields.yaml), then run go run ./cmd/online gen-docs.
//  4. What the shared checks need to know of the operation, as methods in
//     its own file. The shared files declare a small interface for each and
//     ask each operation with a type assertion; an operation without the
//     method has nothing of that kind:
//     - sqlFields() []sqlField (sqlfields.go's sqlFielder), if a field
//     holds SQL text: each such field and the internal/sqlcheck proof it
//     must pass (an expression, a type name, a predicate...). A field that
//     is not listed is spliced into DDL unchecked.
//     - upDown() map[string]string (exprcheck.go's upDowner): the up and
//     down expressions by field, so names that are no column fail at plan
//     time.
//     - exprFields() []exprField (catalogchecks.go's exprFielder):
//     expressions over a row that only the live catalog can type-check;
//     table() string (tabled), the table the operation changes; and
//     createdType() string (typeCreator) if it creates a type.
//  5. invert(seen *schema.Schema) (map[string]any, string) (invert.go's
//     inverter): the inverse operation `online revert` runs, or the reason
//     there is none. Every registered operation has one
//     (TestEveryOperationInverts).
//  6. <name>_test.go: compile the operation over a catalog made on a real
//     database (catalog, compileYAML, wantSQL in compile_test.go) and assert
//     the plan's SQL and the new model; error cases assert the operation
//     number, kind and field of the *Error.
//  7. <name>_lifecycle_test.go (package operations_test): its cases of the
//     lifecycle every operation is held to, run by internal/lifecycletest
//     through the phases engine: start, reads and writes through both
//     versions, complete and rollback failing at each statement without a
//     change, rollback, start again, complete; each case asserts data and
//     catalog. Cases that combine operations stay in phases.
//
// # Shared techniques
//
// Operations are short because the ways of changing a live table without
// blocking it are written once, in files of their own. Calls point one way,
// operation files -> these shared files -> schema and internal packages: no
// shared file names an operation type (registry.go, which lists them, is
// the exception), and TestSharedFilesNameNoOperation checks it, and that
// each shared file is listed here:
//
//   - compile.go: the Compiler (the model being changed, name reservation,
//     visible/physical names, hidden columns, the version schema's views)
//     and Compile itself, which runs the operations in order and then the
//     deferred work below.
//   - plan.go: Plan, Step, Backfill, View: the data a compile produces, and
//     the SQL that publishes a version schema.
//   - column.go: Column, the column definition shared by create_table and
//     add_column (with its check, foreign key, identity and generated
//     parts), its validation and its DDL.
//   - rewrite.go: a column whose data the new version sees differently: a
//     hidden physical column, a backfill, sync triggers both ways, the swap
//     at complete, and the rebuild of indexes and constraints that used the
//     old column. Used by alter_column, add_column with up and drop_column
//     with down.
//   - pk.go: rewrites of key columns: the primary key rebuilt on the new
//     column and each referencing foreign key added again, sequences and
//     identities handed over.
//   - partition.go: indexes, unique constraints, foreign keys and rewrites on
//     partitioned tables, built on each leaf concurrently and attached.
//   - generated.go: a stored generated column added to a table with rows,
//     as a plain column kept by a trigger and backfilled.
//   - maintained.go: refusing changes to columns such a trigger reads, and
//     dropping the trigger with its column.
//   - constraints.go: unique (an index built concurrently, attached at
//     complete), check and foreign key constraints in their non-blocking
//     NOT VALID-then-VALIDATE forms.
//   - move.go: data moved between tables (from on add_column and
//     create_table): triggers on both tables, a backfill that updates or
//     inserts, the partner rules checked before start. mover asks an
//     operation for its checks (moveChecks).
//   - searchpath.go: whether the sync triggers may run an expression under
//     the caller's search_path, or must pin it.
//   - sqlfields.go: the proof, before compiling, that each field holding SQL
//     is exactly one thing of its kind (internal/sqlcheck).
//   - exprcheck.go: up and down expressions name only columns the table has.
//   - catalogchecks.go: questions only the live catalog can answer (does a
//     type exist, does an expression type-check), asked before start.
//   - invert.go: the inverse of a migration, for `online revert`.
//   - jsonschema.go: the JSON Schema of the file format, from the registry.
//   - docs.go: the registry's types and required fields for internal/docgen,
//     which writes the reference pages of docs/ from them.
//   - parse.go, errors.go: strict parsing, and the *Error that names the
//     file, the operation and the field.
//
// The lexer that finds and renames column names in SQL expressions is
// internal/sqllex.
package operations
