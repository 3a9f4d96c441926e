package operations

import (
	"fmt"
	"github.com/onlinepg/online/schema"
)

// DropIndex drops an index CONCURRENTLY at complete; until then the old
// version's queries keep their plans.
type DropIndex struct {
	Name string `yaml:"name"`
}

var _ Operation = (*DropIndex)(nil)

func (op *DropIndex) Compile(c *Compiler) error {
	if err := Required("name", op.Name); err != nil {
		return err
	}
	tableName, ok := c.Schema.Indexes[op.Name]
	if !ok {
		return errField("name", "index %q does not exist in schema %q", op.Name, c.Opts.Schema)
	}
	t := c.Schema.Tables[tableName]
	if t != nil {
		if ix := t.Indexes[op.Name]; ix != nil && ix.Constraint != "" {
			return errField("name", "index %q belongs to constraint %q of table %q; drop the constraint instead", op.Name, ix.Constraint, t.Name)
		}
		delete(t.Indexes, op.Name)
		c.cancelRebuild(t, "index "+op.Name)
	}
	delete(c.Schema.Indexes, op.Name)
	if t != nil && t.Partitioned {
		// PostgreSQL cannot drop an index of a partitioned table
		// concurrently. A plain DROP INDEX takes ACCESS EXCLUSIVE on the
		// partition tree, but removes catalog entries and files only, so
		// it holds the lock for an instant, under lock_timeout.
		c.Contract(Step{
			Do:   fmt.Sprintf("drop index %s of partitioned table %s (with the partitions' indexes attached to it)", op.Name, t.Name),
			SQL:  []string{"DROP INDEX IF EXISTS " + c.Qualified(op.Name)},
			Lock: "ACCESS EXCLUSIVE on the partition tree (catalog only, instant)",
		})
		return nil
	}
	// The contract runs in one transaction, and DROP INDEX CONCURRENTLY
	// cannot: inside it the index is renamed out of the way, and dropped
	// concurrently once the contract has committed.
	inTx, after := DropIndexLater(c.Opts.Schema, op.Name, c.plan.Name)
	c.Contract(Step{
		Do:    fmt.Sprintf("drop index %s (renamed in the contract, dropped CONCURRENTLY after it commits)", op.Name),
		SQL:   []string{inTx},
		After: []string{after},
		Lock:  "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
	})
	return nil
}

func (op *DropIndex) invert(*schema.Schema) (map[string]any, string) {
	return nil, "drops an index: its definition is not in the migration; recreate it with create_index"
}
