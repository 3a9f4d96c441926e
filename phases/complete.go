package phases

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/state"
)

// Complete runs the contract phase of the migration in progress: drops the
// previous version schema and what only the old version needed, and makes
// renames physical. It refuses while the backfill is unfinished. Each step
// is recorded as it commits, so a Complete that dies midway is finished by
// running Complete again.
func (e *Engine) Complete(ctx context.Context) (*Result, error) {
	return e.command(ctx, func() (*Result, error) {
		rec, err := e.current(ctx)
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
		if rec.Phase != state.Completing {
			if err := e.store.SetPhase(ctx, e.conn, rec.Schema, rec.Name, state.Completing); err != nil {
				return nil, err
			}
		}
		e.log.Info().Str(keyEvent, evPhaseStarted).Str(keyMigration, rec.Name).Str(keyPhase, "contract").Msg("phase contract")
		for i := rec.ContractDone; i < len(plan.Contract); i++ {
			n := i + 1
			if err := e.runStep(ctx, plan.Contract[i], func(tx pgx.Tx) error {
				return e.store.SetContractDone(ctx, tx, rec.Schema, rec.Name, n)
			}); err != nil {
				return nil, fmt.Errorf("complete migration %q: %w; run online complete again to carry on", rec.Name, err)
			}
		}
		if err := e.store.SetPhase(ctx, e.conn, rec.Schema, rec.Name, state.Complete); err != nil {
			return nil, err
		}
		e.log.Info().Str(keyEvent, evCompleted).Str(keyMigration, rec.Name).Str(keyVersion, rec.VersionSchema).Msg("migration complete")
		return &Result{Migration: rec.Name, VersionSchema: rec.VersionSchema, Phase: string(state.Complete)}, nil
	})
}
