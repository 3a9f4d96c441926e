// Package workflow is a team's migrations directory over package phases:
// a folder of files applied in name order (Migrate, with a window that
// keeps the version in use live across several pending files), what each
// file's state is against the history (DirStatus), validation offline or
// against the live catalog (ValidateFS, ValidateDir, ValidatePaths), plans
// of a folder (PlanDir), revert of completed migrations (Revert,
// RevertTo), the history of events (History), adopting a database
// (Baseline), writing the applied files back (Pull), and changes made
// outside online (SchemaDrift, RecordDrift).
//
// A directory is read from any fs.FS (LoadDir), so an application can
// embed its migrations and apply them at start-up. The history is the
// state schema phases writes: each file applied is recorded with the
// checksum of its normalized document (state.Checksum).
//
// phases runs one migration's lifecycle and never imports this package;
// Engine embeds a *phases.Engine, so Start, Complete, Rollback and Status
// are at hand beside the workflow's commands.
package workflow
