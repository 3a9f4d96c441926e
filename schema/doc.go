// Package schema is the in-memory model of one PostgreSQL schema's tables as a
// version of the application sees them: visible table and column names, and
// for each the physical table or column that serves it.
//
// Read loads the model from the live catalog. Operations then change a clone
// of it, one after another, so that a whole migration is validated (missing
// tables, duplicate names, a column an earlier operation dropped) before the
// first statement reaches the database, and so that the views of the new
// version can be generated from it.
//
// After a migration completes, every visible name equals its physical name;
// only a migration in progress makes them differ.
package schema
