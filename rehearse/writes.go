package rehearse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/pg"
)

// skippable are the errors of a generic write that say the made-up row does
// not fit the data (a copy of an existing row hits a unique key), not that
// the migration is wrong.
var skippable = map[string]bool{
	"23505": true, // unique_violation
	"23503": true, // foreign_key_violation
	"23502": true, // not_null_violation
	"23514": true, // check_violation
	"23P01": true, // exclusion_violation
	"428C9": true, // generated_always: a value for an identity or generated column
}

type relColumn struct {
	name       string
	hasDefault bool
	// always is an identity ALWAYS or a generated column, which an
	// UPDATE cannot set.
	always bool
}

// writes inserts and updates a few rows of every table of a version, through
// that version's search_path, as its application would: an insert copies an
// existing row (columns with a default take it), an update sets every column
// to itself. Each statement is its own transaction, so that the rows stay
// for complete or rollback to handle.
func (r *runner) writes(ctx context.Context, url, version string) ([]Write, error) {
	conn, err := pg.Connect(ctx, url, pg.Options{ApplicationName: "online-rehearse-writes", SearchPath: version})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, conn)
	rels, err := relations(ctx, conn, version, r.opts.Schema)
	if err != nil {
		return nil, err
	}
	out := []Write{}
	for _, rel := range slices.Sorted(maps.Keys(rels)) {
		cols := rels[rel]
		var insertCols, all []string
		for _, c := range cols {
			if !c.always {
				all = append(all, pg.Ident(c.name))
			}
			if !c.hasDefault {
				insertCols = append(insertCols, pg.Ident(c.name))
			}
		}
		if len(all) == 0 {
			continue
		}
		var stmts []Write
		ins := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s LIMIT %d", pg.Ident(rel), strings.Join(insertCols, ", "), strings.Join(insertCols, ", "), pg.Ident(rel), r.opts.Writes)
		if len(insertCols) == 0 {
			ins = fmt.Sprintf("INSERT INTO %s DEFAULT VALUES", pg.Ident(rel))
		}
		set := make([]string, len(all))
		for i, c := range all {
			set[i] = c + " = " + c
		}
		upd := fmt.Sprintf("UPDATE %s SET %s WHERE %s IN (SELECT %s FROM %s LIMIT %d)", pg.Ident(rel), strings.Join(set, ", "), all[0], all[0], pg.Ident(rel), r.opts.Writes)
		for _, s := range []struct{ kind, sql string }{{"insert", ins}, {"update", upd}} {
			w := Write{Version: version, Table: rel, Kind: s.kind, Result: "ok"}
			tag, err := conn.Exec(ctx, s.sql)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var pgErr *pgconn.PgError
			switch {
			case err == nil:
				w.Rows = tag.RowsAffected()
				if w.Rows == 0 {
					w.Result = "skipped"
					w.Err = "no row to copy"
				}
			case errors.As(err, &pgErr) && skippable[pgErr.Code]:
				w.Result, w.Err = "skipped", pgErr.Message
			default:
				w.Result, w.Err = "failed", pg.Explain(pg.WithSQL(err, s.sql))
			}
			stmts = append(stmts, w)
		}
		out = append(out, stmts...)
	}
	return out, nil
}

// relations lists the tables (for the schema itself) or views (for a
// version schema) of a version with their columns, online's hidden columns
// left out: no application names them.
func relations(ctx context.Context, conn *pgx.Conn, schemaName, migrated string) (map[string][]relColumn, error) {
	rows, err := conn.Query(ctx, `
SELECT c.relname, a.attname,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' OR coalesce(b.atthasdef OR b.attidentity <> '' OR b.attgenerated <> '', false),
       a.attidentity = 'a' OR a.attgenerated <> '' OR coalesce(b.attidentity = 'a' OR b.attgenerated <> '', false)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN LATERAL (
  -- A view of a version schema: the table column of the same name says
  -- whether it has a default or is an identity (renamed ones are missed).
  SELECT ba.* FROM pg_class bc JOIN pg_namespace bn ON bn.oid = bc.relnamespace
  JOIN pg_attribute ba ON ba.attrelid = bc.oid AND ba.attname = a.attname AND NOT ba.attisdropped
  WHERE c.relkind = 'v' AND bn.nspname = $2 AND bc.relname = c.relname AND bc.relkind IN ('r', 'p')
) b ON true
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition AND a.attname NOT LIKE '\_online\_%'
ORDER BY c.relname, a.attnum`, schemaName, migrated)
	if err != nil {
		return nil, fmt.Errorf("list the relations of version %s: %w", schemaName, err)
	}
	out := map[string][]relColumn{}
	var rel string
	var c relColumn
	_, err = pgx.ForEachRow(rows, []any{&rel, &c.name, &c.hasDefault, &c.always}, func() error {
		out[rel] = append(out[rel], c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the relations of version %s: %w", schemaName, err)
	}
	return out, nil
}

func sortedKeys(a, b map[string]int64) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return slices.Sorted(maps.Keys(m))
}
