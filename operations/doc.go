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
package operations
