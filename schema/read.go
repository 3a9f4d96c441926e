package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Querier is what Read needs of a connection or transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Read loads the tables of schema name from the catalog. Partitions are left
// out (their parent stands for them); so are views, which online does not
// migrate. A schema that does not exist reads as empty.
func Read(ctx context.Context, q Querier, name string) (*Schema, error) {
	s := &Schema{Name: name, Tables: map[string]*Table{}, Indexes: map[string]string{}, Enums: map[string][]string{},
		EnumUses: map[string][]TypeUse{}, Types: map[string]string{}}
	if err := q.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&s.ServerVersion); err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	byOID := map[uint32]*Table{}
	s.Relations = map[string]bool{}
	rels, err := q.Query(ctx, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1", name)
	if err != nil {
		return nil, fmt.Errorf("read relations of schema %q: %w", name, err)
	}
	for rels.Next() {
		var rel string
		if err := rels.Scan(&rel); err != nil {
			rels.Close()
			return nil, fmt.Errorf("read relations of schema %q: %w", name, err)
		}
		s.Relations[rel] = true
	}
	if err := rels.Err(); err != nil {
		return nil, fmt.Errorf("read relations of schema %q: %w", name, err)
	}

	rows, err := q.Query(ctx, `
SELECT c.oid, c.relname, c.relkind = 'p', obj_description(c.oid, 'pg_class'), c.relreplident::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname`, name)
	if err != nil {
		return nil, fmt.Errorf("read tables of schema %q: %w", name, err)
	}
	for rows.Next() {
		t := &Table{Indexes: map[string]*Index{}, Constraints: map[string]*Constraint{}}
		if err := rows.Scan(&t.OID, &t.Name, &t.Partitioned, &t.Comment, &t.ReplicaIdentity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read tables of schema %q: %w", name, err)
		}
		t.Physical = t.Name
		s.Tables[t.Name] = t
		byOID[t.OID] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tables of schema %q: %w", name, err)
	}

	rows, err = q.Query(ctx, `
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated <> '', col_description(a.attrelid, a.attnum),
       coalesce((SELECT co.collname::text FROM pg_collation co WHERE co.oid = a.attcollation AND a.attcollation <> t.typcollation), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum`, name)
	if err != nil {
		return nil, fmt.Errorf("read columns of schema %q: %w", name, err)
	}
	for rows.Next() {
		var oid uint32
		col := &Column{}
		var def *string
		if err := rows.Scan(&oid, &col.Name, &col.Type, &col.Nullable, &def, &col.Identity, &col.Generated, &col.Comment, &col.Collation); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read columns of schema %q: %w", name, err)
		}
		col.Physical = col.Name
		if !col.Generated {
			col.Default = def
		} else if def != nil {
			col.GeneratedExpr = *def
		}
		if t := byOID[oid]; t != nil {
			t.Columns = append(t.Columns, col)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of schema %q: %w", name, err)
	}

	rows, err = q.Query(ctx, `
SELECT i.indrelid, ic.relname, i.indisunique, i.indisprimary, i.indisvalid, pg_get_indexdef(i.indexrelid),
       coalesce((SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE k.ord <= i.indnkeyatts), '{}'),
       0 = ANY (i.indkey::int2[]) OR i.indexprs IS NOT NULL,
       coalesce((SELECT conname FROM pg_constraint WHERE conindid = i.indexrelid AND contype IN ('p', 'u', 'x') LIMIT 1), ''),
       i.indisreplident, NOT i.indimmediate
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE n.nspname = $1
ORDER BY ic.relname`, name)
	if err != nil {
		return nil, fmt.Errorf("read indexes of schema %q: %w", name, err)
	}
	for rows.Next() {
		var oid uint32
		ix := &Index{}
		var expr bool
		if err := rows.Scan(&oid, &ix.Name, &ix.Unique, &ix.Primary, &ix.Valid, &ix.Definition, &ix.Columns, &expr, &ix.Constraint, &ix.ReplicaIdentity, &ix.Deferrable); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read indexes of schema %q: %w", name, err)
		}
		if expr {
			ix.Columns = nil
		}
		t := byOID[oid]
		if t == nil {
			s.Indexes[ix.Name] = "" // an index of a partition or another relation: the name is still taken
			continue
		}
		t.Indexes[ix.Name] = ix
		s.Indexes[ix.Name] = t.Name
		if ix.Primary {
			t.PrimaryKey = ix.Columns
		}
		if ix.Unique && ix.Valid && len(ix.Columns) == 1 && !containsWhere(ix.Definition) {
			if c := t.ColumnByPhysical(ix.Columns[0]); c != nil {
				c.Unique = true
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read indexes of schema %q: %w", name, err)
	}

	rows, err = q.Query(ctx, `
SELECT co.conrelid, co.conname, co.contype::text, pg_get_constraintdef(co.oid), co.convalidated,
       coalesce((SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(co.conkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum), '{}'),
       coalesce(co.confrelid::regclass::text, ''),
       coalesce((SELECT rn.nspname FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = co.confrelid), ''),
       coalesce((SELECT rc.relname FROM pg_class rc WHERE rc.oid = co.confrelid), ''),
       coalesce((SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(co.confkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.attnum), '{}')
FROM pg_constraint co
JOIN pg_namespace n ON n.oid = co.connamespace
WHERE n.nspname = $1 AND co.conrelid <> 0
ORDER BY co.conname`, name)
	if err != nil {
		return nil, fmt.Errorf("read constraints of schema %q: %w", name, err)
	}
	for rows.Next() {
		var oid uint32
		con := &Constraint{}
		if err := rows.Scan(&oid, &con.Name, &con.Type, &con.Definition, &con.Validated, &con.Columns, &con.RefTable, &con.RefSchema, &con.RefTableName, &con.RefColumns); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read constraints of schema %q: %w", name, err)
		}
		if t := byOID[oid]; t != nil {
			t.Constraints[con.Name] = con
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read constraints of schema %q: %w", name, err)
	}

	if err := readPartitions(ctx, q, s, byOID); err != nil {
		return nil, err
	}

	rows, err = q.Query(ctx, `
SELECT t.typname, coalesce(array_agg(e.enumlabel ORDER BY e.enumsortorder) FILTER (WHERE e.enumlabel IS NOT NULL), '{}')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = $1 AND t.typtype = 'e'
GROUP BY t.typname`, name)
	if err != nil {
		return nil, fmt.Errorf("read enums of schema %q: %w", name, err)
	}
	for rows.Next() {
		var n string
		var labels []string
		if err := rows.Scan(&n, &labels); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read enums of schema %q: %w", name, err)
		}
		s.Enums[n] = labels
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read enums of schema %q: %w", name, err)
	}
	if err := readTypes(ctx, q, s); err != nil {
		return nil, err
	}
	if err := readForeignReferrers(ctx, q, s); err != nil {
		return nil, err
	}
	if err := readMaintained(ctx, q, s); err != nil {
		return nil, err
	}
	if s.PathNames, err = ReadPathNames(ctx, q); err != nil {
		return nil, err
	}
	return s, nil
}

// readPartitions loads the partition key of each partitioned table and its
// partitions, level by level (parents before their partitions). A partition
// being detached concurrently is left out: it is on its way out of the tree.
func readPartitions(ctx context.Context, q Querier, s *Schema, byOID map[uint32]*Table) error {
	rows, err := q.Query(ctx, `
WITH RECURSIVE tree AS (
  SELECT c.oid, 0::oid AS parent, 0 AS depth
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relkind = 'p' AND NOT c.relispartition
  UNION ALL
  SELECT i.inhrelid, i.inhparent, tree.depth + 1
  FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid
  WHERE NOT i.inhdetachpending
)
SELECT tree.oid, tree.parent, n.nspname, c.relname, c.relkind::text,
       coalesce((SELECT array_agg(a.attname ORDER BY k.ord)
                 FROM pg_partitioned_table pt CROSS JOIN LATERAL unnest(pt.partattrs::int2[]) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum
                 WHERE pt.partrelid = tree.oid), '{}'),
       coalesce((SELECT 0 = ANY (pt.partattrs::int2[]) FROM pg_partitioned_table pt WHERE pt.partrelid = tree.oid), false)
FROM tree JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY tree.depth, c.relname`, s.Name)
	if err != nil {
		return fmt.Errorf("read partitions of schema %q: %w", s.Name, err)
	}
	defer rows.Close()
	parts := map[uint32]*Partition{}
	for rows.Next() {
		var oid, parent uint32
		p := &Partition{}
		if err := rows.Scan(&oid, &parent, &p.Schema, &p.Name, &p.Kind, &p.Key, &p.KeyExpr); err != nil {
			return fmt.Errorf("read partitions of schema %q: %w", s.Name, err)
		}
		if parent == 0 {
			if t := byOID[oid]; t != nil {
				t.PartitionKey, t.PartitionKeyExpr = p.Key, p.KeyExpr
			}
			continue
		}
		parts[oid] = p
		if t := byOID[parent]; t != nil {
			t.Partitions = append(t.Partitions, p)
		} else if pp := parts[parent]; pp != nil {
			pp.Partitions = append(pp.Partitions, p)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read partitions of schema %q: %w", s.Name, err)
	}
	return nil
}

// readTypes loads the type names of the schema and what depends on each
// enum, so that create_enum and drop_enum are checked before any DDL.
func readTypes(ctx context.Context, q Querier, s *Schema) error {
	// An array type is left out: CREATE TYPE renames an automatic array
	// type that is in its way instead of failing.
	rows, err := q.Query(ctx, `
SELECT t.typname, t.typtype::text
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)`, s.Name)
	if err != nil {
		return fmt.Errorf("read types of schema %q: %w", s.Name, err)
	}
	for rows.Next() {
		var n, kind string
		if err := rows.Scan(&n, &kind); err != nil {
			rows.Close()
			return fmt.Errorf("read types of schema %q: %w", s.Name, err)
		}
		s.Types[n] = kind
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read types of schema %q: %w", s.Name, err)
	}

	// Each dependent object is traced to the relation it belongs to: a
	// column (objsubid), a default (pg_attrdef), a constraint, an index
	// (whose table counts), a view's column. Partitions stand for their
	// root, which the model holds.
	rows, err = q.Query(ctx, `
WITH deps AS (
  SELECT ty.typname, d.classid, d.objid, d.objsubid,
         CASE d.classid
           WHEN 'pg_class'::regclass THEN coalesce(ix.indrelid, d.objid)
           WHEN 'pg_attrdef'::regclass THEN ad.adrelid
           WHEN 'pg_constraint'::regclass THEN nullif(co.conrelid, 0)
         END AS relid,
         CASE d.classid
           WHEN 'pg_class'::regclass THEN CASE WHEN ix.indexrelid IS NULL THEN d.objsubid ELSE 0 END
           WHEN 'pg_attrdef'::regclass THEN ad.adnum
           ELSE 0
         END AS attnum,
         coalesce(co.conname, '') AS conname,
         coalesce(ic.relname, '') AS indexname
  FROM pg_type ty
  JOIN pg_namespace tn ON tn.oid = ty.typnamespace
  JOIN pg_depend d ON d.refclassid = 'pg_type'::regclass AND d.refobjid IN (ty.oid, ty.typarray) AND d.deptype = 'n'
  LEFT JOIN pg_index ix ON d.classid = 'pg_class'::regclass AND ix.indexrelid = d.objid
  LEFT JOIN pg_class ic ON ic.oid = ix.indexrelid
  LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
  LEFT JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid
  WHERE tn.nspname = $1 AND ty.typtype = 'e'
)
SELECT deps.typname, coalesce(rn.nspname, ''), coalesce(r.relname, ''),
       coalesce(r.relkind IN ('r', 'p') AND rn.nspname = $1, false),
       coalesce(a.attname, ''), deps.conname, deps.indexname,
       pg_describe_object(deps.classid, deps.objid, deps.objsubid)
FROM deps
LEFT JOIN pg_class orig ON orig.oid = deps.relid
LEFT JOIN pg_attribute a ON a.attrelid = deps.relid AND a.attnum = deps.attnum AND deps.attnum > 0
LEFT JOIN pg_class r ON r.oid = CASE WHEN orig.relispartition THEN pg_partition_root(orig.oid) ELSE orig.oid END
LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
ORDER BY 1, 8`, s.Name)
	if err != nil {
		return fmt.Errorf("read what uses the enums of schema %q: %w", s.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var enum string
		var u TypeUse
		if err := rows.Scan(&enum, &u.Schema, &u.Relation, &u.Table, &u.Column, &u.Constraint, &u.Index, &u.Object); err != nil {
			return fmt.Errorf("read what uses the enums of schema %q: %w", s.Name, err)
		}
		s.EnumUses[enum] = append(s.EnumUses[enum], u)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read what uses the enums of schema %q: %w", s.Name, err)
	}
	return nil
}

func containsWhere(def string) bool {
	for i := 0; i+7 <= len(def); i++ {
		if def[i:i+7] == " WHERE " {
			return true
		}
	}
	return false
}
