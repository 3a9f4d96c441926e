package operations

import (
	"fmt"
	"slices"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// AddEnumValue adds a value to an enum at start. Both versions can read it
// (an enum value is data, not shape), and it cannot be taken back:
// PostgreSQL has no way to remove a value from an enum, so rollback leaves
// it, and starting the migration again finds it in place.
type AddEnumValue struct {
	Enum   string `yaml:"enum"`
	Value  string `yaml:"value"`
	Before string `yaml:"before"`
	After  string `yaml:"after"`
}

var _ Operation = (*AddEnumValue)(nil)

func (op *AddEnumValue) Compile(c *Compiler) error {
	if err := Required("enum", op.Enum); err != nil {
		return err
	}
	labels, ok := c.Schema.Enums[op.Enum]
	if !ok {
		if _, old := c.Old.Enums[op.Enum]; old {
			return errField("enum", "enum %q is no longer in the new version (an earlier operation of this migration dropped it)", op.Enum)
		}
		return errField("enum", "enum %q does not exist in schema %q", op.Enum, c.Opts.Schema)
	}
	if err := Required("value", op.Value); err != nil {
		return err
	}
	if err := checkLabel("value", op.Value); err != nil {
		return err
	}
	if op.Before != "" && op.After != "" {
		return errField("after", "give before or after, not both")
	}
	field, neighbour, where := "", "", ""
	switch {
	case op.Before != "":
		field, neighbour, where = "before", op.Before, "BEFORE"
	case op.After != "":
		field, neighbour, where = "after", op.After, "AFTER"
	}
	at := len(labels) // where the value goes in the model
	if neighbour != "" {
		i := slices.Index(labels, neighbour)
		if i < 0 {
			return errField(field, "enum %q has no value %q", op.Enum, neighbour)
		}
		at = i
		if where == "AFTER" {
			at = i + 1
		}
	}
	if i := slices.Index(labels, op.Value); i >= 0 {
		// A rollback leaves the value (see above), so a migration started
		// again finds it: that is fine where it already stands as asked.
		if (where == "BEFORE" && at != i+1) || (where == "AFTER" && at != i) {
			return errField("value", "enum %q already has the value %q, and not %s %q; PostgreSQL cannot move an enum value", op.Enum, op.Value, field, neighbour)
		}
		at = -1
	}

	stmt := fmt.Sprintf("ALTER TYPE %s ADD VALUE IF NOT EXISTS %s", c.Qualified(op.Enum), pg.Literal(op.Value))
	if neighbour != "" {
		stmt += fmt.Sprintf(" %s %s", where, pg.Literal(neighbour))
	}
	var irreversible string
	if at >= 0 {
		// Said in the plan, at start, and after a rollback or a failed
		// start (left in place); not when the value is there already.
		irreversible = fmt.Sprintf("operation %d adds value %q to enum %s: PostgreSQL cannot remove an enum value, so rollback leaves it", c.op, op.Value, op.Enum)
	}
	c.Expand(Step{
		Irreversible: irreversible,
		Do:           fmt.Sprintf("add value %q to enum %s (rollback cannot remove it: PostgreSQL has no way to drop an enum value; it stays, unused)", op.Value, op.Enum),
		// IF NOT EXISTS makes the step safe to run again after a crash,
		// and after a rollback that left the value.
		SQL: []string{stmt},
		// Outside a transaction: before PostgreSQL 12, ADD VALUE cannot
		// run in a transaction block; since, a value added in a
		// transaction cannot be used until it commits, and the steps
		// after this one may use it.
		NoTx: true,
		Lock: "EXCLUSIVE on the type only (no table lock)",
	})
	if at >= 0 {
		c.Schema.Enums[op.Enum] = slices.Insert(slices.Clone(labels), at, op.Value)
	}
	return nil
}

func (op *AddEnumValue) invert(*schema.Schema) (map[string]any, string) {
	return nil, "PostgreSQL cannot remove a value from an enum type"
}
