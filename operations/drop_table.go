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
		// Created and dropped in one migration: no version ever sees it, so
		// it goes at once, and a later operation may take its name again
		// (pgroll runs create, drop, create of one name).
		c.Expand(Step{Do: fmt.Sprintf("drop table %s, created above", op.Name), SQL: []string{"DROP TABLE IF EXISTS " + c.Qualified(t.Physical)}, Lock: "ACCESS EXCLUSIVE (on a table no version uses yet)"})
		for n, ix := range t.Indexes {
			delete(c.names, n)
			if ix.Constraint != "" {
				delete(c.names, ix.Constraint)
			}
		}
		for n := range t.Constraints {
			delete(c.names, n)
		}
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
