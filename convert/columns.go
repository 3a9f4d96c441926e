package convert

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/onlinepg/online/internal/sqlsrc"
)

var fkActions = map[string]string{"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
var fkMatch = map[string]string{"s": "SIMPLE", "f": "FULL", "p": "PARTIAL"}

// column converts a column definition. The result always has "nullable"
// (the format's default is NOT NULL, as pgroll's) and "pk" (a bool, which
// the caller removes where the format has no use for it).
func (c *converter) column(table string, cd *pg_query.ColumnDef) (*obj, error) {
	if cd.CollClause != nil {
		return nil, skipf("a column's COLLATE has no online operation")
	}
	typ, err := sqlsrc.Type(cd.TypeName)
	if err != nil {
		return nil, err
	}
	// nullable is set here for its place next to the type; its value
	// comes after the constraints are read.
	col := newObj("name", cd.Colname, "type", typ, "nullable", true)
	nullable, pk := true, false
	for _, n := range cd.Constraints {
		con := n.GetConstraint()
		switch con.Contype {
		case pg_query.ConstrType_CONSTR_NOTNULL:
			nullable = false
		case pg_query.ConstrType_CONSTR_NULL:
			nullable = true
		case pg_query.ConstrType_CONSTR_DEFAULT:
			def, err := sqlsrc.Expr(con.RawExpr)
			if err != nil {
				return nil, err
			}
			col.set("default", def)
		case pg_query.ConstrType_CONSTR_UNIQUE:
			if con.Conname != "" {
				return nil, skipf("a named column UNIQUE constraint: online names it; use ADD CONSTRAINT %s UNIQUE (...)", con.Conname)
			}
			col.set("unique", true)
		case pg_query.ConstrType_CONSTR_PRIMARY:
			pk, nullable = true, false
		case pg_query.ConstrType_CONSTR_CHECK:
			expr, err := sqlsrc.Expr(con.RawExpr)
			if err != nil {
				return nil, err
			}
			name := con.Conname
			if name == "" {
				name = table + "_" + cd.Colname + "_check"
			}
			ck := newObj("name", name, "constraint", expr)
			if con.IsNoInherit {
				ck.set("no_inherit", true)
			}
			col.set("check", ck)
		case pg_query.ConstrType_CONSTR_FOREIGN:
			if len(con.PkAttrs) != 1 {
				return nil, skipf("REFERENCES without the referenced column: name it, e.g. REFERENCES %s (id)", con.Pktable.GetRelname())
			}
			name := con.Conname
			if name == "" {
				name = table + "_" + cd.Colname + "_fkey"
			}
			ref := newObj("name", name, "table", con.Pktable.GetRelname(), "column", sqlsrc.Last(con.PkAttrs))
			fkOptions(ref, con, false)
			if con.Deferrable {
				ref.set("deferrable", true)
			}
			if con.Initdeferred {
				ref.set("initially_deferred", true)
			}
			col.set("references", ref)
		case pg_query.ConstrType_CONSTR_GENERATED:
			expr, err := sqlsrc.Expr(con.RawExpr)
			if err != nil {
				return nil, err
			}
			col.set("generated", newObj("expression", expr))
		case pg_query.ConstrType_CONSTR_IDENTITY:
			when := "ALWAYS"
			if con.GeneratedWhen == "d" {
				when = "BY DEFAULT"
			}
			id := newObj("user_specified_values", when)
			if len(con.Options) > 0 {
				return nil, skipf("identity sequence options are not converted")
			}
			col.set("generated", newObj("identity", id))
			nullable = false
		default:
			return nil, skipf("column constraint %s has no online equivalent", strings.TrimPrefix(con.Contype.String(), "CONSTR_"))
		}
	}
	col.set("nullable", nullable)
	col.set("pk", pk)
	c.types[table+"."+cd.Colname] = typ
	return col, nil
}

func fkOptions(ref *obj, con *pg_query.Constraint, multi bool) {
	if a := fkActions[con.FkDelAction]; a != "" && a != "NO ACTION" {
		ref.set("on_delete", a)
	}
	if a := fkActions[con.FkUpdAction]; a != "" && a != "NO ACTION" {
		ref.set("on_update", a)
	}
	if m := fkMatch[con.FkMatchtype]; m != "" && m != "SIMPLE" {
		ref.set("match_type", m)
	}
	if multi && len(con.FkDelSetCols) > 0 {
		var cols []string
		for _, n := range con.FkDelSetCols {
			cols = append(cols, n.GetString_().GetSval())
		}
		ref.set("on_delete_set_columns", cols)
	}
}

func names(list []*pg_query.Node) []string {
	var out []string
	for _, n := range list {
		out = append(out, n.GetString_().GetSval())
	}
	return out
}

// constraintName is PostgreSQL's own choice for an unnamed constraint.
func constraintName(table string, cols []string, suffix string) string {
	if len(cols) == 0 {
		return table + "_" + suffix
	}
	return table + "_" + strings.Join(cols, "_") + "_" + suffix
}

// tableConstraint converts a table constraint for create_table.
func tableConstraint(table string, con *pg_query.Constraint) (*obj, error) {
	if con.Indexname != "" {
		return nil, skipf("a constraint USING INDEX has no online operation")
	}
	tc := newObj()
	switch con.Contype {
	case pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_PRIMARY:
		cols := names(con.Keys)
		typ, suffix := "unique", "key"
		if con.Contype == pg_query.ConstrType_CONSTR_PRIMARY {
			typ, suffix = "primary_key", "pkey"
		}
		name := con.Conname
		if name == "" {
			name = constraintName(table, cols, suffix)
			if suffix == "pkey" {
				name = table + "_pkey"
			}
		}
		tc.set("name", name).set("type", typ).set("columns", cols)
		if con.NullsNotDistinct {
			tc.set("nulls_not_distinct", true)
		}
		if err := indexParameters(tc, con); err != nil {
			return nil, err
		}
	case pg_query.ConstrType_CONSTR_CHECK:
		expr, err := sqlsrc.Expr(con.RawExpr)
		if err != nil {
			return nil, err
		}
		name := con.Conname
		if name == "" {
			name = table + "_check"
		}
		tc.set("name", name).set("type", "check").set("check", expr)
		if cols := sqlsrc.ColumnRefs(con.RawExpr); len(cols) > 0 {
			tc.set("columns", cols)
		}
		if con.IsNoInherit {
			tc.set("no_inherit", true)
		}
	case pg_query.ConstrType_CONSTR_FOREIGN:
		cols := names(con.FkAttrs)
		if len(con.PkAttrs) == 0 {
			return nil, skipf("REFERENCES without the referenced columns: name them, e.g. REFERENCES %s (id)", con.Pktable.GetRelname())
		}
		name := con.Conname
		if name == "" {
			name = constraintName(table, cols, "fkey")
		}
		ref := newObj("table", con.Pktable.GetRelname(), "columns", names(con.PkAttrs))
		fkOptions(ref, con, true)
		tc.set("name", name).set("type", "foreign_key").set("columns", cols).set("references", ref)
	case pg_query.ConstrType_CONSTR_EXCLUSION:
		var elems []string
		for _, pair := range con.Exclusions {
			items := pair.GetList().GetItems()
			e := items[0].GetIndexElem()
			text := e.Name
			if text == "" {
				expr, err := sqlsrc.Expr(e.Expr)
				if err != nil {
					return nil, err
				}
				text = "(" + expr + ")"
			}
			if len(e.Opclass) > 0 {
				text += " " + sqlsrc.Names(e.Opclass)
			}
			elems = append(elems, text+" WITH "+sqlsrc.Names(items[1].GetList().GetItems()))
		}
		name := con.Conname
		if name == "" {
			name = table + "_excl"
		}
		ex := newObj("index_method", con.AccessMethod, "elements", strings.Join(elems, ", "))
		if con.WhereClause != nil {
			pred, err := sqlsrc.Expr(con.WhereClause)
			if err != nil {
				return nil, err
			}
			ex.set("predicate", pred)
		}
		tc.set("name", name).set("type", "exclude").set("exclude", ex)
	default:
		return nil, skipf("constraint %s has no online operation", strings.TrimPrefix(con.Contype.String(), "CONSTR_"))
	}
	if con.Deferrable {
		tc.set("deferrable", true)
	}
	if con.Initdeferred {
		tc.set("initially_deferred", true)
	}
	return tc, nil
}

func indexParameters(tc *obj, con *pg_query.Constraint) error {
	ip := newObj()
	if len(con.Including) > 0 {
		ip.set("include_columns", names(con.Including))
	}
	if len(con.Options) > 0 {
		sp, err := storageParams(con.Options)
		if err != nil {
			return err
		}
		ip.set("storage_parameters", sp)
	}
	if con.Indexspace != "" {
		ip.set("tablespace", con.Indexspace)
	}
	if len(ip.keys) > 0 {
		tc.set("index_parameters", ip)
	}
	return nil
}

// createConstraint converts ALTER TABLE ... ADD CONSTRAINT on a table that
// exists: the same fields as a table constraint, with references.table and
// without exclusion (create_constraint has no exclude type).
func createConstraint(table string, con *pg_query.Constraint) (*obj, error) {
	if con.Contype == pg_query.ConstrType_CONSTR_EXCLUSION {
		return nil, skipf("create_constraint has no exclude type (an EXCLUDE constraint builds its index under a lock that blocks writes)")
	}
	tc, err := tableConstraint(table, con)
	if err != nil {
		return nil, err
	}
	if tc.str("type") == "check" && !tc.has("columns") {
		return nil, skipf("a check constraint that names no column")
	}
	body := newObj("table", table)
	for _, k := range tc.keys {
		body.set(k, tc.get(k))
	}
	if con.SkipValidation {
		body.note("name", "NOT VALID dropped: online adds the constraint NOT VALID and validates it without blocking")
	}
	return body, nil
}
