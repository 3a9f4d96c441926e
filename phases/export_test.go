package phases

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Standbys is what the replication check sees through conn: the standbys
// streaming, and the walsenders whose details the role may not read.
func Standbys(ctx context.Context, conn *pgx.Conn) (streaming, hidden int, err error) {
	r, err := readReplication(ctx, conn)
	return r.standbys, r.hidden, err
}

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
		drop, err := e.versionSchemaDrop(ctx, "rollback", rec.Name, plan.VersionSchema, plan)
		if err != nil {
			return err
		}
		_, err = e.undoDataMigrations(ctx, rec, plan, drop)
		return err
	})
}

// RangeCount is rangeCount, for the tests that check how a table is split.
var RangeCount = rangeCount
