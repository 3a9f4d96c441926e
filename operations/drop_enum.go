package operations

// DropEnum is the drop_enum operation. Not built yet: it is rejected at compile.
type DropEnum struct {
	Name string `yaml:"name"`
}

var _ Operation = (*DropEnum)(nil)

func (op *DropEnum) Compile(c *Compiler) error {
	return errNotBuilt("drop_enum")
}
