package operations

// RenameConstraint is the rename_constraint operation. Not built yet: it is rejected at compile.
type RenameConstraint struct {
	Table string `yaml:"table"`
	From  string `yaml:"from"`
	To    string `yaml:"to"`
}

var _ Operation = (*RenameConstraint)(nil)

func (op *RenameConstraint) Compile(c *Compiler) error {
	return errNotBuilt("rename_constraint")
}
