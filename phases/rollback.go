package phases

import (
	"context"
	"fmt"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// Rollback undoes the migration in progress, at any phase before contract:
// drops the new version schema, then undoes each step that ran, newest
// first. The old version served all along, so no data written through it
// is touched; the tables end as they were before Start.
func (e *Engine) Rollback(ctx context.Context) (*Result, error) {
	return e.command(ctx, func() (*Result, error) {
		rec, err := e.current(ctx)
		if err != nil {
			return nil, err
		}
		if rec.Phase == state.Completing {
			return nil, fmt.Errorf("migration %q is completing: contract steps have run and cannot be undone; run online complete to finish it", rec.Name)
		}
		plan, err := decodePlan(rec)
		if err != nil {
			return nil, err
		}
		if err := e.rollback(ctx, rec, plan); err != nil {
			return nil, err
		}
		return &Result{Migration: rec.Name, VersionSchema: rec.VersionSchema, Phase: "rolled_back"}, nil
	})
}

func (e *Engine) rollback(ctx context.Context, rec *state.Record, plan *operations.Plan) error {
	if err := e.store.SetPhase(ctx, e.conn, rec.Schema, rec.Name, state.RollingBack); err != nil {
		return err
	}
	drop := operations.Step{Do: fmt.Sprintf("drop version schema %s", plan.VersionSchema), SQL: []string{"DROP SCHEMA IF EXISTS " + pg.Ident(plan.VersionSchema) + " CASCADE"}}
	if err := e.runStep(ctx, drop, nil); err != nil {
		return fmt.Errorf("roll back %q: %w", rec.Name, err)
	}
	steps := append(append([]operations.Step{}, plan.Expand...), plan.Finish...)
	last := min(rec.StepsDone, len(steps)) - 1
	// A step outside a transaction (a concurrent index build) may have
	// been cut off halfway; its undo is idempotent, so it is run too.
	if next := rec.StepsDone; next < len(steps) && steps[next].NoTx {
		last = next
	}
	for i := last; i >= 0; i-- {
		if err := e.runUndo(ctx, steps[i]); err != nil {
			return fmt.Errorf("roll back %q: %w; run online rollback again", rec.Name, err)
		}
		if err := e.store.SetStepsDone(ctx, e.conn, rec.Schema, rec.Name, i); err != nil {
			return err
		}
	}
	if err := e.store.Delete(ctx, e.conn, rec.Schema, rec.Name); err != nil {
		return err
	}
	e.log.Info().Str(keyEvent, evRolledBack).Str(keyMigration, rec.Name).Msg("migration rolled back")
	return nil
}
