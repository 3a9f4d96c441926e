package schema

import (
	"context"
	"fmt"
)

// referrersSQL lists the foreign keys of tables in other schemas that
// reference a column of a table in schema $1.
const referrersSQL = `
SELECT DISTINCT rt.relname, a.attname, fn.nspname, ft.relname, con.conname
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class rt ON rt.oid = con.confrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = rt.relnamespace
JOIN pg_catalog.pg_class ft ON ft.oid = con.conrelid
JOIN pg_catalog.pg_namespace fn ON fn.oid = ft.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = rt.oid AND a.attnum = ANY (con.confkey)
WHERE con.contype = 'f' AND rn.nspname = $1 AND fn.nspname <> $1
ORDER BY 1, 2, 3, 4, 5`

// readForeignReferrers fills Table.ForeignReferrers.
func readForeignReferrers(ctx context.Context, q Querier, s *Schema) error {
	rows, err := q.Query(ctx, referrersSQL, s.Name)
	if err != nil {
		return fmt.Errorf("read foreign keys from other schemas into %q: %w", s.Name, err)
	}
	defer rows.Close()
	byPhysical := map[string]*Table{}
	for _, t := range s.Tables {
		byPhysical[t.Physical] = t
	}
	for rows.Next() {
		var table, column, fschema, ftable, con string
		if err := rows.Scan(&table, &column, &fschema, &ftable, &con); err != nil {
			return fmt.Errorf("read foreign keys from other schemas into %q: %w", s.Name, err)
		}
		if t := byPhysical[table]; t != nil {
			if t.ForeignReferrers == nil {
				t.ForeignReferrers = map[string][]string{}
			}
			t.ForeignReferrers[column] = append(t.ForeignReferrers[column], fmt.Sprintf("%s of table %s.%s", con, fschema, ftable))
		}
	}
	return rows.Err()
}
