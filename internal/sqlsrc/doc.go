// Package sqlsrc reads SQL migration files the way the tools that run them
// do, and parses them with PostgreSQL's own parser (pg_query). convert and
// lint share it, so both see the same statements at the same positions.
//
// A file of another migration tool is recognised by its name or markers:
// golang-migrate (NNN_name.up.sql), goose (a "-- +goose Up" section) and
// Flyway (V1__name.sql). Only the part that migrates up is read; the rest of
// the file is blanked with its line breaks kept, so positions stay true.
package sqlsrc
