package diff

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Objects are what the managed schema holds beyond tables, indexes,
// constraints and enums: the objects diff expresses as "sql" operations
// with their down (views, sequences, functions, triggers, policies...).
// Every definition is read with search_path empty, so the SQL built from
// it names every object with its schema.
type Objects struct {
	Views     map[string]*View     // by name
	Sequences map[string]*Sequence // by name
	// Functions maps a function's signature ("public.f(integer)") to its
	// CREATE OR REPLACE statement.
	Functions map[string]string
	// Triggers and Policies map "table.name" to the statement that
	// creates them; Drops, the same keys to the statement that drops them.
	Triggers, Policies map[string]string
	Drops              map[string]string
	// RLS maps a table to its row level security flags: "", "enabled" or
	// "enabled forced".
	RLS map[string]string
	// Collations maps "table.column" to a column's collation when it is
	// not its type's ("pg_catalog.\"C\"").
	Collations map[string]string
	// Partitions maps a partition (any level) of the schema to the
	// statement that attaches it as a new table.
	Partitions map[string]string
	// OtherIndexes are the indexes of relations that are not tables diff
	// compares (partitions, materialized views), by name.
	OtherIndexes map[string]OtherIndex
	// Domains maps a domain to the statements that create it.
	Domains map[string]string
	// Deps lists, for each view ("view v") and policy ("policy t.p") of
	// the schema, the tables ("t") and columns ("t.c") of the schema it
	// depends on (online's version schemas' views are left out).
	Deps map[string][]string
	// SchemaDDL holds, for each user schema other than the managed one,
	// its pg_dump --schema-only text (desired side only).
	SchemaDDL map[string]string
}

// OtherIndex is an index of a partition or materialized view.
type OtherIndex struct {
	Table, Definition string
}

// View is a view or materialized view.
type View struct {
	Name         string
	Materialized bool
	Definition   string // the SELECT, as pg_get_viewdef prints it
	Options      string // reloptions, comma-separated
	Comment      *string
	Order        uint32 // the OID: creation order, for dependencies
}

// Sequence is a sequence of the schema.
type Sequence struct {
	Name                              string
	Type                              string
	Start, Increment, Min, Max, Cache int64
	Cycle                             bool
	// OwnedBy is "table.column" (quoted, schema-qualified table) for an
	// owned sequence; Identity is set for an identity column's.
	OwnedBy  string
	Identity bool
	// Table and Column name the owning column, unqualified.
	Table, Column string
}

func (s *Sequence) options() string {
	cycle := "NO CYCLE"
	if s.Cycle {
		cycle = "CYCLE"
	}
	return fmt.Sprintf("AS %s INCREMENT BY %d MINVALUE %d MAXVALUE %d START WITH %d CACHE %d %s", s.Type, s.Increment, s.Min, s.Max, s.Start, s.Cache, cycle)
}

func (s *Sequence) sameParams(o *Sequence) bool {
	return s.Type == o.Type && s.Start == o.Start && s.Increment == o.Increment && s.Min == o.Min && s.Max == o.Max && s.Cache == o.Cache && s.Cycle == o.Cycle
}

// readObjects reads the Objects of schema name.
func readObjects(ctx context.Context, conn *pgx.Conn, name string) (*Objects, error) {
	o := &Objects{Views: map[string]*View{}, Sequences: map[string]*Sequence{}, Functions: map[string]string{},
		Triggers: map[string]string{}, Policies: map[string]string{}, Drops: map[string]string{}, RLS: map[string]string{},
		Collations: map[string]string{}, Partitions: map[string]string{}, OtherIndexes: map[string]OtherIndex{}, Deps: map[string][]string{}, Domains: map[string]string{}, SchemaDDL: map[string]string{}}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin read of schema %s: %w", name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = ''"); err != nil {
		return nil, err
	}
	each := func(what, sql string, scan func(rows pgx.Rows) error) error {
		rows, err := tx.Query(ctx, sql, name)
		if err != nil {
			return fmt.Errorf("read the %s of schema %s: %w", what, name, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("read the %s of schema %s: %w", what, name, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read the %s of schema %s: %w", what, name, err)
		}
		return nil
	}
	err = each("views", `
SELECT c.relname, c.relkind = 'm', pg_get_viewdef(c.oid), coalesce(array_to_string(c.reloptions, ', '), ''), obj_description(c.oid, 'pg_class'), c.oid
FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND c.relkind IN ('v', 'm')`, func(r pgx.Rows) error {
		v := &View{}
		if err := r.Scan(&v.Name, &v.Materialized, &v.Definition, &v.Options, &v.Comment, &v.Order); err != nil {
			return err
		}
		v.Definition = strings.TrimSuffix(strings.TrimSpace(v.Definition), ";")
		o.Views[v.Name] = v
		return nil
	})
	if err == nil {
		err = each("sequences", `
SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       coalesce(d.refobjid::regclass::text || '.' || quote_ident(a.attname), ''), coalesce(d.deptype = 'i', false),
       coalesce(t.relname, ''), coalesce(a.attname, '')
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
LEFT JOIN pg_class t ON t.oid = d.refobjid
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)`, func(r pgx.Rows) error {
			s := &Sequence{}
			if err := r.Scan(&s.Name, &s.Type, &s.Start, &s.Increment, &s.Min, &s.Max, &s.Cache, &s.Cycle, &s.OwnedBy, &s.Identity, &s.Table, &s.Column); err != nil {
				return err
			}
			o.Sequences[s.Name] = s
			return nil
		})
	}
	if err == nil {
		err = each("functions", `
SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND p.prokind IN ('f', 'p') AND p.proname NOT LIKE '\_online\_%'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`, func(r pgx.Rows) error {
			var sig, def string
			if err := r.Scan(&sig, &def); err != nil {
				return err
			}
			o.Functions[sig] = def
			return nil
		})
	}
	if err == nil {
		err = each("triggers", `
SELECT c.relname || '.' || g.tgname, pg_get_triggerdef(g.oid), format('DROP TRIGGER %I ON %s', g.tgname, c.oid::regclass)
FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND NOT g.tgisinternal AND g.tgname NOT LIKE '\_online\_%'`, func(r pgx.Rows) error {
			var k, def, drop string
			if err := r.Scan(&k, &def, &drop); err != nil {
				return err
			}
			o.Triggers[k], o.Drops["trigger "+k] = def, drop
			return nil
		})
	}
	if err == nil {
		err = each("policies", `
SELECT tablename || '.' || policyname,
       format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s', policyname, schemaname, tablename, permissive, cmd,
              (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(roles) r))
         || coalesce(' USING (' || qual || ')', '') || coalesce(' WITH CHECK (' || with_check || ')', ''),
       format('DROP POLICY %I ON %I.%I', policyname, schemaname, tablename)
FROM pg_policies WHERE schemaname = $1`, func(r pgx.Rows) error {
			var k, def, drop string
			if err := r.Scan(&k, &def, &drop); err != nil {
				return err
			}
			o.Policies[k], o.Drops["policy "+k] = def, drop
			return nil
		})
	}
	if err == nil {
		err = each("row level security", `
SELECT relname, concat_ws(' ', CASE WHEN relrowsecurity THEN 'enabled' END, CASE WHEN relforcerowsecurity THEN 'forced' END)
FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND relkind IN ('r', 'p')`, func(r pgx.Rows) error {
			var t, f string
			if err := r.Scan(&t, &f); err != nil {
				return err
			}
			o.RLS[t] = f
			return nil
		})
	}
	if err == nil {
		err = each("collations", `
SELECT c.relname || '.' || a.attname, a.attcollation::regcollation::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attcollation <> t.typcollation`, func(r pgx.Rows) error {
			var k, coll string
			if err := r.Scan(&k, &coll); err != nil {
				return err
			}
			o.Collations[k] = coll
			return nil
		})
	}
	if err == nil {
		err = each("partitions", `
SELECT c.relname, format('CREATE TABLE %s PARTITION OF %s %s', c.oid::regclass, i.inhparent::regclass, pg_get_expr(c.relpartbound, c.oid))
  || CASE WHEN c.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(c.oid) ELSE '' END
FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND c.relispartition AND c.relkind IN ('r', 'p')`, func(r pgx.Rows) error {
			var k, def string
			if err := r.Scan(&k, &def); err != nil {
				return err
			}
			o.Partitions[k] = def
			return nil
		})
	}
	if err == nil {
		// The indexes of a partition that a parent's index created come
		// with it (they are attached); only a partition's own count.
		err = each("indexes of partitions and materialized views", `
SELECT ic.relname, tc.relname, pg_get_indexdef(ic.oid)
FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid JOIN pg_class tc ON tc.oid = x.indrelid
WHERE ic.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND (tc.relispartition OR tc.relkind = 'm')
  AND NOT ic.relispartition
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = ic.oid AND k.conrelid = tc.oid)`, func(r pgx.Rows) error {
			var k, t, def string
			if err := r.Scan(&k, &t, &def); err != nil {
				return err
			}
			o.OtherIndexes[k] = OtherIndex{Table: t, Definition: def}
			return nil
		})
	}
	if err == nil {
		err = each("domains", `
SELECT t.typname,
       format('CREATE DOMAIN %s AS %s', t.oid::regtype, format_type(t.typbasetype, t.typtypmod))
         || CASE WHEN t.typcollation <> b.typcollation THEN ' COLLATE ' || t.typcollation::regcollation::text ELSE '' END
         || coalesce(' DEFAULT ' || t.typdefault, '') || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
         || coalesce((SELECT string_agg(format(';' || chr(10) || 'ALTER DOMAIN %s ADD CONSTRAINT %I %s', t.oid::regtype, k.conname, pg_get_constraintdef(k.oid)), '' ORDER BY k.conname)
                      FROM pg_constraint k WHERE k.contypid = t.oid), '')
FROM pg_type t JOIN pg_type b ON b.oid = t.typbasetype
WHERE t.typnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND t.typtype = 'd'`, func(r pgx.Rows) error {
			var n, def string
			if err := r.Scan(&n, &def); err != nil {
				return err
			}
			o.Domains[n] = def
			return nil
		})
	}
	if err == nil {
		err = each("dependencies of views and policies", `
SELECT DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass THEN 'view ' || v.relname ELSE 'policy ' || pt.relname || '.' || p.polname END,
       t.relname || coalesce('.' || a.attname, '')
FROM pg_depend d
JOIN pg_class t ON t.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_class v ON v.oid = r.ev_class
LEFT JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND p.oid = d.objid
LEFT JOIN pg_class pt ON pt.oid = p.polrelid
WHERE t.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)
  AND (v.oid IS NOT NULL AND v.oid <> t.oid AND v.relnamespace = t.relnamespace OR p.oid IS NOT NULL)`, func(r pgx.Rows) error {
			var k, on string
			if err := r.Scan(&k, &on); err != nil {
				return err
			}
			o.Deps[k] = append(o.Deps[k], on)
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}
