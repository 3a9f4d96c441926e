package schema

import (
	"context"
	"fmt"
)

// MaintainedTriggerPrefix starts the name of every trigger that computes a
// generated column online added to a table with rows.
const MaintainedTriggerPrefix = "_online_gen_"

// maintainedSQL lists the columns such triggers name in UPDATE OF: the
// computed column and its inputs. The computed one is the column the
// function assigns ("row"."column" := ...), as online writes it.
const maintainedSQL = `
SELECT c.relname, a.attname, t.tgname,
       pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.proname),
       strpos(p.prosrc, '."' || replace(a.attname, '"', '""') || '" := ') > 0
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (t.tgattr::int2[])
WHERE n.nspname = $1 AND NOT t.tgisinternal AND starts_with(t.tgname, $2)`

func readMaintained(ctx context.Context, q Querier, s *Schema) error {
	rows, err := q.Query(ctx, maintainedSQL, s.Name, MaintainedTriggerPrefix)
	if err != nil {
		return fmt.Errorf("read generated-column triggers of schema %q: %w", s.Name, err)
	}
	defer rows.Close()
	byPhysical := map[string]*Table{}
	for _, t := range s.Tables {
		byPhysical[t.Physical] = t
	}
	for rows.Next() {
		var table, column string
		var m Maintained
		if err := rows.Scan(&table, &column, &m.Trigger, &m.Function, &m.Computed); err != nil {
			return fmt.Errorf("read generated-column triggers of schema %q: %w", s.Name, err)
		}
		if t := byPhysical[table]; t != nil {
			if col := t.ColumnByPhysical(column); col != nil && (col.Maintained == nil || m.Computed) {
				col.Maintained = &m
			}
		}
	}
	return rows.Err()
}
