package phases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/state"
)

// backfillSetting is set transaction-locally by every backfill batch; the
// sync triggers skip their UPDATE work while it is on.
const backfillSetting = "online.backfill"

// Start runs a migration's expand, backfill and finish phases and publishes
// the new version. When the same migration was left unfinished by a process
// that died, Start carries it on from its last recorded step.
//
// If a step fails, what was done is undone and the error returned; if the
// connection is lost or ctx is cancelled, the state is kept so that Start
// again resumes, or Rollback undoes.
func (e *Engine) Start(ctx context.Context, m *operations.Migration) (*Result, error) {
	began := time.Now()
	var res *Result
	err := e.locked(ctx, func() error {
		rec, err := e.store.InProgress(ctx, e.conn, e.cfg.Schema)
		if err != nil {
			return err
		}
		if rec != nil {
			if rec.Name != m.Name {
				return &InProgressError{Name: rec.Name}
			}
			res = &Result{Migration: rec.Name, VersionSchema: rec.VersionSchema, Resumed: true}
			if rec.Phase == state.Active {
				res.Phase = string(rec.Phase)
				e.log.Info().Str(keyMigration, rec.Name).Msg("migration already started; nothing to do")
				return nil
			}
			if rec.Phase == state.Completing || rec.Phase == state.RollingBack {
				return fmt.Errorf("migration %q is %s; run online %s", rec.Name, rec.Phase, map[state.Phase]string{state.Completing: "complete", state.RollingBack: "rollback"}[rec.Phase])
			}
			return e.carryOn(ctx, rec, res, "")
		}
		if done, err := e.store.Get(ctx, e.conn, e.cfg.Schema, m.Name); err != nil {
			return err
		} else if done != nil {
			if err := e.setAside(ctx, done); err != nil {
				return err
			}
		}
		cur, err := schema.Read(ctx, e.conn, e.cfg.Schema)
		if err != nil {
			return err
		}
		parent, err := e.parent(ctx)
		if err != nil {
			return err
		}
		plan, nw, err := operations.Compile(m, cur, e.compileOptions(ctx, parent))
		if err != nil {
			return err
		}
		// Said before anything runs: rollback will not undo these.
		for _, s := range plan.Expand {
			if s.Irreversible != "" {
				e.log.Warn().Str(keyMigration, m.Name).Msg("irreversible: " + s.Irreversible)
			}
		}
		// Before the first write (the state record, then expand's DDL).
		if err := e.preflight(ctx, e.cfg.Schema, operations.CatalogChecks(m, cur, nw)); err != nil {
			return err
		}
		if exists, err := e.schemaExists(ctx, plan.VersionSchema); err != nil {
			return err
		} else if exists {
			return fmt.Errorf("migration %q: its version schema %q already exists; choose another name or version_schema", m.Name, plan.VersionSchema)
		}
		planJSON, err := json.Marshal(plan)
		if err != nil {
			return fmt.Errorf("encode plan: %w", err)
		}
		before, err := e.fingerprint(ctx, e.cfg.Schema)
		if err != nil {
			return err
		}
		rec = &state.Record{Schema: e.cfg.Schema, Name: m.Name, VersionSchema: plan.VersionSchema, Parent: parent, Document: m.Document, Plan: planJSON, Phase: state.Expanding}
		e.withMeta(rec)
		if e.meta == nil {
			rec.Files = fileOf(m)
		}
		if err := e.store.Insert(ctx, e.conn, rec); err != nil {
			return err
		}
		res = &Result{Migration: m.Name, VersionSchema: plan.VersionSchema}
		return e.carryOn(ctx, rec, res, before)
	})
	if res != nil {
		res.Elapsed = time.Since(began)
	}
	return res, err
}

// Resume carries on the migration in progress (after a crash or Ctrl-C)
// through backfill and publish, without needing its file.
func (e *Engine) Resume(ctx context.Context) (*Result, error) {
	began := time.Now()
	var res *Result
	err := e.locked(ctx, func() error {
		rec, err := e.store.InProgress(ctx, e.conn, e.cfg.Schema)
		if err != nil {
			return err
		}
		if rec == nil {
			return ErrNoMigration
		}
		res = &Result{Migration: rec.Name, VersionSchema: rec.VersionSchema, Phase: string(rec.Phase), Resumed: true}
		switch rec.Phase {
		case state.Expanding, state.Backfilling, state.Finishing:
			return e.carryOn(ctx, rec, res, "")
		case state.Active:
			return nil
		default:
			return fmt.Errorf("migration %q is %s; run online %s", rec.Name, rec.Phase, map[state.Phase]string{state.Completing: "complete", state.RollingBack: "rollback"}[rec.Phase])
		}
	})
	if res != nil {
		res.Elapsed = time.Since(began)
	}
	return res, err
}

// carryOn runs the plan from where rec says it stands to publication. On a
// failure that is not a lost connection or a cancel, it rolls back. before
// is the catalog's fingerprint taken before this start changed anything,
// or "" when an earlier run began the migration.
func (e *Engine) carryOn(ctx context.Context, rec *state.Record, res *Result, before string) error {
	plan, err := decodePlan(rec)
	if err != nil {
		return err
	}
	err = e.advance(ctx, rec, plan, res)
	if err == nil {
		res.Phase = string(state.Active)
		return nil
	}
	var lost *workerLostError
	if e.connLost(err) || canceledByServer(err) || errors.As(err, &lost) {
		return &InterruptedError{Migration: rec.Name, Err: err}
	}
	e.log.Error().Err(err).Str(keyMigration, rec.Name).Msg("start failed; undoing what it did")
	// Data migrations are computed back first, in batches, outside the
	// rollback's transaction; one without down that changed rows keeps
	// the migration where it stands instead.
	drop, dErr := e.versionSchemaDrop(context.WithoutCancel(ctx), "rollback", rec.Name, plan.VersionSchema, plan)
	if dErr != nil {
		return errors.Join(err, fmt.Errorf("start was not undone: %v", dErr))
	}
	if _, dErr := e.undoDataMigrations(context.WithoutCancel(ctx), rec, plan, drop); dErr != nil {
		if errors.Is(dErr, ErrIrreversible) {
			// Not wrapped: the command failed (start), it was not a
			// rollback refused; the message says what to run.
			return errors.Join(err, fmt.Errorf("start was not undone: %v", dErr))
		}
		return errors.Join(err, fmt.Errorf("and undoing its data migrations failed (run online rollback): %w", dErr))
	}
	if rbErr := e.rollback(context.WithoutCancel(ctx), rec, plan, drop); rbErr != nil {
		return errors.Join(err, fmt.Errorf("and the rollback after it failed too (run online rollback): %w", rbErr))
	}
	// Say "undone" only when the catalog shows it.
	if before == "" {
		return fmt.Errorf("%w (the rollback ran without error; what an earlier run of start did is not compared with the schema before it: check with online status and your schema)", err)
	}
	after, ferr := e.fingerprint(context.WithoutCancel(ctx), e.cfg.Schema)
	switch {
	case ferr != nil:
		return errors.Join(err, fmt.Errorf("the rollback ran without error, but the schema could not be compared with before start: %w", ferr))
	case after != before:
		return fmt.Errorf("%w (the rollback ran without error, but schema %q is not as it was before start: inspect it, and run online rollback if online status still shows the migration)", err, e.cfg.Schema)
	}
	// What no rollback can undo (an enum value added, raw SQL without
	// down), and rows a down set back, are said as they are.
	var kept []string
	for _, l := range leftInPlace(rec, plan) {
		kept = append(kept, "left in place: "+l)
	}
	for _, c := range e.undoChanged {
		if strings.HasPrefix(c, "set the rows") {
			kept = append(kept, c+": they are as before start only as far as that down is the exact inverse of its set")
		}
	}
	if len(kept) > 0 {
		return &StartFailedError{Err: fmt.Errorf("%w (start was undone, except: %s)", err, strings.Join(kept, "; ")), Undone: true, Left: kept}
	}
	return &StartFailedError{Err: fmt.Errorf("%w (everything start did was undone)", err), Undone: true}
}

// StartFailedError is returned by Start when a step failed and start
// undid what it did: Undone says the undo ran and the schema is as it was
// before start; Left lists what stays changed all the same (what no
// rollback can undo, rows a down set back).
type StartFailedError struct {
	Err    error
	Undone bool
	Left   []string
}

func (e *StartFailedError) Error() string { return e.Err.Error() }
func (e *StartFailedError) Unwrap() error { return e.Err }

// fingerprint summarises what start may change in the catalog: the
// migrated schema's relations, columns, defaults, constraints, indexes and
// triggers, and the list of schemas (version schemas come and go).
func (e *Engine) fingerprint(ctx context.Context, schemaName string) (string, error) {
	const q = `SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM (
	SELECT 'rel ' || c.relname || ' ' || c.relkind::text FROM pg_class c WHERE c.relnamespace = $1::regnamespace
	UNION ALL
	SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
		|| ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE c.relnamespace = $1::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = $1::regnamespace
	UNION ALL
	SELECT 'idx ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = $1::regnamespace
	UNION ALL
	SELECT 'trg ' || c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal
	UNION ALL
	SELECT 'nsp ' || nspname FROM pg_namespace
) s(x)`
	var sum string
	if err := e.conn.QueryRow(ctx, q, pg.Ident(schemaName)).Scan(&sum); err != nil {
		return "", fmt.Errorf("read the catalog of schema %s: %w", schemaName, err)
	}
	return sum, nil
}

// InterruptedError is returned when a migration stopped midway without
// being undone: the connection was lost or the process was told to stop.
type InterruptedError struct {
	Migration string
	Err       error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("migration %q interrupted: %v; its progress is saved: run `online start` with the same file (or `online backfill`) to resume, or `online rollback` to undo it", e.Migration, e.Err)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

func (e *Engine) advance(ctx context.Context, rec *state.Record, plan *operations.Plan, res *Result) error {
	steps := append(append([]operations.Step{}, plan.Expand...), plan.Finish...)
	nExpand := len(plan.Expand)
	setPhase := func(p state.Phase) error {
		if rec.Phase == p {
			return nil
		}
		if err := e.store.SetPhase(ctx, e.conn, rec.Schema, rec.Name, p); err != nil {
			return err
		}
		e.log.Info().Str(keyEvent, evPhaseStarted).Str(keyMigration, rec.Name).Str(keyPhase, string(p)).Msgf("phase %s", p)
		rec.Phase = p
		return nil
	}
	runSteps := func(from, to int) error {
		for i := from; i < to; i++ {
			n := i + 1
			err := e.runStep(ctx, steps[i], func(tx pgx.Tx) error {
				return e.store.SetStepsDone(ctx, tx, rec.Schema, rec.Name, n)
			})
			if err != nil {
				return err
			}
			rec.StepsDone = n
		}
		return nil
	}
	if rec.Phase == state.Expanding {
		e.log.Info().Str(keyEvent, evPhaseStarted).Str(keyMigration, rec.Name).Str(keyPhase, string(state.Expanding)).Msg("phase expanding")
		if err := runSteps(rec.StepsDone, nExpand); err != nil {
			return err
		}
		if err := setPhase(state.Backfilling); err != nil {
			return err
		}
	}
	if rec.Phase == state.Backfilling {
		began := time.Now()
		e.workersUsed = 0
		err := e.runBackfills(ctx, rec, plan)
		res.Backfill = time.Since(began)
		res.BackfillWorkers = e.workersUsed
		if err != nil {
			return err
		}
		if err := setPhase(state.Finishing); err != nil {
			return err
		}
	}
	if rec.Phase == state.Finishing {
		if err := runSteps(max(rec.StepsDone, nExpand), len(steps)); err != nil {
			return err
		}
		return e.publish(ctx, rec, plan)
	}
	return nil
}

// leafGone reports whether the leaf partition bf walks is no longer a leaf
// of the partitioned table the migration changes.
func (e *Engine) leafGone(ctx context.Context, planSchema string, bf operations.Backfill) (bool, error) {
	var part bool
	err := e.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_partition_tree(to_regclass($1)) WHERE relid = to_regclass($2) AND isleaf)`,
		pg.Ident(planSchema, bf.Parent), bf.Qualified(planSchema)).Scan(&part)
	if err != nil {
		return false, fmt.Errorf("look up partition %s of %s: %w", bf.Table, bf.Parent, err)
	}
	return !part, nil
}

// publish creates the new version schema and its views in one transaction
// with the phase change, so the version appears exactly when it is ready.
func (e *Engine) publish(ctx context.Context, rec *state.Record, plan *operations.Plan) error {
	views := plan.Views
	if plan.RawSQL {
		cur, err := schema.Read(ctx, e.conn, plan.Schema)
		if err != nil {
			return err
		}
		views = nil
		for _, name := range cur.TableNames() {
			t := cur.Tables[name]
			v := operations.View{Name: t.Name, Table: t.Physical}
			for _, c := range t.Columns {
				v.Columns = append(v.Columns, operations.ViewColumn{Name: c.Name, Physical: c.Physical})
			}
			views = append(views, v)
		}
	}
	var sv int
	if err := e.conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&sv); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}
	stmts := operations.PublishViews(plan.Schema, plan.VersionSchema, views, sv >= 150000)
	grants, err := e.grants(ctx, plan.Schema, plan.VersionSchema, views, sv >= 150000)
	if err != nil {
		return err
	}
	stmts = append(stmts, grants...)
	step := operations.Step{Do: fmt.Sprintf("publish version schema %s", plan.VersionSchema), SQL: stmts}
	err = e.runStep(ctx, step, func(tx pgx.Tx) error {
		return e.store.SetPhase(ctx, tx, rec.Schema, rec.Name, state.Active)
	})
	if err != nil {
		return err
	}
	rec.Phase = state.Active
	e.log.Info().Str(keyEvent, evPublished).Str(keyMigration, rec.Name).Str(keyVersion, plan.VersionSchema).Msgf("new version published: set search_path to %s", plan.VersionSchema)
	return nil
}
