package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// Rollback undoes the migration in progress, at any phase before complete:
// drops the new version schema, then undoes each step that ran, newest
// first. The old version served all along, so no data written through it
// is touched; the tables end as they were before Start.
//
// Like Complete, it is one transaction: a Rollback that fails (a `down` of
// a sql operation that errs, a lock held past the deadline) changes
// nothing, the migration stays where it was, and both Rollback again and
// Complete (if it was published) work. Indexes the migration built are
// renamed out of the way inside the transaction and dropped CONCURRENTLY
// after it commits.
func (e *Engine) Rollback(ctx context.Context) (*Result, error) {
	return e.command(ctx, func() (*Result, error) {
		rec, err := e.current(ctx)
		if err != nil {
			return nil, err
		}
		if rec.Phase == state.Completing && rec.ContractDone > 0 {
			return nil, fmt.Errorf("migration %q is completing: an older version of online ran some of its contract steps one by one, and they cannot be undone; run online complete to finish it", rec.Name)
		}
		plan, err := decodePlan(rec)
		if err != nil {
			return nil, err
		}
		// Before any change: what others made in or on the version
		// schema stops the rollback, unless --drop-dependents.
		drop, err := e.versionSchemaDrop(ctx, "rollback", rec.Name, plan.VersionSchema, plan)
		if err != nil {
			return nil, err
		}
		// Data migrations (update_rows) are computed back first, in
		// batches with checkpoints: too long for the rollback's single
		// transaction. This is the one part of a rollback that is not
		// atomic; it resumes where it stopped, and refuses (changing
		// nothing) when a data migration without down changed rows.
		leftData, err := e.undoDataMigrations(ctx, rec, plan, drop)
		if err != nil {
			return nil, err
		}
		left := append(leftData, leftInPlace(rec, plan)...)
		e.forceLeft, e.queued = nil, nil
		if err := e.rollback(ctx, rec, plan, drop); err != nil {
			return nil, err
		}
		left = append(left, e.forceLeft...)
		queued := e.queued
		e.logDropped(rec.Name, drop.Dropped)
		for _, l := range left {
			e.log.Warn().Str(keyMigration, rec.Name).Msg("left in place: " + l)
		}
		return &Result{Migration: rec.Name, VersionSchema: rec.VersionSchema, Phase: "rolled_back", LeftInPlace: left, DroppedDependents: drop.Dropped, Queued: queued}, nil
	})
}

// undoSteps returns the expand and finish steps that have run (or may
// have: a step outside a transaction, such as a concurrent index build, may
// have been cut off halfway; its undo is idempotent, so it is run too),
// newest first.
func undoSteps(rec *state.Record, plan *operations.Plan) []operations.Step {
	steps := append(append([]operations.Step{}, plan.Expand...), plan.Finish...)
	last := min(rec.StepsDone, len(steps)) - 1
	if next := rec.StepsDone; next < len(steps) && steps[next].NoTx {
		last = next
	}
	var out []operations.Step
	for i := last; i >= 0; i-- {
		out = append(out, steps[i])
	}
	return out
}

// leftInPlace says what a rollback cannot undo: the SQL of sql operations
// without down.
func leftInPlace(rec *state.Record, plan *operations.Plan) []string {
	var out []string
	for _, s := range undoSteps(rec, plan) {
		if s.Irreversible != "" {
			out = append(out, s.Irreversible)
		}
	}
	return out
}

// rollback runs the rollback's transaction: drop the version schema as
// drop says (see versionSchemaDrop), undo the steps, forget the migration.
func (e *Engine) rollback(ctx context.Context, rec *state.Record, plan *operations.Plan, drop *schemaDrop) error {
	inTx := append([]string{}, drop.SQL...)
	var after []string
	for _, s := range undoSteps(rec, plan) {
		inTx, after = splitAtCommit(inTx, after, s.Undo, s.UndoAfter, s.NoTx)
	}
	record := func(tx pgx.Tx) error {
		if err := e.store.QueuePending(ctx, tx, rec.Schema, rec.Name, after); err != nil {
			return err
		}
		return e.store.Delete(ctx, tx, rec.Schema, rec.Name)
	}
	err := e.atomic(ctx, "rollback", inTx, record)
	if err != nil && e.cfg.ForceRollback && dataError(err) {
		// --force: an undo statement that errs (a sql operation's down
		// that fails) is skipped and said, so that the rollback reaches
		// no migration in progress.
		e.log.Warn().Err(err).Str(keyMigration, rec.Name).Msg("rollback failed; with --force, trying again with each step's undo on its own savepoint")
		var skipped []string
		skipped, err = e.forcedRollback(ctx, drop, undoSteps(rec, plan), record)
		e.forceLeft = skipped
	}
	if err != nil {
		if len(e.undoChanged) > 0 {
			// The data migrations' undo ran outside this transaction.
			return fmt.Errorf("roll back %q: %w; the rollback's transaction changed nothing, but before it this rollback %s: the migration is now %s; run online rollback again once the cause is fixed", rec.Name, err, strings.Join(e.undoChanged, ", "), rec.Phase)
		}
		return fmt.Errorf("roll back %q: %w; nothing was changed: the migration is still %s; run online rollback again once the cause is fixed", rec.Name, err, rec.Phase)
	}
	e.log.Info().Str(keyEvent, evRolledBack).Str(keyMigration, rec.Name).Msg("migration rolled back")
	var left *PendingLeftError
	if _, err := e.runPending(ctx); errors.As(err, &left) {
		e.log.Warn().Str(keyMigration, rec.Name).Msg(err.Error())
		e.queued = left.Statements
	} else if err != nil {
		return fmt.Errorf("migration %q is rolled back, but dropping an index it built failed: %w; the next online command drops it", rec.Name, err)
	}
	return nil
}

// forcedRollback is the rollback's transaction for --force: the version
// schema's drop as usual, then each step's undo in a savepoint of its own;
// an undo that errs is rolled back to its savepoint and returned, one line
// each, as left in place.
func (e *Engine) forcedRollback(ctx context.Context, drop *schemaDrop, steps []operations.Step, record func(pgx.Tx) error) ([]string, error) {
	var left []string
	var failed string
	err := e.retry.Do(ctx, func(ctx context.Context) error {
		left, failed = nil, ""
		return pgx.BeginFunc(ctx, e.conn, func(tx pgx.Tx) error {
			for _, stmt := range drop.SQL {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					failed = stmt
					return err
				}
			}
			for _, s := range steps {
				var stmts []string
				stmts, _ = splitAtCommit(nil, nil, s.Undo, s.UndoAfter, s.NoTx)
				if len(stmts) == 0 {
					continue
				}
				if _, err := tx.Exec(ctx, "SAVEPOINT online_undo"); err != nil {
					return err
				}
				var serr error
				for _, stmt := range stmts {
					if _, serr = tx.Exec(ctx, stmt); serr != nil {
						break
					}
				}
				if serr != nil {
					if !dataError(serr) {
						return serr
					}
					if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT online_undo"); err != nil {
						return err
					}
					left = append(left, fmt.Sprintf("the undo of %q failed and was skipped (%v): what that step did stays", s.Do, serr))
					continue
				}
				if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT online_undo"); err != nil {
					return err
				}
			}
			return record(tx)
		})
	})
	if err != nil {
		return nil, pg.WithSQL(err, failed)
	}
	return left, nil
}
