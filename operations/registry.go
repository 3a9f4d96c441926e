package operations

import (
	"fmt"
	"maps"
	"slices"
)

// Operation is one entry of a migration's operations list.
type Operation interface {
	// Compile checks the operation against c.Schema (the new version as the
	// operations before it left it), changes that model, and adds the steps
	// that carry it out to c's plan.
	Compile(c *Compiler) error
}

// registry maps each operation name of the file format to a constructor.
// Parsing, validation messages and docs all read it, so they cannot drift.
var registry = map[string]func() Operation{
	"create_table":                func() Operation { return &CreateTable{} },
	"add_column":                  func() Operation { return &AddColumn{} },
	"alter_column":                func() Operation { return &AlterColumn{} },
	"rename_column":               func() Operation { return &RenameColumn{} },
	"drop_column":                 func() Operation { return &DropColumn{} },
	"rename_table":                func() Operation { return &RenameTable{} },
	"drop_table":                  func() Operation { return &DropTable{} },
	"create_index":                func() Operation { return &CreateIndex{} },
	"drop_index":                  func() Operation { return &DropIndex{} },
	"sql":                         func() Operation { return &RawSQL{} },
	"create_constraint":           func() Operation { return &CreateConstraint{} },
	"drop_constraint":             func() Operation { return &DropConstraint{} },
	"drop_multicolumn_constraint": func() Operation { return &DropMultiColumnConstraint{} },
	"rename_constraint":           func() Operation { return &RenameConstraint{} },
	"set_replica_identity":        func() Operation { return &SetReplicaIdentity{} },
	"create_enum":                 func() Operation { return &CreateEnum{} },
	"add_enum_value":              func() Operation { return &AddEnumValue{} },
	"drop_enum":                   func() Operation { return &DropEnum{} },
	"update_rows":                 func() Operation { return &UpdateRows{} },
}

// Names lists the operation names online accepts, sorted.
func Names() []string {
	return slices.Sorted(maps.Keys(registry))
}

// kindOf returns the file-format name of an operation value.
func kindOf(op Operation) string {
	for name, mk := range registry {
		if sameType(mk(), op) {
			return name
		}
	}
	return ""
}

// errNotBuilt rejects an operation of the format that online does not run yet.
func errNotBuilt(kind string) error {
	return fmt.Errorf("operation %q is part of the file format but not supported by this version of online yet", kind)
}
