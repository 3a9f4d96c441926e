package operations

import (
	"fmt"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// RenameColumn renames a column. The new version's view shows the new name
// at once; the table's column is renamed at complete, an instant catalog change.
type RenameColumn struct {
	Table string `yaml:"table"`
	From  string `yaml:"from"`
	To    string `yaml:"to"`
}

var _ Operation = (*RenameColumn)(nil)

func (op *RenameColumn) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	col, err := c.Column("from", t, op.From)
	if err != nil {
		return err
	}
	if err := refuseMaintained("from", t, col, "renaming"); err != nil {
		return err
	}
	if err := ValidName("to", op.To); err != nil {
		return err
	}
	if op.To == op.From {
		return errField("to", "is the column's current name")
	}
	if t.Column(op.To) != nil {
		return errField("to", "table %q already has a column %q", t.Name, op.To)
	}
	col.Name = op.To
	for i, k := range t.PrimaryKey {
		if k == op.From {
			t.PrimaryKey[i] = op.To
		}
	}
	now := c.ColumnNow(t, col.Physical)
	c.Contract(Step{
		Do:   fmt.Sprintf("rename column %s.%s to %s", t.Name, op.From, op.To),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", c.Qualified(c.TableNow(t)), pg.Ident(now), pg.Ident(op.To))},
		Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
	})
	c.SetColumnNow(t, col.Physical, op.To)
	return nil
}

func (op *RenameColumn) table() string { return op.Table }

func (op *RenameColumn) invert(*schema.Schema) (map[string]any, string) {
	return op1("rename_column", map[string]any{"table": op.Table, "from": op.To, "to": op.From}), ""
}
