package diff

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Catalog is what a set of schemas holds, as PostgreSQL itself prints it: a
// key per object ("column public.users.email") and its normalised
// definition. Two databases hold the same schema when their catalogs are
// equal. Column order, OIDs, owners, grants, statistics and the values of
// sequences are left out: a migration cannot be asked to reproduce them.
type Catalog map[string]string

// catalogQueries read the objects of the schemas $1, with search_path empty
// so that every name the definitions print is schema-qualified and prints
// the same in any database. Each returns a key and a definition. online's
// own objects (named _online_...) are left out: they are gone once a
// migration is complete, and one that is not must not compare equal.
var catalogQueries = []struct{ what, sql string }{
	{"schemas", `SELECT 'schema ' || quote_ident(nspname), '' FROM pg_namespace WHERE nspname = ANY($1)`},
	{"relations", `
SELECT CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' ELSE 'foreign table ' END
         || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       concat_ws(' ', 'kind=' || c.relkind::text, 'persistence=' || c.relpersistence::text,
         'options=' || coalesce(array_to_string(c.reloptions, ','), ''),
         'rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity, 'replica_identity=' || c.relreplident::text,
         'partition_of=' || (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition),
         'bound=' || pg_get_expr(c.relpartbound, c.oid),
         'partition_key=' || CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
         'comment=' || quote_literal(obj_description(c.oid, 'pg_class')),
         'query=' || CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname NOT LIKE '\_online\_%'`},
	{"columns", `
SELECT 'column ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname),
       concat_ws(' ', format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END,
         'default=' || CASE WHEN a.attgenerated::text = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
         'generated=' || CASE WHEN a.attgenerated::text <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
         'identity=' || NULLIF(a.attidentity::text, ''),
         'collation=' || CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,
         'comment=' || quote_literal(col_description(c.oid, a.attnum)))
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relname NOT LIKE '\_online\_%' AND a.attname NOT LIKE '\_online\_%'`},
	{"constraints", `
SELECT 'constraint ' || quote_ident(n.nspname) || '.' || coalesce(quote_ident(c.relname), quote_ident(ty.typname)) || '.' || quote_ident(k.conname),
       k.contype::text || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type ty ON ty.oid = k.contypid
WHERE n.nspname = ANY($1) AND k.conname NOT LIKE '\_online\_%' AND coalesce(c.relname, '') NOT LIKE '\_online\_%'`},
	// PostgreSQL names the index a partitioned index makes on each
	// partition: such an index is keyed by its parent and partition, its
	// own name left out.
	{"indexes", `
SELECT CASE WHEN c.relispartition
         THEN 'index on partition ' || tc.oid::regclass::text || ' of ' || (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid)
         ELSE 'index ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) END,
       CASE WHEN c.relispartition THEN regexp_replace(pg_get_indexdef(c.oid), '^CREATE (UNIQUE )?INDEX \S+ ON', 'CREATE \1INDEX ON')
         ELSE pg_get_indexdef(c.oid) END
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class tc ON tc.oid = i.indrelid
WHERE n.nspname = ANY($1) AND c.relname NOT LIKE '\_online\_%' AND tc.relname NOT LIKE '\_online\_%'`},
	{"sequences", `
SELECT 'sequence ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       concat_ws(' ', format_type(s.seqtypid, NULL), 'start=' || s.seqstart, 'increment=' || s.seqincrement,
         'min=' || s.seqmin, 'max=' || s.seqmax, 'cache=' || s.seqcache, 'cycle=' || s.seqcycle,
         'owned_by=' || (SELECT d.refobjid::regclass::text || '.' || quote_ident(a.attname) || CASE d.deptype WHEN 'i' THEN ' (identity)' ELSE '' END
                         FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                           AND d.deptype IN ('a', 'i') LIMIT 1))
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1) AND c.relname NOT LIKE '\_online\_%'`},
	{"types", `
SELECT CASE t.typtype WHEN 'e' THEN 'enum ' WHEN 'd' THEN 'domain ' WHEN 'r' THEN 'range ' ELSE 'type ' END
         || quote_ident(n.nspname) || '.' || quote_ident(t.typname),
       CASE t.typtype
         WHEN 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
         WHEN 'd' THEN concat_ws(' ', format_type(t.typbasetype, t.typtypmod), CASE WHEN t.typnotnull THEN 'NOT NULL' END, 'default=' || t.typdefault)
         WHEN 'c' THEN (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
         ELSE t.typtype::text END
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY($1) AND t.typtype IN ('e', 'd', 'r', 'c') AND t.typname NOT LIKE '\_online\_%'
  AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')`},
	{"functions", `
SELECT 'function ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       md5(pg_get_functiondef(p.oid))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY($1) AND p.prokind IN ('f', 'p') AND p.proname NOT LIKE '\_online\_%'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`},
	{"triggers", `
SELECT 'trigger ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(g.tgname), pg_get_triggerdef(g.oid)
FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1) AND NOT g.tgisinternal AND g.tgname NOT LIKE '\_online\_%'`},
	{"policies", `
SELECT 'policy ' || quote_ident(schemaname) || '.' || quote_ident(tablename) || '.' || quote_ident(policyname),
       concat_ws(' ', permissive, cmd, 'roles=' || array_to_string(roles, ','), 'using=' || qual, 'check=' || with_check)
FROM pg_policies WHERE schemaname = ANY($1)`},
}

// ReadCatalog reads the catalog of the schemas, in a read-only transaction
// of conn.
func ReadCatalog(ctx context.Context, conn *pgx.Conn, schemas []string) (Catalog, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin catalog read: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = ''"); err != nil {
		return nil, fmt.Errorf("catalog read: %w", err)
	}
	cat := Catalog{}
	for _, q := range catalogQueries {
		rows, err := tx.Query(ctx, q.sql, schemas)
		if err != nil {
			return nil, fmt.Errorf("read the %s of schemas %v: %w", q.what, schemas, err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the %s of schemas %v: %w", q.what, schemas, err)
			}
			cat[k] = v
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the %s of schemas %v: %w", q.what, schemas, err)
		}
	}
	return cat, nil
}

// Differences lists, sorted, every object whose definition in got is not
// the one in want, each as one line that says what is missing, extra or
// different.
func (got Catalog) Differences(want Catalog) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s is missing (desired: %s)", k, orNothing(want[k])))
		case g != want[k]:
			out = append(out, fmt.Sprintf("%s differs: %s (desired: %s)", k, orNothing(g), orNothing(want[k])))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s is not in the desired schema", k))
		}
	}
	return out
}

func orNothing(s string) string {
	if strings.TrimSpace(s) == "" {
		return "exists"
	}
	return s
}

// UserSchemas lists the schemas of a database that are a user's: not
// PostgreSQL's own, not online's state schema, not a version schema of
// online (a schema named after the managed one that holds views only), and
// not an extension's.
func UserSchemas(ctx context.Context, conn *pgx.Conn, managed, stateSchema string) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT n.nspname FROM pg_namespace n
WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' AND n.nspname <> $2
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
  AND NOT (starts_with(n.nspname, $1 || '_')
           AND NOT EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind <> 'v')
           AND NOT EXISTS (SELECT FROM pg_type t WHERE t.typnamespace = n.oid AND t.typrelid = 0 AND t.typelem = 0))
ORDER BY 1`, managed, stateSchema)
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
