package phases

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// Complete runs the contract phase of the migration in progress: drops the
// previous version schema and what only the old version needed, and makes
// renames physical. It refuses while the backfill is unfinished.
//
// Every catalog change of the contract runs in ONE transaction, retried as a
// whole under lock_timeout: a Complete that fails for any reason (a lock
// held past the retry deadline, a statement that errs, a lost connection)
// changes nothing, and the migration stays published, so both Complete again
// and Rollback work. Only what PostgreSQL cannot run in a transaction (DROP
// INDEX CONCURRENTLY of an index the migration dropped, renamed out of the
// way inside the transaction) runs after the commit; it is queued in the
// same transaction, so the next command finishes it after a crash.
func (e *Engine) Complete(ctx context.Context) (*Result, error) {
	return e.command(ctx, func() (*Result, error) {
		rec, err := e.current(ctx)
		if errors.Is(err, ErrNoMigration) && e.pendingRan > 0 {
			// The contract had committed; what a crash left after it is
			// done now, and that is what this Complete was asked for.
			if latest, lerr := e.store.LatestComplete(ctx, e.conn, e.cfg.Schema); lerr == nil && latest != nil {
				return &Result{Migration: latest.Name, VersionSchema: latest.VersionSchema, Phase: string(state.Complete)}, nil
			}
		}
		if err != nil {
			return nil, err
		}
		switch rec.Phase {
		case state.Active, state.Completing:
		case state.Expanding, state.Backfilling, state.Finishing:
			msg := fmt.Sprintf("migration %q is still %s", rec.Name, rec.Phase)
			if cps, err := e.store.Backfills(ctx, e.conn, rec.Schema, rec.Name); err == nil {
				for _, cp := range cps {
					if !cp.Done {
						msg += fmt.Sprintf(" (%s: %d of about %d rows copied)", cp.Table, cp.RowsDone, cp.RowsTotal)
					}
				}
			}
			return nil, fmt.Errorf("%w: %s; completing now would drop columns whose values are not all copied. Run `online start` with its file (or `online backfill`) to finish it, or `online rollback`", ErrBackfillUnfinished, msg)
		default:
			return nil, resumeHint(rec)
		}
		plan, err := decodePlan(rec)
		if err != nil {
			return nil, err
		}
		var dropped []ForeignObject
		e.log.Info().Str(keyEvent, evPhaseStarted).Str(keyMigration, rec.Name).Str(keyPhase, "contract").Msg("phase contract")
		if rec.Phase == state.Completing && rec.ContractDone > 0 {
			// Left by a version of online that ran the contract step by
			// step: what ran cannot be taken back, so carry on the same way.
			if err := e.legacyContract(ctx, rec, plan); err != nil {
				return nil, err
			}
		} else {
			inTx, after := contractSQL(plan.Contract)
			// Before any change: what others made in or on the previous
			// version schema stops the complete, unless --drop-dependents.
			inTx, dropped, err = e.parentDrop(ctx, rec, plan, inTx)
			if err != nil {
				return nil, err
			}
			err = e.atomic(ctx, "complete", inTx, func(tx pgx.Tx) error {
				if err := e.store.SetContractDone(ctx, tx, rec.Schema, rec.Name, len(plan.Contract)); err != nil {
					return err
				}
				if err := e.store.QueuePending(ctx, tx, rec.Schema, rec.Name, after); err != nil {
					return err
				}
				return e.store.SetPhase(ctx, tx, rec.Schema, rec.Name, state.Complete)
			})
			if err != nil {
				return nil, fmt.Errorf("complete migration %q: %w; nothing was changed: both versions still serve, and online complete (again) or online rollback both work", rec.Name, err)
			}
		}
		e.log.Info().Str(keyEvent, evCompleted).Str(keyMigration, rec.Name).Str(keyVersion, rec.VersionSchema).Msg("migration complete")
		e.logDropped(rec.Name, dropped)
		var left *PendingLeftError
		res := &Result{Migration: rec.Name, VersionSchema: rec.VersionSchema, Phase: string(state.Complete), DroppedDependents: dropped}
		if _, err := e.runPending(ctx); errors.As(err, &left) {
			e.log.Warn().Str(keyMigration, rec.Name).Msg(err.Error())
			res.Queued = left.Statements
		} else if err != nil {
			return res, fmt.Errorf("migration %q is complete, but a statement that runs after the contract failed: %w; the next online command runs it again", rec.Name, err)
		}
		return res, nil
	})
}

// contractSQL splits the contract's statements into those of its single
// transaction and those that run after it commits.
func contractSQL(steps []operations.Step) (inTx, after []string) {
	for _, s := range steps {
		inTx, after = splitAtCommit(inTx, after, s.SQL, s.After, s.NoTx)
	}
	return inTx, after
}

// splitAtCommit adds one step's statements (its SQL or its Undo) to those of
// an atomic transaction and those run after its commit (its After or
// UndoAfter). A NoTx step without after-commit statements comes from a plan
// stored by an older online (DROP INDEX CONCURRENTLY in a contract or an
// undo): all of it runs after the commit, as it is.
func splitAtCommit(inTx, after, stmts, later []string, noTx bool) ([]string, []string) {
	switch {
	case len(later) > 0:
		return append(inTx, stmts...), append(after, later...)
	case noTx:
		return inTx, append(after, stmts...)
	default:
		return append(inTx, stmts...), after
	}
}

// legacyContract carries on a contract that an older online ran step by
// step and left midway.
func (e *Engine) legacyContract(ctx context.Context, rec *state.Record, plan *operations.Plan) error {
	for i := rec.ContractDone; i < len(plan.Contract); i++ {
		n := i + 1
		if err := e.runStep(ctx, plan.Contract[i], func(tx pgx.Tx) error {
			return e.store.SetContractDone(ctx, tx, rec.Schema, rec.Name, n)
		}); err != nil {
			return fmt.Errorf("complete migration %q: %w; run online complete again to carry on", rec.Name, err)
		}
		for _, stmt := range plan.Contract[i].After {
			if err := e.runStep(ctx, operations.Step{Do: "after the contract step", SQL: []string{stmt}, NoTx: true}, nil); err != nil {
				return fmt.Errorf("complete migration %q: %w; run online complete again to carry on", rec.Name, err)
			}
		}
	}
	return e.store.SetPhase(ctx, e.conn, rec.Schema, rec.Name, state.Complete)
}

// parentDrop replaces, in the contract's statements, the drop of the
// previous version schema (DROP SCHEMA ... CASCADE in plans stored by an
// older online, without CASCADE since) by the drops versionSchemaDrop
// chose: online's views one by one, then the schema, refusing before any
// change when something else is in it or on its views. It returns the
// objects of others it drops (only with --drop-dependents).
func (e *Engine) parentDrop(ctx context.Context, rec *state.Record, plan *operations.Plan, stmts []string) ([]string, []ForeignObject, error) {
	if plan.Parent == "" {
		return stmts, nil, nil
	}
	old := operations.DropVersionSchemaSQL(plan.Parent)
	at := -1
	for i, s := range stmts {
		if s == old || s == old+" CASCADE" {
			at = i
			break
		}
	}
	if at < 0 {
		return stmts, nil, nil
	}
	// The previous migration's plan names the views it published.
	var parentPlan *operations.Plan
	if prev, err := e.store.LatestComplete(ctx, e.conn, e.cfg.Schema); err != nil {
		return nil, nil, err
	} else if prev != nil && prev.VersionSchema == plan.Parent && len(prev.Plan) > 0 {
		if p, err := decodePlan(prev); err == nil {
			parentPlan = p
		}
	}
	drop, err := e.versionSchemaDrop(ctx, "complete", rec.Name, plan.Parent, parentPlan)
	if err != nil {
		return nil, nil, err
	}
	out := append(append(append([]string{}, stmts[:at]...), drop.SQL...), stmts[at+1:]...)
	return out, drop.Dropped, nil
}
