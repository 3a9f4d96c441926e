package operations

import (
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// RenameConstraint renames a constraint of a table. Constraint names are not
// part of what a version's views serve, so the old version keeps the old
// name until complete, when the rename happens (an instant catalog change).
// A unique, primary key or exclusion constraint's index is renamed with it.
type RenameConstraint struct {
	Table string `yaml:"table"`
	From  string `yaml:"from"`
	To    string `yaml:"to"`
}

var _ Operation = (*RenameConstraint)(nil)

func (op *RenameConstraint) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	if err := Required("from", op.From); err != nil {
		return err
	}
	con := t.Constraints[op.From]
	if con == nil {
		return errField("from", "table %q has no constraint %q", t.Name, op.From)
	}
	if err := ValidName("to", op.To); err != nil {
		return err
	}
	if op.To == op.From {
		return errField("to", "is the constraint's current name")
	}
	if t.Constraints[op.To] != nil {
		return errField("to", "table %q already has a constraint %q", t.Name, op.To)
	}
	// A constraint with an index gives the index its name, and index names
	// are per schema; ReserveName checks those and the names this
	// migration has planned.
	if err := c.ReserveName("to", op.To); err != nil {
		return err
	}
	if c.renamePending(t, op.From, op.To) {
		return nil
	}
	// A column rewrite rebuilds the constraints of the old column under
	// temporary names and, at the end of complete, gives them their
	// names: the rename goes there, and the old constraint goes with the
	// old column.
	rebuilt := c.renameRebuilt(t, op.From, op.To)
	if !rebuilt {
		for _, r := range c.rewrites {
			if r.table == t && !r.added && containsString(con.Columns, r.oldPhys) {
				return errField("from", "constraint %q is on column %q, which an earlier operation of this migration rewrites; rename the constraint before that operation, or in another migration", op.From, r.col.Name)
			}
		}
		c.Contract(Step{
			Do:   fmt.Sprintf("rename constraint %s of %s to %s", op.From, t.Name, op.To),
			SQL:  []string{fmt.Sprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", c.Qualified(c.TableNow(t)), pg.Ident(op.From), pg.Ident(op.To))},
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
	}

	delete(t.Constraints, op.From)
	con.Name = op.To
	t.Constraints[op.To] = con
	// The old name stays taken until complete renames it.
	c.names[op.From] = true
	for key, ix := range t.Indexes {
		if ix.Constraint != op.From {
			continue
		}
		// PostgreSQL renames the constraint's index along with it; until
		// complete the index keeps its name in the database (a rebuilt
		// one is built under a temporary name and takes the new one).
		if ix.Physical == "" && !rebuilt {
			ix.Physical = ix.Name
		}
		delete(t.Indexes, key)
		delete(c.Schema.Indexes, key)
		ix.Name, ix.Constraint = op.To, op.To
		t.Indexes[op.To] = ix
		c.Schema.Indexes[op.To] = t.Name
	}
	return nil
}

func (op *RenameConstraint) invert(*schema.Schema) (map[string]any, string) {
	return op1("rename_constraint", map[string]any{"table": op.Table, "from": op.To, "to": op.From}), ""
}

// renameRebuilt gives the rebuild of constraint from (or of its index) that
// an earlier rewrite of the migration planned the name to instead, and
// reports whether there was one.
func (c *Compiler) renameRebuilt(t *schema.Table, from, to string) bool {
	keys := []string{t.Physical + "\x00constraint " + from, t.Physical + "\x00index " + from}
	for n, ix := range t.Indexes {
		if ix.Constraint == from {
			keys = append(keys, t.Physical+"\x00index "+n)
		}
	}
	found := false
	for _, key := range keys {
		rb := c.rebuilds[key]
		if rb == nil || rb.r == nil {
			continue
		}
		found = true
		for i, s := range rb.swaps {
			renamed := strings.ReplaceAll(s, pg.Ident(from), pg.Ident(to))
			for j, rs := range rb.r.swaps {
				if rs == s {
					rb.r.swaps[j] = renamed
				}
			}
			rb.swaps[i] = renamed
		}
		if rb.name == from {
			rb.name = to
		}
	}
	return found
}
