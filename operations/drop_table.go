package operations

import (
	"fmt"
	"github.com/onlinepg/online/schema"
)

// DropTable hides a table from the new version at once and drops it at complete.
type DropTable struct {
	Name string `yaml:"name"`
}

var _ Operation = (*DropTable)(nil)

func (op *DropTable) Compile(c *Compiler) error {
	t, err := c.Table("name", op.Name)
	if err != nil {
		return err
	}
	for _, other := range c.Schema.Tables {
		if other == t {
			continue
		}
		for _, con := range other.Constraints {
			if con.Type == "f" && con.RefSchema == c.Opts.Schema && con.RefTableName == t.Physical {
				return errField("name", "table %q is referenced by foreign key %q of table %q; drop that constraint first", op.Name, con.Name, other.Name)
			}
		}
	}
	delete(c.Schema.Tables, op.Name)
	for ix, tbl := range c.Schema.Indexes {
		if tbl == op.Name {
			delete(c.Schema.Indexes, ix)
		}
	}
	if t.Created {
		// Created and dropped in one migration: rollback and complete both
		// remove it.
		c.Contract(Step{Do: fmt.Sprintf("drop table %s", op.Name), SQL: []string{"DROP TABLE IF EXISTS " + c.Qualified(c.TableNow(t))}, Lock: "ACCESS EXCLUSIVE"})
		return nil
	}
	c.ContractLast(Step{
		Do:   fmt.Sprintf("drop table %s", op.Name),
		SQL:  []string{"DROP TABLE " + c.Qualified(c.TableNow(t))},
		Lock: "ACCESS EXCLUSIVE",
	})
	return nil
}

func (op *DropTable) table() string { return op.Name }

func (op *DropTable) invert(*schema.Schema) (map[string]any, string) {
	return nil, "drops a table: its data is gone"
}
