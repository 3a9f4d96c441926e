package operations

import (
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// CreateEnum creates an enum type in the migrated schema at start. Nothing
// uses it yet, so the old version is not affected; rollback drops it.
type CreateEnum struct {
	Name   string   `yaml:"name"`
	Values []string `yaml:"values"`
}

var _ Operation = (*CreateEnum)(nil)

// maxLabel is PostgreSQL's limit on an enum label (NAMEDATALEN - 1 bytes).
const maxLabel = 63

func (op *CreateEnum) Compile(c *Compiler) error {
	if err := ValidName("name", op.Name); err != nil {
		return err
	}
	if err := c.typeNameFree("name", op.Name); err != nil {
		return err
	}
	if len(op.Values) == 0 {
		return errField("values", "is required: an enum needs at least one value")
	}
	seen := map[string]bool{}
	labels := make([]string, len(op.Values))
	for i, v := range op.Values {
		if err := checkLabel(fmt.Sprintf("values[%d]", i), v); err != nil {
			return err
		}
		if seen[v] {
			return errField(fmt.Sprintf("values[%d]", i), "value %q is listed twice", v)
		}
		seen[v] = true
		labels[i] = pg.Literal(v)
	}
	typ := c.Qualified(op.Name)
	c.Expand(Step{
		Do:   fmt.Sprintf("create enum %s (%d values)", op.Name, len(op.Values)),
		SQL:  []string{fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", typ, strings.Join(labels, ", "))},
		Undo: []string{"DROP TYPE IF EXISTS " + typ},
		Lock: "none on tables",
	})
	c.Schema.Enums[op.Name] = append([]string(nil), op.Values...)
	return nil
}

// typeNameFree refuses a type name that is taken in the database (by any
// type, a table's row type included) or by a table or enum of the new
// version: a table renamed at complete would collide with the type then.
func (c *Compiler) typeNameFree(field, name string) error {
	if _, ok := c.Schema.Enums[name]; ok {
		return errField(field, "enum %q already exists in schema %q", name, c.Opts.Schema)
	}
	if kind, ok := c.Old.Types[name]; ok {
		what := map[string]string{"c": "a composite type (or a table's row type)", "d": "a domain", "e": "an enum", "r": "a range type", "m": "a multirange type", "b": "a base type", "p": "a pseudo-type"}[kind]
		if what == "" {
			what = "a type"
		}
		if kind == "e" {
			return errField(field, "enum %q is still in the database until the migration that drops it completes; choose another name or create it in a later migration", name)
		}
		return errField(field, "the name %q is taken by %s in schema %q", name, what, c.Opts.Schema)
	}
	for _, t := range c.Schema.Tables {
		if t.Name == name || t.Physical == name {
			return errField(field, "the name %q is taken by the row type of table %q", name, t.Name)
		}
	}
	return nil
}

// checkLabel validates one enum value.
func checkLabel(field, v string) error {
	if v == "" {
		return errField(field, "is empty; an enum value needs at least one character")
	}
	if len(v) > maxLabel {
		return errField(field, "value %q is %d bytes long; PostgreSQL allows %d", v, len(v), maxLabel)
	}
	return nil
}

func (op *CreateEnum) createdType() string { return op.Name }

func (op *CreateEnum) invert(*schema.Schema) (map[string]any, string) {
	return op1("drop_enum", map[string]any{"name": op.Name}), ""
}
