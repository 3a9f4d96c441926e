package operations

// CreateConstraint adds a constraint over one or more columns without
// blocking. Not built yet.
type CreateConstraint struct {
	Table             string            `yaml:"table"`
	Name              string            `yaml:"name"`
	Type              string            `yaml:"type"`
	Columns           []string          `yaml:"columns"`
	Check             string            `yaml:"check"`
	References        *TableReference   `yaml:"references"`
	NoInherit         bool              `yaml:"no_inherit"`
	NullsNotDistinct  bool              `yaml:"nulls_not_distinct"`
	Deferrable        bool              `yaml:"deferrable"`
	InitiallyDeferred bool              `yaml:"initially_deferred"`
	IndexParameters   *IndexParameters  `yaml:"index_parameters"`
	Up                map[string]string `yaml:"up"`
	Down              map[string]string `yaml:"down"`
}

var _ Operation = (*CreateConstraint)(nil)

func (op *CreateConstraint) Compile(c *Compiler) error { return errNotBuilt("create_constraint") }

// DropConstraint is the older single-column form of dropping a constraint.
type DropConstraint struct {
	Table string `yaml:"table"`
	Name  string `yaml:"name"`
	Up    string `yaml:"up"`
	Down  string `yaml:"down"`
}

var _ Operation = (*DropConstraint)(nil)

func (op *DropConstraint) Compile(c *Compiler) error { return errNotBuilt("drop_constraint") }

// DropMultiColumnConstraint drops a constraint over several columns.
type DropMultiColumnConstraint struct {
	Table string            `yaml:"table"`
	Name  string            `yaml:"name"`
	Up    map[string]string `yaml:"up"`
	Down  map[string]string `yaml:"down"`
}

var _ Operation = (*DropMultiColumnConstraint)(nil)

func (op *DropMultiColumnConstraint) Compile(c *Compiler) error {
	return errNotBuilt("drop_multicolumn_constraint")
}
