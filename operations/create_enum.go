package operations

// CreateEnum is the create_enum operation. Not built yet: it is rejected at compile.
type CreateEnum struct {
	Name   string   `yaml:"name"`
	Values []string `yaml:"values"`
}

var _ Operation = (*CreateEnum)(nil)

func (op *CreateEnum) Compile(c *Compiler) error {
	return errNotBuilt("create_enum")
}
