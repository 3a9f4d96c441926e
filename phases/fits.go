package phases

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
)

// compileOptions are the options every compile of the engine uses, with
// the catalog questions a compile may ask (operations.Options.Fits).
func (e *Engine) compileOptions(ctx context.Context, parent string) operations.Options {
	return operations.Options{Schema: e.cfg.Schema, StateSchema: e.cfg.StateSchema, Parent: parent, Fits: e.fits(ctx)}
}

// fits answers whether a column default or a check constraint still holds
// once columns of its table change type, the way PostgreSQL itself decides
// it: on an empty temporary copy of the table's columns, in a transaction
// that is rolled back, so nothing is left behind. An error of the
// statement's own making (a type mismatch, no such function or cast, a
// value that does not convert) means no; any other error is returned.
func (e *Engine) fits(ctx context.Context) func(operations.FitQuery) (bool, error) {
	return func(q operations.FitQuery) (ok bool, err error) {
		tx, err := e.conn.Begin(ctx)
		if err != nil {
			return false, err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		const probe = "_online_fit"
		tmp := pg.Ident("pg_temp", probe)
		stmts := []string{fmt.Sprintf("CREATE TEMPORARY TABLE %s (LIKE %s)", pg.Ident(probe), pg.Ident(e.cfg.Schema, q.Table))}
		for _, col := range slices.Sorted(maps.Keys(q.Types)) {
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING CAST(NULL AS %s)", tmp, pg.Ident(col), q.Types[col], q.Types[col]))
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return false, fmt.Errorf("%s: %w", s, err)
			}
		}
		try := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", tmp, pg.Ident(probe+"_check"), q.Check)
		if q.Check == "" {
			try = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", tmp, pg.Ident(q.Column), q.Default)
		}
		if _, err := tx.Exec(ctx, try); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "42") || strings.HasPrefix(pe.Code, "22")) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	}
}
