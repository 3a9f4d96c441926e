package operations

// AddEnumValue is the add_enum_value operation. Not built yet: it is rejected at compile.
type AddEnumValue struct {
	Enum   string `yaml:"enum"`
	Value  string `yaml:"value"`
	Before string `yaml:"before"`
	After  string `yaml:"after"`
}

var _ Operation = (*AddEnumValue)(nil)

func (op *AddEnumValue) Compile(c *Compiler) error {
	return errNotBuilt("add_enum_value")
}
