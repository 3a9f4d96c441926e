package operations

import (
	"fmt"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// RenameTable renames a table: at once in the new version's views, physically
// at complete.
type RenameTable struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

var _ Operation = (*RenameTable)(nil)

func (op *RenameTable) Compile(c *Compiler) error {
	t, err := c.Table("from", op.From)
	if err != nil {
		return err
	}
	if err := ValidName("to", op.To); err != nil {
		return err
	}
	if c.Schema.Table(op.To) != nil {
		return errField("to", "table %q already exists", op.To)
	}
	if c.Old.Relations[op.To] && c.Old.Table(op.To) == nil {
		return errField("to", "the name %q is already used by a relation of schema %q", op.To, c.Opts.Schema)
	}
	delete(c.Schema.Tables, op.From)
	t.Name = op.To
	c.Schema.Tables[op.To] = t
	for ix, tbl := range c.Schema.Indexes {
		if tbl == op.From {
			c.Schema.Indexes[ix] = op.To
		}
	}
	c.Contract(Step{
		Do:   fmt.Sprintf("rename table %s to %s", op.From, op.To),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s RENAME TO %s", c.Qualified(c.TableNow(t)), pg.Ident(op.To))},
		Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
	})
	c.SetTableNow(t, op.To)
	return nil
}

func (op *RenameTable) table() string { return op.From }

func (op *RenameTable) invert(*schema.Schema) (map[string]any, string) {
	return op1("rename_table", map[string]any{"from": op.To, "to": op.From}), ""
}
