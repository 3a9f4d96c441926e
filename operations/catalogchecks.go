package operations

import (
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/schema"
)

// CatalogCheck is a question about one field that only the live catalog
// can answer (does this type exist, does this expression name existing
// columns and type-check), asked before start changes anything. The SQL
// only reads, and the runner runs it in a read-only transaction it rolls
// back.
type CatalogCheck struct {
	File  string
	Op    int
	Kind  string
	Field string
	// SQL is one SELECT; Args its parameters.
	SQL  string
	Args []any
	// Type is set when SQL returns one value that is NULL when the type
	// named by the field does not exist.
	Type bool
	// InSchema asks for search_path to be the migrated schema, as the
	// triggers and the backfill that evaluate up and down have it.
	InSchema bool
	// Missing, with Type, is the message when the value is NULL, for a
	// check of something other than a type (a collation, an operator
	// class, an access method); %s is the name.
	Missing string
	// Rows is set when SQL returns a count of rows that break a rule of
	// the migration and some of their keys (text): a count above zero
	// fails with Message, formatted with the count and the keys.
	Rows    bool
	Message string
}

// Fail is the error to report when the check fails with msg.
func (k CatalogCheck) Fail(format string, args ...any) error {
	return &Error{File: k.File, Op: k.Op, Kind: k.Kind, Field: k.Field, Err: fmt.Errorf(format, args...)}
}

// CatalogChecks lists the checks of m's fields against the live catalog:
// each type name, and each expression evaluated (WHERE false: planned and
// type-checked, never run) over a row of the columns it may name. up reads
// the old version's columns, down, checks, defaults, predicates and
// generated expressions the new version's. old and nw are the versions
// before and after m (Compile returns nw); m must have compiled.
//
// An expression on a table that another operation of m also changes is not
// checked here: what it may name then depends on where it sits among the
// operations. The plan's own check function still proves it at expand,
// inside the transaction that is undone when it fails.
func CatalogChecks(m *Migration, old, nw *schema.Schema) []CatalogCheck {
	// A type this migration creates is not in the catalog yet; nor can an
	// expression be evaluated over a column of that type.
	created := map[string]bool{}
	for _, op := range m.Operations {
		if tc, ok := op.(typeCreator); ok {
			created[tc.createdType()] = true
		}
	}
	touched := map[string]int{}
	for _, op := range m.Operations {
		if t := tableOf(op); t != "" {
			touched[t]++
		}
	}
	var out []CatalogCheck
	var exprs []CatalogCheck
	for i, op := range m.Operations {
		base := CatalogCheck{File: m.File, Op: i + 1, Kind: kindOf(op)}
		for _, f := range sqlFields(op) {
			if f.value == "" || !strings.HasSuffix(f.field, "type") {
				continue
			}
			if name, ok := typeBase(f.value); !ok || serialTypes[name] != "" || created[name] {
				continue // serial is a column definition's shorthand, not a type
			}
			k := base
			k.Field, k.SQL, k.Args, k.Type = f.field, "SELECT pg_catalog.to_regtype($1)::text", []any{f.value}, true
			out = append(out, k)
		}
		out = append(out, namedObjectChecks(op, base)...)
		if mv, ok := op.(mover); ok {
			exprs = append(exprs, mv.moveChecks(base, old)...)
		}
		table := tableOf(op)
		if table == "" || touched[table] > 1 || len(created) > 0 {
			continue
		}
		for _, e := range exprFields(op) {
			if e.value == "" {
				continue
			}
			models := nw
			if e.old {
				models = old
			}
			t := models.Table(table)
			if t == nil {
				continue
			}
			k := base
			k.Field, k.InSchema = e.field, e.old || e.inSchema || strings.HasPrefix(e.field, "down")
			row := rowOf(t)
			if e.castColumn != "" {
				col := t.Column(e.castColumn)
				if col == nil {
					continue
				}
				e.castTo = col.Type
				if name, ok := typeBase(col.Type); ok && serialTypes[name] != "" {
					e.castTo = serialTypes[name]
				}
			}
			switch {
			case e.boolean:
				k.SQL = fmt.Sprintf("SELECT 1 FROM %s WHERE %s AND false", row, pg.Paren(e.value))
			case e.castTo != "":
				k.SQL = fmt.Sprintf("SELECT CAST(%s AS %s) FROM %s WHERE false", pg.Paren(e.value), e.castTo, row)
			default:
				k.SQL = fmt.Sprintf("SELECT %s FROM %s WHERE false", pg.Paren(e.value), row)
			}
			exprs = append(exprs, k)
		}
	}
	// Types first: an expression over a column of a missing type would
	// fail for that reason, and the type's field is the one to name.
	return append(out, exprs...)
}

// namedObject is a collation, operator class or index access method that
// an operation names in field: the catalog checks ask whether it exists.
type namedObject struct {
	field string
	kind  string // "collation", "operator class" or "access method"
	name  string
	// method is an operator class's index access method.
	method string
}

// objectNamer is an operation that names such objects (create_index,
// create_constraint).
type objectNamer interface{ namedObjects() []namedObject }

// namedObjectChecks asks whether the collations, operator classes and
// index access methods an operation names exist, so that a name that
// does not is a problem of the file (exit 2) before any change, not a
// failed statement at expand. Each is looked up as the statement that
// uses it will: quoted as an identifier, with search_path the migrated
// schema.
func namedObjectChecks(op Operation, base CatalogCheck) []CatalogCheck {
	n, ok := op.(objectNamer)
	if !ok {
		return nil
	}
	var out []CatalogCheck
	for _, o := range n.namedObjects() {
		k := base
		k.Field, k.Type, k.InSchema, k.Args = o.field, true, true, []any{o.name}
		switch o.kind {
		case "collation":
			k.SQL, k.Missing = "SELECT pg_catalog.to_regcollation(pg_catalog.quote_ident($1))::text", "collation %s does not exist"
		case "operator class":
			k.SQL = `SELECT (SELECT o.opcname::text FROM pg_catalog.pg_opclass o JOIN pg_catalog.pg_am a ON a.oid = o.opcmethod
WHERE o.opcname = $1 AND a.amname = $2 AND pg_catalog.pg_opclass_is_visible(o.oid) LIMIT 1)`
			k.Args = append(k.Args, o.method)
			k.Missing = "operator class %s does not exist for access method " + strings.ReplaceAll(o.method, "%", "%%")
		case "access method":
			k.SQL, k.Missing = "SELECT (SELECT amname::text FROM pg_catalog.pg_am WHERE amname = $1 AND amtype = 'i')", "index access method %s does not exist"
		default:
			continue
		}
		out = append(out, k)
	}
	return out
}

// rowOf is a derived table holding one row of t's columns, by visible
// name and type, that reads no table: WHERE false never asks for a row.
func rowOf(t *schema.Table) string {
	cols := make([]string, 0, len(t.Columns))
	for _, c := range t.Columns {
		typ := c.Type
		if name, ok := typeBase(typ); ok && serialTypes[name] != "" {
			typ = serialTypes[name]
		}
		cols = append(cols, fmt.Sprintf("CAST(NULL AS %s) AS %s", typ, pg.Ident(c.Name)))
	}
	if len(cols) == 0 {
		return "(SELECT) AS _online_row"
	}
	return "(SELECT " + strings.Join(cols, ", ") + ") AS _online_row"
}

type exprField struct {
	field, value string
	old          bool   // reads the old version's columns (up)
	boolean      bool   // must be boolean (a check, a predicate)
	castTo       string // must convert to this type (a default)
	castColumn   string // must convert to the type this column has in the new version
	inSchema     bool   // evaluated in the migrated schema (by the backfill, as the triggers do up and down)
}

// typeCreator is an operation that creates a type: until it runs the type
// is not in the catalog, nor can an expression over a column of it be
// evaluated there.
type typeCreator interface {
	createdType() string
}

// exprFielder is an operation with fields holding an expression over one
// row of its table; each lists them in its own file.
type exprFielder interface {
	exprFields() []exprField
}

// tabled is an operation that changes one table, named by table.
type tabled interface {
	table() string
}

// exprFields are the fields of op holding an expression over one row of
// its table.
func exprFields(op Operation) []exprField {
	if f, ok := op.(exprFielder); ok {
		return f.exprFields()
	}
	return nil
}

// upDownExprs are the expressions of maps of up and down by column: up
// reads the old version's row, down the new version's.
func upDownExprs(up, down map[string]string) []exprField {
	var fs []exprField
	for name, v := range up {
		fs = append(fs, exprField{field: "up." + name, value: v, old: true})
	}
	for name, v := range down {
		fs = append(fs, exprField{field: "down." + name, value: v})
	}
	return fs
}

func columnExprs(field string, col *Column) []exprField {
	var fs []exprField
	if col.Default != nil {
		fs = append(fs, exprField{field: field + ".default", value: *col.Default, castTo: col.Type})
	}
	if col.Check != nil {
		fs = append(fs, exprField{field: field + ".check.constraint", value: col.Check.Constraint, boolean: true})
	}
	if col.Generated != nil {
		fs = append(fs, exprField{field: field + ".generated.expression", value: col.Generated.Expression, castTo: col.Type})
	}
	return fs
}

// tableOf names the table an operation changes, or "".
func tableOf(op Operation) string {
	if t, ok := op.(tabled); ok {
		return t.table()
	}
	return ""
}

// serialTypes are the column definition shorthands for an integer column
// with a sequence, and the integer type each stands for.
var serialTypes = map[string]string{
	"smallserial": "smallint", "serial2": "smallint",
	"serial": "integer", "serial4": "integer",
	"bigserial": "bigint", "serial8": "bigint",
}

// typeBase is the last part of a type name's name, as PostgreSQL folds it.
func typeBase(s string) (string, bool) {
	names, err := sqlcheck.TypeNameParts(s)
	if err != nil || len(names) == 0 {
		return "", false
	}
	return names[len(names)-1], true
}
