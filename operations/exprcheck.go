package operations

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
)

// exprCheck is an up or down expression whose column names are checked
// against the model once every operation is compiled: a name that is no
// column fails at start inside a trigger function, with PostgreSQL's error
// about a function the user never wrote.
type exprCheck struct {
	op    int
	kind  string
	field string
	expr  string
	table *schema.Table
	known map[string]bool // columns the expression may name
	down  bool            // a down also names the table's final columns
}

// upDowner is an operation with up and down expressions. upDown returns
// them by field ("up", "down", or "up.<column>" for a map of them).
type upDowner interface {
	upDown() map[string]string
}

// upDownFields lists the up and down expressions of an operation, by field,
// and the table they are evaluated over.
func upDownFields(op Operation) (table string, fields map[string]string) {
	u, ok := op.(upDowner)
	if !ok {
		return "", map[string]string{}
	}
	return tableOf(op), u.upDown()
}

// prefixed adds the expressions of m to fields as prefix.<column>.
func prefixed(fields map[string]string, prefix string, m map[string]string) map[string]string {
	for col, e := range m {
		fields[prefix+"."+col] = e
	}
	return fields
}

// columnsOf is the set of visible column names of the named table of the
// new version as it is now, with those it had before the migration.
func (c *Compiler) columnsOf(name string) map[string]bool {
	known := map[string]bool{}
	t := c.Schema.Tables[name]
	if t == nil {
		return known
	}
	for _, col := range t.Columns {
		known[col.Name] = true
	}
	if ot := c.oldTable(t); ot != nil {
		for _, col := range ot.Columns {
			known[col.Name] = true
		}
	}
	return known
}

// noteExprs records the up and down expressions of the operation just
// compiled. up names the old version's columns: those of the table before
// the migration or before this operation. down names the new version's:
// those after it too.
func (c *Compiler) noteExprs(op Operation, before map[string]bool) {
	name, fields := upDownFields(op)
	t := c.Schema.Tables[name]
	if t == nil {
		return
	}
	after := c.columnsOf(name)
	for n := range before {
		after[n] = true
	}
	keys := make([]string, 0, len(fields))
	for f := range fields {
		keys = append(keys, f)
	}
	sort.Strings(keys)
	for _, f := range keys {
		if strings.TrimSpace(fields[f]) == "" {
			continue
		}
		ec := exprCheck{op: c.op, kind: c.kind, field: f, expr: fields[f], table: t, known: before}
		if strings.HasPrefix(f, "down") {
			ec.known, ec.down = after, true
		}
		c.exprChecks = append(c.exprChecks, ec)
	}
}

// checkExprColumns reports the first up or down that names a column the
// table has in neither version. A name is accepted when it is a column of
// the table before the migration, after the operation, or at its end
// (down names the new version's columns, which later operations may
// rename); an up's names must be the old version's. Only unqualified names outside subqueries are judged.
func (c *Compiler) checkExprColumns() error {
	for _, ec := range c.exprChecks {
		names, ok := sqllex.UnqualifiedColumns(ec.expr)
		if !ok {
			continue
		}
		for _, n := range names {
			if ec.known[n] || (ec.down && ec.table.Column(n) != nil) {
				continue
			}
			dir := "up: column names refer to the old version of the row"
			if ec.down {
				dir = "down: column names refer to the new version of the row"
			}
			var cols []string
			for col := range ec.known {
				cols = append(cols, col)
			}
			sort.Strings(cols)
			return &Error{File: c.file, Op: ec.op, Kind: ec.kind, Field: ec.field,
				Err: fmt.Errorf("column %q does not exist in table %q (in %s; it may name: %s)", n, ec.table.Name, dir, strings.Join(cols, ", "))}
		}
	}
	return nil
}
