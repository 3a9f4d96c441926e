package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/state"
)

// ErrDownFails is returned (through *DownError) when the down of a data
// migration (update_rows) cannot run on a row: checked before a rollback
// changes anything, so that a down that would stop halfway (a duplicate
// key on a unique index, a division by zero) never leaves the migration
// between its two versions.
var ErrDownFails = errors.New("the down of a data migration cannot run on every row")

// DownError names the row a down fails on.
type DownError struct {
	Migration string
	Op        int    // 1-based position of the update_rows operation
	Table     string // qualified
	Row       string // the row's key, as PostgreSQL prints a row
	Err       error
	// Changed is true when the rollback had changed something before the
	// down failed (it began before a row that fails appeared).
	Changed string
}

func (e *DownError) Error() string {
	head := fmt.Sprintf("%v: operation %d (update_rows on %s) cannot set row %s back: %v", ErrDownFails, e.Op, e.Table, e.Row, e.Err)
	if e.Changed != "" {
		return head + "; the rollback stopped partway: " + e.Changed + ". Fix that row (through the old version, search_path " +
			"without the version schema) and run online rollback again, or run online rollback --force to roll back the rest and keep the values the operation set on the rows its down has not reached"
	}
	return fmt.Sprintf("%s; the rollback was checked before any change and refused: nothing was changed, the migration %q stays where it was (both versions live; online complete works). "+
		"Fix that row and run online rollback again, or run online rollback --force to roll back the rest and keep the values the operation set", head, e.Migration)
}

func (e *DownError) Is(target error) bool { return target == ErrDownFails }

// downScope returns the condition that selects the rows the down of
// backfill bf sets back: those the forward pass walked (up to its
// checkpoint fwd), that the down's own where selects, and, when the down
// was resumed (done not nil), that it has not reached yet.
func downScope(bf operations.Backfill, fwd state.Backfill, done *state.Backfill) (cols []string, where string) {
	var upTo, past []string
	for j, k := range bf.Key {
		cols = append(cols, pg.Ident(k.Name))
		if j < len(fwd.LastKey) {
			upTo = append(upTo, fmt.Sprintf("CAST(%s AS %s)", pg.Literal(fwd.LastKey[j]), k.Type))
		}
		if done != nil && j < len(done.LastKey) {
			past = append(past, fmt.Sprintf("CAST(%s AS %s)", pg.Literal(done.LastKey[j]), k.Type))
		}
	}
	var conds []string
	if len(upTo) == len(cols) {
		// Row comparison: the same order as the walk's.
		conds = append(conds, fmt.Sprintf("(%s) <= (%s)", strings.Join(cols, ", "), strings.Join(upTo, ", ")))
	}
	if len(past) == len(cols) {
		conds = append(conds, fmt.Sprintf("(%s) > (%s)", strings.Join(cols, ", "), strings.Join(past, ", ")))
	}
	if bf.Data.DownWhere != "" {
		conds = append(conds, "("+bf.Data.DownWhere+")")
	}
	return cols, strings.Join(conds, " AND ")
}

// dataError reports whether err is the down's own failure on some row
// (bad data, a constraint, an error the expression raised) rather than
// the server being busy, gone or told to stop.
func dataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code[:2] {
	case "08", "40", "53", "55", "57", "58", "XX":
		return false
	}
	return true
}

// checkDown proves, before a rollback changes anything, that the down of
// plan's backfill i can run on every row it will set back: its
// expressions evaluate on each (one scan of those rows, nothing written),
// and the values it gives break no unique index of plain columns (one
// grouping over the table). It returns *DownError naming a row that
// fails. Rows written after the check may still fail the down; the
// rollback then stops and says what it changed (see undoDataMigrations).
// Expression and partial unique indexes are not checked here.
func (e *Engine) checkDown(ctx context.Context, rec *state.Record, plan *operations.Plan, i int, fwd state.Backfill, done *state.Backfill) error {
	bf := plan.Backfill[i]
	tbl := bf.Qualified(plan.Schema)
	cols, where := downScope(bf, fwd, done)
	scope := "true"
	if where != "" {
		scope = where
	}
	var exprs []string
	down := map[string]string{}
	for _, a := range bf.Data.Down {
		exprs = append(exprs, "("+a.Expr+")")
		down[a.Column] = a.Expr
	}
	fail := func(row string, err error) error {
		return &DownError{Migration: rec.Name, Op: bf.Ops[0], Table: tbl, Row: row, Err: err}
	}
	// The down's expressions are the user's SQL, as runDown sets them;
	// search_path is the migrated schema's, as there. The transaction is
	// rolled back: a volatile function called by a down changes nothing.
	inTx := func(fn func(tx pgx.Tx) error) error {
		tx, err := e.conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pg.Ident(plan.Schema)); err != nil {
			return err
		}
		return fn(tx)
	}
	err := inTx(func(tx pgx.Tx) error {
		var n int64
		return tx.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s AND length(ROW(%s)::text) >= 0", tbl, scope, strings.Join(exprs, ", "))).Scan(&n)
	})
	if err != nil {
		if !dataError(err) {
			return fmt.Errorf("check the down of operation %d on %s: %w", bf.Ops[0], tbl, err)
		}
		return fail(e.failingRow(ctx, inTx, tbl, cols, scope, exprs), err)
	}
	// Unique indexes of plain columns that the down sets: the values
	// every row would have once it ran must not meet twice.
	rows, err := e.conn.Query(ctx, `
SELECT array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indexprs IS NULL AND i.indpred IS NULL AND k.ord <= i.indnkeyatts
GROUP BY i.indexrelid ORDER BY i.indexrelid`, tbl)
	if err != nil {
		return fmt.Errorf("read the unique indexes of %s: %w", tbl, err)
	}
	var uniques [][]string
	for rows.Next() {
		var idx []string
		if err := rows.Scan(&idx); err != nil {
			rows.Close()
			return err
		}
		uniques = append(uniques, idx)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, idx := range uniques {
		touched := false
		var sel, out, notNull []string
		for j, name := range idx {
			alias := fmt.Sprintf("online_c%d", j)
			c := pg.Ident(name)
			expr := c
			if d, ok := down[name]; ok {
				expr = fmt.Sprintf("CASE WHEN %s THEN (%s) ELSE %s END", scope, d, c)
				touched = true
			}
			sel = append(sel, expr+" AS "+alias)
			out = append(out, alias)
			notNull = append(notNull, alias+" IS NOT NULL")
		}
		if !touched {
			continue
		}
		var keys []string
		for j, k := range cols {
			alias := fmt.Sprintf("online_k%d", j)
			sel = append(sel, k+" AS "+alias)
			keys = append(keys, alias)
		}
		q := fmt.Sprintf("SELECT ROW(%s)::text, string_agg(ROW(%s)::text, ' and ' ORDER BY %s) FROM (SELECT %s FROM %s) s WHERE %s GROUP BY %s HAVING count(*) > 1 LIMIT 1",
			strings.Join(out, ", "), strings.Join(keys, ", "), strings.Join(keys, ", "), strings.Join(sel, ", "), tbl, strings.Join(notNull, " AND "), strings.Join(out, ", "))
		var value, rowsAt string
		err := inTx(func(tx pgx.Tx) error { return tx.QueryRow(ctx, q).Scan(&value, &rowsAt) })
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("check the down of operation %d on %s against its unique index on (%s): %w", bf.Ops[0], tbl, pg.Idents(idx), err)
		default:
			return fail(rowsAt, fmt.Errorf("rows %s would both have (%s) = %s, and a unique index forbids it", rowsAt, pg.Idents(idx), value))
		}
	}
	return nil
}

// failingRow finds, one row at a time and in key order, the first row the
// down's expressions fail on, and returns its key ("" if none fails now).
// It runs only after the one-scan check failed, to name the row.
func (e *Engine) failingRow(ctx context.Context, inTx func(func(pgx.Tx) error) error, tbl string, cols []string, scope string, exprs []string) string {
	const tag = "$online_down_check$"
	var match []string
	for _, c := range cols {
		match = append(match, "online_row."+c)
	}
	body := fmt.Sprintf(`DECLARE online_row record;
BEGIN
	FOR online_row IN SELECT %[1]s FROM %[2]s WHERE %[3]s ORDER BY %[1]s LOOP
		PERFORM length(ROW(%[4]s)::text) FROM %[2]s WHERE (%[1]s) = (%[5]s);
	END LOOP;
EXCEPTION WHEN OTHERS THEN
	RAISE EXCEPTION USING MESSAGE = 'online_row ' || ROW(%[5]s)::text;
END`, strings.Join(cols, ", "), tbl, scope, strings.Join(exprs, ", "), strings.Join(match, ", "))
	if strings.Contains(body, tag) {
		return "(not found: the expressions contain " + tag + ")"
	}
	err := inTx(func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DO "+tag+body+tag)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Message, "online_row ") {
		return strings.TrimPrefix(pgErr.Message, "online_row ")
	}
	return "(unknown: the rows check one by one without error now)"
}
