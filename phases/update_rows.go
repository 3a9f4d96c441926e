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
// Before any change it refuses when a data migration without down has
// changed rows, and proves that each down can run on every row it will
// set back (checkDown): a down that fails on a row is refused naming it
// (*DownError), changing nothing. With Config.ForceRollback neither
// refuses: such a data migration keeps the values it set, and what it
// left is returned, one line each. Only then it records the rolling_back
// phase and drops the new version schema as drop says, so that the new
// version's writers are gone before the values are computed back.
func (e *Engine) undoDataMigrations(ctx context.Context, rec *state.Record, plan *operations.Plan, drop *schemaDrop) ([]string, error) {
	e.undoChanged = nil
	var data []int
	for i, bf := range plan.Backfill {
		if bf.Data != nil {
			data = append(data, i)
		}
	}
	if len(data) == 0 {
		return nil, nil
	}
	cps, err := e.store.Backfills(ctx, e.conn, rec.Schema, rec.Name)
	if err != nil {
		return nil, err
	}
	// changed: a forward batch committed over at least one key. An
	// empty table's task is done with nothing walked.
	changed := func(i int) bool { cp, ok := cps[i]; return ok && cp.RowsDone > 0 }
	irr := &IrreversibleError{Migration: rec.Name}
	var downs []int
	var left []string
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
			left = append(left, fmt.Sprintf("operation %d (update_rows on %s) has no down: the values it set are kept", bf.Ops[0], bf.Qualified(plan.Schema)))
		}
	}
	if len(irr.Ops) > 0 {
		if !e.cfg.ForceRollback {
			return nil, irr
		}
		e.log.Warn().Str(keyMigration, rec.Name).Ints("ops", irr.Ops).Msg("rolling back with --force: the values set by data migrations without down are kept")
	}
	// Prove every down can run before anything changes.
	var run []int
	for _, i := range downs {
		var done *state.Backfill
		if cp, ok := cps[downTask(i)]; ok {
			if cp.Done {
				continue
			}
			done = &cp
		}
		err := e.checkDown(ctx, rec, plan, i, cps[i], done)
		var de *DownError
		switch {
		case err == nil:
			run = append(run, i)
		case errors.As(err, &de) && e.cfg.ForceRollback:
			left = append(left, fmt.Sprintf("operation %d (update_rows on %s): its down cannot set row %s back (%v): every row keeps the value it has now", de.Op, de.Table, de.Row, de.Err))
			e.log.Warn().Str(keyMigration, rec.Name).Int("op", de.Op).Msg("rolling back with --force: " + left[len(left)-1])
		case errors.As(err, &de) && rec.Phase == state.RollingBack:
			de.Changed = fmt.Sprintf("an earlier run of this rollback dropped version schema %s and set rows back (the migration is %s)", plan.VersionSchema, rec.Phase)
			return nil, err
		default:
			return nil, err
		}
	}
	if len(run) == 0 {
		return left, nil
	}
	if rec.Phase != state.RollingBack {
		if err := e.store.SetPhase(ctx, e.conn, rec.Schema, rec.Name, state.RollingBack); err != nil {
			return nil, err
		}
		rec.Phase = state.RollingBack
		e.undoChanged = append(e.undoChanged, "recorded the phase rolling_back")
	}
	step := operations.Step{Do: fmt.Sprintf("drop version schema %s before computing data back", plan.VersionSchema), SQL: drop.SQL}
	if err := e.runStep(ctx, step, nil); err != nil {
		return nil, fmt.Errorf("roll back %q: %w; the migration is now %s and its version schema %s may be dropped: run online rollback again to carry on", rec.Name, err, rec.Phase, plan.VersionSchema)
	}
	e.undoChanged = append(e.undoChanged, "dropped version schema "+plan.VersionSchema)
	for j := len(run) - 1; j >= 0; j-- {
		i := run[j]
		err := e.runDown(ctx, rec, plan, i, cps[i], cps)
		bf := plan.Backfill[i]
		if err == nil {
			e.undoChanged = append(e.undoChanged, fmt.Sprintf("set the rows of %s back with the down of operation %d", bf.Table, bf.Ops[0]))
			continue
		}
		var setBack int64
		var done *state.Backfill
		if now, rerr := e.store.Backfills(ctx, e.conn, rec.Schema, rec.Name); rerr == nil {
			if cp, ok := now[downTask(i)]; ok {
				setBack = cp.RowsDone
				done = &cp
			}
		}
		partway := fmt.Sprintf("version schema %s is dropped, the migration is %s, and the down of operation %d set %d row(s) of %s back before it failed", plan.VersionSchema, rec.Phase, bf.Ops[0], setBack, bf.Table)
		if !dataError(err) {
			return nil, fmt.Errorf("roll back %q: %w; the rollback stopped partway: %s; run online rollback again to carry on", rec.Name, err, partway)
		}
		// A row written since the check fails the down: name it.
		de := &DownError{Migration: rec.Name, Op: bf.Ops[0], Table: bf.Qualified(plan.Schema), Row: "(not found again)", Err: err, Changed: partway}
		var again *DownError
		if cerr := e.checkDown(ctx, rec, plan, i, cps[i], done); errors.As(cerr, &again) {
			de.Row, de.Err = again.Row, again.Err
		}
		if !e.cfg.ForceRollback {
			return nil, de
		}
		at := "the first key"
		if done != nil && len(done.LastKey) > 0 {
			at = "key (" + strings.Join(done.LastKey, ", ") + ")"
		}
		left = append(left, fmt.Sprintf("operation %d (update_rows on %s): its down stopped at row %s (%v) after %d row(s); the rows after %s keep the values the operation set", de.Op, de.Table, de.Row, de.Err, setBack, at))
		e.log.Warn().Str(keyMigration, rec.Name).Int("op", de.Op).Msg("rolling back with --force: " + left[len(left)-1])
	}
	return left, nil
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
