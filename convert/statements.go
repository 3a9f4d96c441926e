package convert

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlsrc"
)

// alterTable converts ALTER TABLE. Every command is checked before any is
// applied, so a statement is converted whole or kept whole as SQL.
func (p *part) alterTable(c *converter, s *pg_query.AlterTableStmt) error {
	if s.Objtype != pg_query.ObjectType_OBJECT_TABLE {
		return skipf("ALTER %s has no online operation", strings.TrimPrefix(s.Objtype.String(), "OBJECT_"))
	}
	table, err := relName(s.Relation)
	if err != nil {
		return err
	}
	var cmds []*pg_query.AlterTableCmd
	for _, n := range s.Cmds {
		cmd := n.GetAlterTableCmd()
		if err := checkCmd(cmd); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
	}
	// Build each command's operation first: an error in the third must not
	// leave the first two in the part.
	var apply []func()
	for _, cmd := range cmds {
		f, err := p.alterCmd(c, table, cmd)
		if err != nil {
			return err
		}
		apply = append(apply, f)
	}
	for _, f := range apply {
		f()
	}
	return nil
}

func checkCmd(cmd *pg_query.AlterTableCmd) error {
	if cmd.Behavior == pg_query.DropBehavior_DROP_CASCADE {
		return skipf("CASCADE drops dependent objects that online cannot list in advance")
	}
	switch cmd.Subtype {
	case pg_query.AlterTableType_AT_AddColumn, pg_query.AlterTableType_AT_DropColumn,
		pg_query.AlterTableType_AT_AlterColumnType, pg_query.AlterTableType_AT_SetNotNull,
		pg_query.AlterTableType_AT_DropNotNull, pg_query.AlterTableType_AT_ColumnDefault,
		pg_query.AlterTableType_AT_AddConstraint, pg_query.AlterTableType_AT_DropConstraint,
		pg_query.AlterTableType_AT_ReplicaIdentity, pg_query.AlterTableType_AT_ValidateConstraint:
		return nil
	}
	return skipf("ALTER TABLE %s has no online operation", strings.TrimPrefix(cmd.Subtype.String(), "AT_"))
}

func (p *part) alterCmd(c *converter, table string, cmd *pg_query.AlterTableCmd) (func(), error) {
	col := cmd.Name
	switch cmd.Subtype {
	case pg_query.AlterTableType_AT_AddColumn:
		cd := cmd.Def.GetColumnDef()
		column, err := c.column(table, cd)
		if err != nil {
			return nil, err
		}
		if ct := p.tables[table]; ct != nil {
			if column.get("pk") == false {
				column.del("pk")
			}
			return func() { appendList(ct, "columns", column) }, nil
		}
		if column.get("pk") == true {
			return nil, skipf("online adds no primary key column to a table that exists: add the column, then ADD CONSTRAINT ... PRIMARY KEY")
		}
		if g, ok := column.get("generated").(*obj); ok && g.has("identity") {
			return nil, skipf("online adds no identity column to a table that exists (it rewrites the table under an exclusive lock): add a bigint column with a sequence default")
		}
		body := newObj("table", table, "column", column)
		if column.get("nullable") == false && !column.has("default") && !column.has("generated") && !column.get("pk").(bool) {
			body.set("up", placeholder(column.str("type")))
			body.note("up", "%sthe value of %s for the rows that exist: a NOT NULL column without a default needs one", reviewPrefix, cd.Colname)
		}
		column.del("pk")
		return func() { p.add(table, "add_column", body) }, nil
	case pg_query.AlterTableType_AT_DropColumn:
		return func() {
			body := newObj("table", table, "column", col)
			body.note("column", "if %s is NOT NULL without a default, add down: the value old code reads for rows the new version inserts", col)
			p.add(table, "drop_column", body)
		}, nil
	case pg_query.AlterTableType_AT_AlterColumnType:
		cd := cmd.Def.GetColumnDef()
		if cd.CollClause != nil {
			return nil, skipf("a column's COLLATE has no online operation")
		}
		typ, err := sqlsrc.Type(cd.TypeName)
		if err != nil {
			return nil, err
		}
		var using string
		if cd.RawDefault != nil {
			if using, err = sqlsrc.Expr(cd.RawDefault); err != nil {
				return nil, err
			}
		}
		return func() {
			body := p.alter(table, col, using != "", using != "")
			body.set("type", typ)
			switch {
			case using != "":
				body.set("up", using)
				body.note("up", "%sfrom USING: the new value from the old row. down (the old value from a row the new\nversion writes, for old code) defaults to a cast back to the old type: add one if that is not the inverse", reviewPrefix)
			case body.has("up"):
				body.set("up", fmt.Sprintf("CAST(%s AS %s)", body.str("up"), typ))
			default:
				body.set("up", fmt.Sprintf("CAST(%s AS %s)", pg.Ident(body.str("column")), typ))
				body.note("up", "%sa cast, as ALTER TYPE without USING; down defaults to the cast back to the old type", reviewPrefix)
			}
			c.types[table+"."+col] = typ
		}, nil
	case pg_query.AlterTableType_AT_SetNotNull:
		return func() {
			body := p.alter(table, col, true, false)
			body.set("nullable", false)
			typ := body.str("type")
			if typ == "" {
				typ = c.types[table+"."+col]
			}
			src := pg.Ident(body.str("column"))
			if body.has("up") {
				src = body.str("up")
			}
			body.set("up", fmt.Sprintf("coalesce(%s, %s)", src, placeholder(typ)))
			if typ == "" {
				body.note("up", "%sreplace NULL with the value for rows where %s is NULL (the type is not in this file); as written, start fails if any row is NULL", reviewPrefix, col)
			} else {
				body.note("up", "%sthe value for rows where %s is NULL", reviewPrefix, col)
			}
		}, nil
	case pg_query.AlterTableType_AT_DropNotNull:
		return func() { p.alter(table, col, false, false).set("nullable", true) }, nil
	case pg_query.AlterTableType_AT_ColumnDefault:
		if cmd.Def == nil {
			return func() { p.alter(table, col, false, false).set("default", nil) }, nil
		}
		def, err := sqlsrc.Expr(cmd.Def)
		if err != nil {
			return nil, err
		}
		return func() { p.alter(table, col, false, false).set("default", def) }, nil
	case pg_query.AlterTableType_AT_AddConstraint:
		con := cmd.Def.GetConstraint()
		if ct := p.tables[table]; ct != nil {
			tc, err := tableConstraint(table, con)
			if err != nil {
				return nil, err
			}
			return func() { appendList(ct, "constraints", tc) }, nil
		}
		body, err := createConstraint(table, con)
		if err != nil {
			return nil, err
		}
		return func() {
			p.add(table, "create_constraint", body)
			c.added[table+"."+body.str("name")] = true
		}, nil
	case pg_query.AlterTableType_AT_ValidateConstraint:
		if !c.added[table+"."+col] {
			return nil, skipf("VALIDATE CONSTRAINT of a constraint this file did not add: it takes SHARE UPDATE EXCLUSIVE only, run it as SQL")
		}
		return func() {
			c.dropped = append(c.dropped, fmt.Sprintf("VALIDATE CONSTRAINT %s (create_constraint validates it)", col))
		}, nil
	case pg_query.AlterTableType_AT_DropConstraint:
		return func() {
			body := newObj("table", table, "name", col)
			body.note("name", "the constraint's columns are rewritten without it (old code keeps it); up/down default to the columns' values")
			p.add(table, "drop_multicolumn_constraint", body)
		}, nil
	case pg_query.AlterTableType_AT_ReplicaIdentity:
		ri := cmd.Def.GetReplicaIdentityStmt()
		kinds := map[string]string{"n": "nothing", "d": "default", "f": "full", "i": "index"}
		id := newObj("type", kinds[ri.IdentityType])
		if ri.Name != "" {
			id.set("index", ri.Name)
		}
		return func() { p.add(table, "set_replica_identity", newObj("table", table, "identity", id)) }, nil
	}
	return nil, skipf("ALTER TABLE %s has no online operation", cmd.Subtype)
}

func appendList(o *obj, key string, v any) {
	list, _ := o.get(key).([]any)
	o.set(key, append(list, v))
}

// placeholder is a value of the type for rows that must get one: a zero
// that a person reviews. NULL when the type is unknown here, so that start
// fails on a NULL row rather than inventing data.
func placeholder(typ string) string {
	t := strings.ToLower(typ)
	if i := strings.IndexAny(t, "(["); i >= 0 && !strings.HasSuffix(t, "[]") {
		t = t[:i]
	}
	switch {
	case strings.HasSuffix(t, "[]"):
		return "'{}'"
	case t == "":
		return "NULL"
	}
	switch strings.TrimSpace(t) {
	case "int", "integer", "int2", "int4", "int8", "smallint", "bigint", "numeric", "decimal", "real",
		"double precision", "float4", "float8", "serial", "bigserial":
		return "0"
	case "text", "varchar", "character varying", "char", "character", "bpchar", "citext":
		return "''"
	case "bool", "boolean":
		return "false"
	case "timestamptz", "timestamp", "timestamp with time zone", "timestamp without time zone":
		return "now()"
	case "date":
		return "CURRENT_DATE"
	case "json", "jsonb":
		return "'{}'"
	case "uuid":
		return "'00000000-0000-0000-0000-000000000000'"
	}
	return "NULL"
}

func (p *part) rename(s *pg_query.RenameStmt) error {
	switch s.RenameType {
	case pg_query.ObjectType_OBJECT_COLUMN:
		if s.RelationType != pg_query.ObjectType_OBJECT_TABLE {
			return skipf("renaming a column of a %s has no online operation", s.RelationType)
		}
		table, err := relName(s.Relation)
		if err != nil {
			return err
		}
		body := p.alter(table, s.Subname, false, false)
		body.set("name", s.Newname)
		key := table + "\x00" + s.Subname
		p.alters[table+"\x00"+s.Newname] = p.alters[key]
		delete(p.alters, key)
		return nil
	case pg_query.ObjectType_OBJECT_TABLE:
		table, err := relName(s.Relation)
		if err != nil {
			return err
		}
		p.add(s.Newname, "rename_table", newObj("from", table, "to", s.Newname))
		p.lastOp[table] = len(p.ops) - 1
		return nil
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		table, err := relName(s.Relation)
		if err != nil {
			return err
		}
		p.add(table, "rename_constraint", newObj("table", table, "from", s.Subname, "to", s.Newname))
		return nil
	}
	return skipf("renaming a %s has no online operation", strings.ToLower(strings.TrimPrefix(s.RenameType.String(), "OBJECT_")))
}

func (p *part) createIndex(s *pg_query.IndexStmt) error {
	table, err := relName(s.Relation)
	if err != nil {
		return err
	}
	if s.TableSpace != "" {
		return skipf("create_index has no tablespace")
	}
	name := s.Idxname
	var cols []any
	var names []string
	for _, n := range s.IndexParams {
		e := n.GetIndexElem()
		item := newObj()
		if e.Name != "" {
			names = append(names, e.Name)
		} else {
			expr, err := sqlsrc.Expr(e.Expr)
			if err != nil {
				return err
			}
			item.set("expression", expr)
			names = append(names, "expr")
		}
		if len(e.Collation) > 0 {
			item.set("collate", sqlsrc.Names(e.Collation))
		}
		switch e.Ordering {
		case pg_query.SortByDir_SORTBY_ASC:
			item.set("sort", "ASC")
		case pg_query.SortByDir_SORTBY_DESC:
			item.set("sort", "DESC")
		}
		switch e.NullsOrdering {
		case pg_query.SortByNulls_SORTBY_NULLS_FIRST:
			item.set("nulls", "FIRST")
		case pg_query.SortByNulls_SORTBY_NULLS_LAST:
			item.set("nulls", "LAST")
		}
		if len(e.Opclass) > 0 {
			oc := newObj("name", sqlsrc.Names(e.Opclass))
			if len(e.Opclassopts) > 0 {
				params := newObj()
				for _, o := range e.Opclassopts {
					d := o.GetDefElem()
					v, err := defValue(d)
					if err != nil {
						return err
					}
					params.set(d.Defname, v)
				}
				oc.set("params", params)
			}
			item.set("opclass", oc)
		}
		switch {
		case e.Name != "" && len(item.keys) == 0:
			cols = append(cols, e.Name)
		case e.Name != "":
			// The list form's maps take an expression; a lone column
			// as an expression is indexed as that column.
			cols = append(cols, newObj("expression", pg.Ident(e.Name)))
			for _, k := range item.keys {
				cols[len(cols)-1].(*obj).set(k, item.get(k))
			}
		default:
			cols = append(cols, item)
		}
	}
	if name == "" {
		// PostgreSQL's own choice for an unnamed index.
		name = table + "_" + strings.Join(names, "_") + "_idx"
		if s.Unique {
			name = table + "_" + strings.Join(names, "_") + "_key"
		}
	}
	body := newObj("table", table, "name", name, "columns", cols)
	if s.AccessMethod != "" && s.AccessMethod != "btree" {
		body.set("method", s.AccessMethod)
	}
	if s.Unique {
		body.set("unique", true)
	}
	if s.WhereClause != nil {
		pred, err := sqlsrc.Expr(s.WhereClause)
		if err != nil {
			return err
		}
		body.set("predicate", pred)
	}
	if len(s.Options) > 0 {
		sp, err := storageParams(s.Options)
		if err != nil {
			return err
		}
		body.set("storage_parameters", sp)
	}
	if len(s.IndexIncludingParams) > 0 {
		var inc []string
		for _, n := range s.IndexIncludingParams {
			inc = append(inc, n.GetIndexElem().Name)
		}
		body.set("include", inc)
	}
	if s.NullsNotDistinct {
		body.set("nulls_not_distinct", true)
	}
	if !s.Concurrent {
		body.note("name", "built CONCURRENTLY by online (the SQL did not say so)")
	}
	p.add(table, "create_index", body)
	return nil
}

func defValue(d *pg_query.DefElem) (string, error) {
	if d.Arg == nil {
		return "true", nil
	}
	if s := d.Arg.GetString_(); s != nil {
		return s.Sval, nil
	}
	if i := d.Arg.GetInteger(); i != nil {
		return fmt.Sprint(i.Ival), nil
	}
	if f := d.Arg.GetFloat(); f != nil {
		return f.Fval, nil
	}
	if b := d.Arg.GetBoolean(); b != nil {
		return fmt.Sprint(b.Boolval), nil
	}
	if tn := d.Arg.GetTypeName(); tn != nil {
		return sqlsrc.Type(tn)
	}
	return sqlsrc.Expr(d.Arg)
}

func storageParams(opts []*pg_query.Node) (string, error) {
	var parts []string
	for _, o := range opts {
		d := o.GetDefElem()
		v, err := defValue(d)
		if err != nil {
			return "", err
		}
		parts = append(parts, d.Defname+"="+v)
	}
	return strings.Join(parts, ", "), nil
}

func (p *part) drop(s *pg_query.DropStmt) error {
	if s.Behavior == pg_query.DropBehavior_DROP_CASCADE {
		return skipf("CASCADE drops dependent objects that online cannot list in advance")
	}
	type op struct {
		kind, table string
		body        *obj
	}
	var ops []op
	for _, o := range s.Objects {
		switch s.RemoveType {
		case pg_query.ObjectType_OBJECT_INDEX:
			ops = append(ops, op{"drop_index", "", newObj("name", sqlsrc.Last(o.GetList().GetItems()))})
		case pg_query.ObjectType_OBJECT_TABLE:
			name := sqlsrc.Last(o.GetList().GetItems())
			ops = append(ops, op{"drop_table", name, newObj("name", name)})
		case pg_query.ObjectType_OBJECT_TYPE:
			name := sqlsrc.Last(o.GetTypeName().GetNames())
			body := newObj("name", name)
			body.note("name", "online drops enum types only; for another kind of type keep a sql operation")
			ops = append(ops, op{"drop_enum", "", body})
		default:
			return skipf("DROP %s has no online operation", strings.TrimPrefix(s.RemoveType.String(), "OBJECT_"))
		}
	}
	for _, o := range ops {
		p.add(o.table, o.kind, o.body)
	}
	return nil
}

func (p *part) createTable(c *converter, s *pg_query.CreateStmt) error {
	table, err := relName(s.Relation)
	if err != nil {
		return err
	}
	switch {
	case s.Relation.Relpersistence != "p":
		return skipf("a temporary or unlogged table has no online operation")
	case s.Partspec != nil || s.Partbound != nil:
		return skipf("create_table has no partitioning; create partitioned tables and partitions in SQL")
	case s.OfTypename != nil:
		return skipf("create_table has no OF type")
	case len(s.InhRelations) > 0:
		return skipf("create_table has no INHERITS")
	case len(s.Options) > 0 || s.Tablespacename != "" || s.AccessMethod != "":
		return skipf("create_table has no storage parameters, tablespace or access method")
	}
	body := newObj("name", table)
	var cols, cons []any
	for _, e := range s.TableElts {
		switch {
		case e.GetColumnDef() != nil:
			col, err := c.column(table, e.GetColumnDef())
			if err != nil {
				return err
			}
			if col.get("pk") == false {
				col.del("pk")
			}
			cols = append(cols, col)
		case e.GetConstraint() != nil:
			tc, err := tableConstraint(table, e.GetConstraint())
			if err != nil {
				return err
			}
			cons = append(cons, tc)
		default:
			return skipf("create_table has no LIKE")
		}
	}
	body.set("columns", cols)
	if len(cons) > 0 {
		body.set("constraints", cons)
	}
	p.add(table, "create_table", body)
	p.tables[table] = body
	return nil
}

func (p *part) comment(c *converter, s *pg_query.CommentStmt) error {
	var value any = s.Comment
	if s.Comment == "" {
		value = nil // IS NULL and IS '' both remove a comment
	}
	items := s.Object.GetList().GetItems()
	switch s.Objtype {
	case pg_query.ObjectType_OBJECT_COLUMN:
		if len(items) < 2 {
			return skipf("COMMENT ON COLUMN needs table.column")
		}
		table, col := items[len(items)-2].GetString_().GetSval(), sqlsrc.Last(items)
		if ct := p.tables[table]; ct != nil {
			cols, _ := ct.get("columns").([]any)
			for _, x := range cols {
				if co := x.(*obj); co.str("name") == col {
					if value == nil {
						co.del("comment")
					} else {
						co.set("comment", value)
					}
					return nil
				}
			}
		}
		p.alter(table, col, false, false).set("comment", value)
		return nil
	case pg_query.ObjectType_OBJECT_TABLE:
		table := sqlsrc.Last(items)
		if ct := p.tables[table]; ct != nil {
			ct.set("comment", value)
			return nil
		}
		return skipf("no online operation changes the comment of an existing table (create_table sets one)")
	}
	return skipf("COMMENT ON %s has no online operation", strings.TrimPrefix(s.Objtype.String(), "OBJECT_"))
}
