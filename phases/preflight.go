package phases

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
)

// preflight asks the live catalog what the parser cannot know about the
// migration's fields (a type that does not exist, an expression naming a
// missing column or not type-checking), before start changes anything.
// Everything runs in one read-only transaction that is rolled back; each
// check in a savepoint of its own, so the search_path one sets does not
// leak into the next. A failing check is an *operations.Error naming the
// file, the operation and the field, never the internal statement.
func (e *Engine) preflight(ctx context.Context, schemaName string, checks []operations.CatalogCheck) error {
	if len(checks) == 0 {
		return nil
	}
	tx, err := e.conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin pre-flight checks: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, k := range checks {
		if err := runCheck(ctx, tx, schemaName, k); err != nil {
			return err
		}
	}
	return nil
}

func runCheck(ctx context.Context, tx pgx.Tx, schemaName string, k operations.CatalogCheck) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin pre-flight check: %w", err)
	}
	defer func() { _ = sp.Rollback(context.WithoutCancel(ctx)) }()
	if k.InSchema {
		if _, err := sp.Exec(ctx, "SELECT pg_catalog.set_config('search_path', $1, true)", pg.Ident(schemaName)); err != nil {
			return fmt.Errorf("set search_path for a pre-flight check: %w", err)
		}
	}
	if k.Type {
		var got *string
		if err := sp.QueryRow(ctx, k.SQL, k.Args...).Scan(&got); err != nil {
			return checkErr(k, err)
		}
		if got == nil {
			if k.Missing != "" {
				return k.Fail(k.Missing, k.Args[0])
			}
			return k.Fail("type %s does not exist", k.Args[0])
		}
		return nil
	}
	if k.Rows {
		var n int64
		var keys *string
		if err := sp.QueryRow(ctx, k.SQL, k.Args...).Scan(&n, &keys); err != nil {
			return checkErr(k, err)
		}
		if n > 0 {
			shown := ""
			if keys != nil {
				shown = *keys
			}
			if n > 5 {
				shown += ", ..."
			}
			return k.Fail(k.Message, n, shown)
		}
		return nil
	}
	rows, err := sp.Query(ctx, k.SQL, k.Args...)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		return checkErr(k, err)
	}
	return nil
}

// checkErr reports PostgreSQL's refusal of a field as a problem of the
// field; anything else (a lost connection) as what it is.
func checkErr(k operations.CatalogCheck, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg := pgErr.Message
		if pgErr.Hint != "" {
			msg += " (hint: " + pgErr.Hint + ")"
		}
		return k.Fail("PostgreSQL refuses it: %s (SQLSTATE %s)", msg, pgErr.Code)
	}
	return fmt.Errorf("pre-flight check of %s, operation %d (%s), field %q: %w", k.File, k.Op, k.Kind, k.Field, err)
}
