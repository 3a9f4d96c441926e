package operations

import "github.com/onlinepg/online/schema"

// DropMultiColumnConstraint drops a constraint over several columns, each
// rewritten with its up and down.
type DropMultiColumnConstraint struct {
	Table string            `yaml:"table"`
	Name  string            `yaml:"name"`
	Up    map[string]string `yaml:"up"`
	Down  map[string]string `yaml:"down"`
}

var _ Operation = (*DropMultiColumnConstraint)(nil)

func (op *DropMultiColumnConstraint) Compile(c *Compiler) error {
	t, _, err := c.constraintOf(op.Table, op.Name)
	if err != nil {
		return err
	}
	return c.dropConstraint(t, op.Name, op.Up, op.Down)
}

func (op *DropMultiColumnConstraint) table() string { return op.Table }

func (op *DropMultiColumnConstraint) sqlFields() []sqlField { return conversionsSQL(op.Up, op.Down) }

func (op *DropMultiColumnConstraint) upDown() map[string]string {
	return prefixed(prefixed(map[string]string{}, "up", op.Up), "down", op.Down)
}

func (op *DropMultiColumnConstraint) exprFields() []exprField { return upDownExprs(op.Up, op.Down) }

func (op *DropMultiColumnConstraint) invert(*schema.Schema) (map[string]any, string) {
	return nil, dropsConstraint
}
