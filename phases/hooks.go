package phases

import (
	"context"
	"encoding/json"
	"fmt"
	"os/user"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/state"
)

// What a layer above one migration's lifecycle (package workflow: a
// directory of files, revert, baseline, drift) builds on: the schema's
// lock, a start that records who and what, the schema as a model. The
// lifecycle itself records, as it goes, what that layer reads back: the
// file `start FILE` ran, the schema right after each complete, each
// rollback.

// Config returns the engine's configuration, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Locked runs fn holding the schema's advisory lock, as every command of
// the engine does (the lock stacks: Start and Complete inside fn take it
// again). Queued statements an earlier command left are run first.
func (e *Engine) Locked(ctx context.Context, fn func() error) error { return e.locked(ctx, fn) }

// StartRecorded is Start with meta recorded on the migration's record as
// Start inserts it: the files of a directory it applies, its kind (a
// revert, and what it reverts), the operating system user, the schema
// model before it. A migration Start carries on keeps what it had.
func (e *Engine) StartRecorded(ctx context.Context, m *operations.Migration, meta state.Meta) (*Result, error) {
	e.meta = &meta
	defer func() { e.meta = nil }()
	return e.Start(ctx, m)
}

// PublishedParent is the version schema of the latest completed migration
// while it still exists ("" otherwise): the version the next migration
// keeps live as its old one.
func (e *Engine) PublishedParent(ctx context.Context) (string, error) { return e.parent(ctx) }

// Preflight runs catalog checks as Start runs them before its first
// write (types, collations, expressions evaluated in a transaction rolled
// back), on the migrated schema. It changes nothing.
func (e *Engine) Preflight(ctx context.Context, checks []operations.CatalogCheck) error {
	return e.preflight(ctx, e.cfg.Schema, checks)
}

// SchemaModel is the live model of the migrated schema as JSON: kept with
// a migration (revert reads the column types and defaults from before
// it), and after it (what drift is measured against).
func (e *Engine) SchemaModel(ctx context.Context) (json.RawMessage, error) {
	cur, err := schema.Read(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	cur.PathNames = nil
	b, err := json.Marshal(cur)
	if err != nil {
		return nil, fmt.Errorf("encode the schema model: %w", err)
	}
	return b, nil
}

// InTx runs fn in one transaction of the engine's connection: what it
// records is recorded whole or not at all.
func (e *Engine) InTx(ctx context.Context, fn func(state.Querier) error) error {
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// withMeta puts what StartRecorded was given on the record of the
// migration being started, before Start inserts it.
func (e *Engine) withMeta(rec *state.Record) {
	if m := e.meta; m != nil {
		rec.Kind, rec.Reverts, rec.Files, rec.OSUser, rec.Before = m.Kind, m.Reverts, m.Files, m.OSUser, m.Before
	}
}

// OSUser is the operating system user of this process, as the history
// records it ("" when unknown).
func OSUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// phaseRolledBack is the phase Rollback reports.
const phaseRolledBack = "rolled_back"

// recordAfter keeps the model of the schema right after migration name
// completed. A failure is logged, not returned: the migration did
// complete, and only drift detection goes without it until the next one.
func (e *Engine) recordAfter(ctx context.Context, name string) {
	model, err := e.SchemaModel(ctx)
	if err == nil {
		err = e.store.SetAfter(ctx, e.conn, e.cfg.Schema, name, model)
	}
	if err != nil {
		e.log.Warn().Err(err).Str(keyMigration, name).Msg("could not record the schema after the migration; changes made outside online cannot be detected until the next one")
	}
}

// recordRollback keeps, for `online history`, a migration that a rollback
// is about to forget. A failure is logged: the rollback itself succeeded.
func (e *Engine) recordRollback(ctx context.Context, rec *state.Record) {
	var files []string
	for _, f := range rec.Files {
		files = append(files, f.Name)
	}
	ev := state.Event{Migration: rec.Name, Event: state.EventRolledBack, OSUser: OSUser(), Kind: rec.Kind, Files: files}
	if ev.Kind == "" {
		ev.Kind = state.KindMigration
	}
	if err := e.store.AddEvent(ctx, e.conn, e.cfg.Schema, ev); err != nil {
		e.log.Warn().Err(err).Str(keyMigration, rec.Name).Msg("could not record the rollback in the history")
	}
}
