package phases

import "context"

// SetInject makes the engine fail a statement of complete ("complete"),
// rollback ("rollback") or of what runs after their commit ("after"):
// f is called before statement i (i == len(statements) for the state
// update at the end of the transaction) and its error, if any, is the
// statement's.
func SetInject(e *Engine, f func(what string, i int, stmt string) error) { e.inject = f }

// UndoDataMigrations runs undoDataMigrations on the migration in progress,
// under the schema's lock, as Rollback will once it is wired there: tests
// call it, then Rollback.
func (e *Engine) UndoDataMigrations(ctx context.Context) error {
	return e.locked(ctx, func() error {
		rec, err := e.current(ctx)
		if err != nil {
			return err
		}
		plan, err := decodePlan(rec)
		if err != nil {
			return err
		}
		return e.undoDataMigrations(ctx, rec, plan)
	})
}
