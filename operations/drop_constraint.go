package operations

import (
	"sort"

	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/schema"
)

// DropConstraint is the older single-column form of dropping a constraint.
// The column is rewritten without the constraint: the new version writes
// values the constraint would refuse, and the old version reads down(value).
type DropConstraint struct {
	Table string `yaml:"table"`
	Name  string `yaml:"name"`
	Up    string `yaml:"up"`
	Down  string `yaml:"down"`
}

var _ Operation = (*DropConstraint)(nil)

func (op *DropConstraint) Compile(c *Compiler) error {
	t, con, err := c.constraintOf(op.Table, op.Name)
	if err != nil {
		return err
	}
	if len(con.Columns) != 1 {
		return errField("name", "constraint %q spans %d columns; use drop_multicolumn_constraint", op.Name, len(con.Columns))
	}
	col := c.columnOfPhysical(t, con.Columns[0])
	return c.dropConstraint(t, op.Name, map[string]string{col.Name: op.Up}, map[string]string{col.Name: op.Down})
}

func (op *DropConstraint) table() string { return op.Table }

func (op *DropConstraint) sqlFields() []sqlField {
	return []sqlField{{"up", op.Up, sqlcheck.Expr}, {"down", op.Down, sqlcheck.Expr}}
}

func (op *DropConstraint) upDown() map[string]string {
	return map[string]string{"up": op.Up, "down": op.Down}
}

func (op *DropConstraint) exprFields() []exprField {
	return []exprField{{field: "up", value: op.Up, old: true}, {field: "down", value: op.Down}}
}

// dropsConstraint is why neither form of dropping a constraint can be
// reverted.
const dropsConstraint = "drops a constraint: its definition is not in the migration; add it back with create_constraint"

func (op *DropConstraint) invert(*schema.Schema) (map[string]any, string) {
	return nil, dropsConstraint
}

func (c *Compiler) constraintOf(table, name string) (*schema.Table, *schema.Constraint, error) {
	t, err := c.Table("table", table)
	if err != nil {
		return nil, nil, err
	}
	if err := Required("name", name); err != nil {
		return nil, nil, err
	}
	con := t.Constraints[name]
	if con == nil {
		return nil, nil, errField("name", "table %q has no constraint %q", t.Name, name)
	}
	if con.Type == "p" {
		return nil, nil, errField("name", "%q is the primary key of %q; dropping a primary key is not supported", name, t.Name)
	}
	if len(con.Columns) == 0 {
		return nil, nil, errField("name", "constraint %q names no column", name)
	}
	return t, con, nil
}

func (c *Compiler) dropConstraint(t *schema.Table, name string, up, down map[string]string) error {
	con := t.Constraints[name]
	if c.dropPending(t, name) {
		// Built by this migration: never built, nothing to convert.
		return nil
	}
	c.skipDependents[name] = true
	// An earlier rewrite of its columns planned to rebuild it: no more.
	c.cancelRebuild(t, "constraint "+name)
	c.cancelRebuild(t, "index "+name)
	for n, ix := range t.Indexes {
		if ix.Constraint == name {
			c.cancelRebuild(t, "index "+n)
		}
	}
	var cols []string
	for _, p := range con.Columns {
		cols = append(cols, c.columnOfPhysical(t, p).Name)
	}
	sort.Strings(cols)
	for field, m := range map[string]map[string]string{"up": up, "down": down} {
		for col := range m {
			if !containsString(cols, col) {
				return errField(field+"."+col, "column %q is not one of constraint %q's columns (%v)", col, name, cols)
			}
		}
	}
	for _, name := range cols {
		col := t.Column(name)
		spec := rewriteSpec{up: identityOr(up[name], name), down: identityOr(down[name], name)}
		if _, err := c.alterRewrite(t, col, spec); err != nil {
			return err
		}
	}
	delete(t.Constraints, name)
	if ix := t.Indexes[name]; ix != nil {
		delete(t.Indexes, name)
		delete(c.Schema.Indexes, name)
	}
	return nil
}

// columnOfPhysical is the column of t over physical column phys: the one
// that has it, or the one whose rewrite by an earlier operation of the
// migration replaces it (a constraint of the old version still names the
// old column).
func (c *Compiler) columnOfPhysical(t *schema.Table, phys string) *schema.Column {
	if col := t.ColumnByPhysical(phys); col != nil {
		return col
	}
	for _, r := range c.rewrites {
		if r.table == t && !r.added && r.oldPhys == phys {
			return r.col
		}
	}
	return nil
}
