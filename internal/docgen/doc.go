// Package docgen writes the reference pages of docs/ from the definitions the
// program itself runs on, so that they cannot drift from it:
//
//   - docs/reference/commands/: one page per command of the CLI, from its cobra
//     definition (use line, descriptions, flags with their defaults, examples);
//   - docs/reference/operations/: one page per operation of the registry, its
//     fields walked from the yaml tags the parser reads, the required ones from
//     the same list as the JSON Schema, with the uses found in examples/;
//   - docs/reference/file-format.md: the format of a migration file;
//   - docs/reference/environment.md: the variables that set flag defaults,
//     read from the flags' usage ("(env ONLINE_SCHEMA)");
//   - docs/reference/json-output.md: the fields commands print with --json,
//     from the Go types the CLI says each command encodes.
//
// The prose that no definition holds (what an operation does, a note on a
// field) is kept here, in text/, keyed by operation and field path; the
// generator refuses a note for a field or an operation that does not exist, and
// an operation without its prose.
//
// Regenerate with `go run ./cmd/online gen-docs` from the repository root;
// TestReferenceDocsCurrent in cmd/online fails when a committed page differs.
package docgen
