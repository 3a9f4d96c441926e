package operations

import (
	"fmt"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/schema"
)

// DropColumn hides a column from the new version at once and drops it at
// complete. Down gives the value the old version sees in rows the new
// version inserts.
type DropColumn struct {
	Table  string `yaml:"table"`
	Column string `yaml:"column"`
	Down   string `yaml:"down"`
}

var _ Operation = (*DropColumn)(nil)

func (op *DropColumn) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	col, err := c.Column("column", t, op.Column)
	if err != nil {
		return err
	}
	c.forgetRewrite(t, col)
	for _, k := range t.PrimaryKey {
		if k == op.Column {
			return errField("column", "column %q is part of the primary key of %q", op.Column, t.Name)
		}
	}
	if m := col.Maintained; m != nil {
		if !m.Computed {
			return refuseMaintained("column", t, col, "dropping")
		}
		key := t.Physical + "\x00" + col.Physical
		if c.dropTriggers[key] == nil {
			// The trigger names the column: it goes first.
			c.dropTriggers[key] = c.dropMaintained(t, col)
		}
	}
	if ix := replicaIdentityIndex(t, col.Physical); ix != "" {
		return errField("column", "column %q is in index %q, the replica identity of %q; change the replica identity first (set_replica_identity)", op.Column, ix, t.Name)
	}
	// What the old version needs is decided by the column as the table has
	// it now: an earlier operation of this migration may have changed its
	// nullability or default for the new version only.
	notNull, def := !col.Nullable, col.Default
	if ot := c.oldTable(t); ot != nil {
		if oc := ot.ColumnByPhysical(col.Physical); oc != nil {
			notNull, def = !oc.Nullable, oc.Default
		}
	}
	down := op.Down
	if down == "" && notNull && def == nil && col.Default != nil {
		// A default an earlier operation of this migration set reaches
		// the table only at complete: until then the new version's
		// inserts get it from the view, and this column, which the view
		// no longer shows, from a down made of it.
		down = *col.Default
	}
	if down == "" && notNull && def == nil && col.Identity == "" && !col.Generated && !t.Created &&
		(col.Maintained == nil || !col.Maintained.Computed) { // its trigger fills it
		return errField("down", "column %q is NOT NULL without a default in the table: rows the new version inserts would fail; give \"down\", the value old code should see", op.Column)
	}
	if down != "" {
		if err := c.dropColumnDown(t, col, down); err != nil {
			return err
		}
	}
	t.RemoveColumn(op.Column)
	t.PrimaryKey = withoutName(t.PrimaryKey, op.Column)
	if t.Created && len(c.dropTriggers[t.Physical+"\x00"+col.Physical]) == 0 {
		// A table this migration creates: no version has seen the column,
		// and the new version's inserts must not need it. What earlier
		// operations planned for it later than this (a comment) goes too.
		c.cancelSteps(t, []string{pg.Ident(col.Physical)}, fmt.Sprintf("nothing for %s.%s: operation %d drops it", t.Name, op.Column, c.op), c.plan.Contract)
		c.Expand(Step{
			Do:   fmt.Sprintf("drop column %s.%s of the table created above", t.Name, op.Column),
			SQL:  []string{fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", c.Qualified(t.Physical), pg.Ident(col.Physical))},
			Lock: "ACCESS EXCLUSIVE (on a table no version uses yet)",
		})
		return nil
	}
	sql := append(c.dropTriggers[t.Physical+"\x00"+col.Physical], fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", c.Qualified(c.TableNow(t)), pg.Ident(c.ColumnNow(t, col.Physical))))
	c.Contract(Step{
		Do:   fmt.Sprintf("drop column %s.%s", t.Name, op.Column),
		SQL:  sql,
		Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
	})
	return nil
}

func withoutName(names []string, name string) []string {
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

func (op *DropColumn) table() string { return op.Table }

func (op *DropColumn) sqlFields() []sqlField {
	return []sqlField{{"down", op.Down, sqlcheck.Expr}}
}

func (op *DropColumn) upDown() map[string]string { return map[string]string{"down": op.Down} }

func (op *DropColumn) exprFields() []exprField {
	return []exprField{{field: "down", value: op.Down}}
}

func (op *DropColumn) invert(*schema.Schema) (map[string]any, string) {
	return nil, "drops a column: its data is gone"
}
