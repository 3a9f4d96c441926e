package phases

import "context"

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
