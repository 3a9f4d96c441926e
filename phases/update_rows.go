package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// ErrIrreversible is returned (through *IrreversibleError) when a rollback
// would have to undo a data migration (update_rows) that has no down and
// has already changed rows. Nothing is changed by the refusal.
var ErrIrreversible = errors.New("the migration changed data it cannot change back")

// IrreversibleError names the data migrations that stand in the way of a
// rollback.
type IrreversibleError struct {
	Migration string
	// Ops are the 1-based positions of the update_rows operations, Tables
	// the tables they changed, RowsDone how many keys they walked.
	Ops      []int
	Tables   []string
	RowsDone int64
}

func (e *IrreversibleError) Error() string {
	var what []string
	for i, op := range e.Ops {
		what = append(what, fmt.Sprintf("operation %d (update_rows on %s)", op, e.Tables[i]))
	}
	return fmt.Sprintf("%v: migration %q cannot be rolled back: %s has no down and has already changed rows (%d walked); "+
		"the rollback changed nothing. Keep the migration (online complete once it is active, or online start again after a failure), "+
		"or run online rollback --force to roll back everything else and keep the values it set",
		ErrIrreversible, e.Migration, strings.Join(what, ", "), e.RowsDone)
}

func (e *IrreversibleError) Is(target error) bool { return target == ErrIrreversible }

// downTask is the task number, in the backfills table, of the rollback
// pass of the plan's backfill i: negative, so it never meets a forward one.
func downTask(i int) int { return -(i + 1) }

// undoDataMigrations runs, before the rollback's own transaction, the down
// of every data migration (update_rows) that changed rows: in batches, each
// its own transaction with its checkpoint, newest first, so a killed
// rollback resumes it and calling it again once done does nothing. Each
// down walks only the keys its forward pass walked (up to that pass's
// checkpoint): rows past it were never changed.
//
// It refuses, changing nothing, when a data migration without down has
// changed rows, unless Config.ForceRollback is set (those values are
// kept). When there is a down to run it first records the rolling_back
// phase and drops the new version schema, so that the new version's
// writers are gone before the values are computed back.
func (e *Engine) undoDataMigrations(ctx context.Context, rec *state.Record, plan *operations.Plan) error {
	var data []int
	for i, bf := range plan.Backfill {
		if bf.Data != nil {
			data = append(data, i)
		}
	}
	if len(data) == 0 {
		return nil
	}
	cps, err := e.store.Backfills(ctx, e.conn, rec.Schema, rec.Name)
	if err != nil {
		return err
	}
	// changed: a forward batch committed over at least one key. An
	// empty table's task is done with nothing walked.
	changed := func(i int) bool { cp, ok := cps[i]; return ok && cp.RowsDone > 0 }
	irr := &IrreversibleError{Migration: rec.Name}
	var downs []int
	for _, i := range data {
		bf := plan.Backfill[i]
		switch {
		case !changed(i), bf.Data.NewColumns:
			// Nothing to undo: no row changed, or the rollback drops the
			// columns it set.
		case len(bf.Data.Down) > 0:
			downs = append(downs, i)
		default:
			irr.Ops = append(irr.Ops, bf.Ops[0])
			irr.Tables = append(irr.Tables, bf.Table)
			irr.RowsDone += cps[i].RowsDone
		}
	}
	if len(irr.Ops) > 0 {
		if !e.cfg.ForceRollback {
			return irr
		}
		e.log.Warn().Str(keyMigration, rec.Name).Ints("ops", irr.Ops).Msg("rolling back with --force: the values set by data migrations without down are kept")
	}
	if len(downs) == 0 {
		return nil
	}
	if rec.Phase != state.RollingBack {
		if err := e.store.SetPhase(ctx, e.conn, rec.Schema, rec.Name, state.RollingBack); err != nil {
			return err
		}
		rec.Phase = state.RollingBack
	}
	drop := operations.Step{Do: fmt.Sprintf("drop version schema %s before computing data back", plan.VersionSchema), SQL: []string{"DROP SCHEMA IF EXISTS " + pg.Ident(plan.VersionSchema) + " CASCADE"}}
	if err := e.runStep(ctx, drop, nil); err != nil {
		return fmt.Errorf("roll back %q: %w", rec.Name, err)
	}
	for j := len(downs) - 1; j >= 0; j-- {
		i := downs[j]
		if cp, ok := cps[downTask(i)]; ok && cp.Done {
			continue
		}
		if err := e.runDown(ctx, rec, plan, i, cps[i], cps); err != nil {
			return fmt.Errorf("roll back %q: %w; run online rollback again to carry on", rec.Name, err)
		}
	}
	return nil
}

// runDown walks the keys forward task i walked, setting its down.
func (e *Engine) runDown(ctx context.Context, rec *state.Record, plan *operations.Plan, i int, fwd state.Backfill, cps map[int]state.Backfill) error {
	bf := plan.Backfill[i]
	d := bf.Data
	schemaName := plan.Schema
	if bf.Schema != "" {
		schemaName = bf.Schema
	}
	task := backfill.Task{Schema: schemaName, Table: bf.Table}
	var cols, bound []string
	for j, k := range bf.Key {
		task.Key = append(task.Key, backfill.Column{Name: k.Name, Type: k.Type})
		cols = append(cols, pg.Ident(k.Name))
		if j < len(fwd.LastKey) {
			bound = append(bound, fmt.Sprintf("CAST(%s AS %s)", pg.Literal(fwd.LastKey[j]), k.Type))
		}
	}
	for _, a := range d.Down {
		task.Set = append(task.Set, backfill.Assignment{Column: a.Column, Expr: a.Expr})
	}
	var where []string
	if len(bound) == len(cols) {
		// Row comparison: the same order as the walk's.
		where = append(where, fmt.Sprintf("(%s) <= (%s)", strings.Join(cols, ", "), strings.Join(bound, ", ")))
	}
	if d.DownWhere != "" {
		where = append(where, d.DownWhere)
	}
	task.Where = strings.Join(where, " AND ")
	n := downTask(i)
	var total int64
	// The undo yields to the application and waits for the replicas as the
	// forward pass did.
	gov, stopGov, err := e.startGovernor(ctx, task, []*pgx.Conn{e.conn})
	if err != nil {
		return err
	}
	defer stopGov()
	opts := e.backfillOptions(e.conn, bf.Table, e.cfg.BackfillRate, newAggregate(bf.Table, nil, nil), gov)
	// No online.backfill setting: a data migration's table has no sync
	// triggers, and a user trigger it fires may write a table that does.
	opts.Settings = map[string]string{"search_path": pg.Ident(plan.Schema)}
	opts.Checkpoint = func(ctx context.Context, tx pgx.Tx, c backfill.Checkpoint) error {
		return e.store.SaveBackfill(ctx, tx, rec.Schema, rec.Name, state.Backfill{Task: n, Table: bf.Table, LastKey: c.LastKey, RowsDone: c.RowsDone, RowsTotal: total, Done: c.Done})
	}
	opts.Progress = func(p backfill.Progress) {
		total = p.RowsTotal
		p.Table = bf.Table
		p.Duty = gov.Duty()
		if e.cfg.OnProgress != nil {
			e.cfg.OnProgress(p)
		}
	}
	if cp, ok := cps[n]; ok {
		opts.Resume = &backfill.Checkpoint{LastKey: cp.LastKey, RowsDone: cp.RowsDone}
		e.log.Info().Str(keyEvent, evBackfillResume).Str(keyTable, bf.Table).Int64("rows_done", cp.RowsDone).Msg("resuming the down of a data migration from its checkpoint")
	}
	e.log.Info().Str(keyEvent, evPhaseStarted).Str(keyPhase, "data down").Str(keyTable, bf.Table).Msgf("undo data migration (operation %d) on %s", bf.Ops[0], bf.Table)
	final, err := backfill.Run(ctx, e.conn, task, opts)
	if err != nil {
		return err
	}
	return e.store.SaveBackfill(ctx, e.conn, rec.Schema, rec.Name, state.Backfill{Task: n, Table: bf.Table, LastKey: final.LastKey, RowsDone: final.RowsDone, RowsTotal: max(total, final.RowsDone), Done: true})
}
