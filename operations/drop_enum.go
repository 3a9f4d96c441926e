package operations

import (
	"fmt"
	"strings"

	"github.com/onlinepg/online/schema"
)

// DropEnum drops an enum type at complete, when the old version, which may
// still use it, is gone. It is refused while anything that outlives the
// old version uses the type: a failed DROP at complete could not be rolled
// back.
type DropEnum struct {
	Name string `yaml:"name"`
}

var _ Operation = (*DropEnum)(nil)

func (op *DropEnum) Compile(c *Compiler) error {
	if err := Required("name", op.Name); err != nil {
		return err
	}
	if _, ok := c.Schema.Enums[op.Name]; !ok {
		if _, old := c.Old.Enums[op.Name]; old {
			return errField("name", "enum %q is no longer in the new version (an earlier operation of this migration dropped it)", op.Name)
		}
		return errField("name", "enum %q does not exist in schema %q", op.Name, c.Opts.Schema)
	}
	if _, old := c.Old.Enums[op.Name]; !old {
		return errField("name", "enum %q is created by this migration; remove both operations instead", op.Name)
	}
	// Columns of the new version, those this migration adds included.
	for _, tn := range c.Schema.TableNames() {
		t := c.Schema.Tables[tn]
		for _, col := range t.Columns {
			if typeIsNamed(col.Type, c.Opts.Schema, op.Name) {
				return errField("name", "column %q of table %q uses enum %q in the new version; change its type first (alter_column), and drop the enum in a later migration", col.Name, t.Name, op.Name)
			}
		}
	}
	// Everything else the catalog says depends on it.
	for _, u := range c.Old.EnumUses[op.Name] {
		if err := c.enumUseGone(op.Name, u); err != nil {
			return err
		}
	}
	c.Contract(Step{
		Do:   fmt.Sprintf("drop enum %s", op.Name),
		SQL:  []string{"DROP TYPE " + c.Qualified(op.Name)},
		Lock: "ACCESS EXCLUSIVE on the type (no table lock)",
	})
	delete(c.Schema.Enums, op.Name)
	return nil
}

// enumUseGone returns nil when the object u is gone by the time the enum
// is dropped: the previous version's views (dropped first at complete),
// or a column (and its default, constraints, indexes) that an earlier
// operation of this migration drops at complete. Otherwise it says what
// still uses the enum.
func (c *Compiler) enumUseGone(enum string, u schema.TypeUse) error {
	still := func(why string) error {
		return errField("name", "enum %q is still used by %s%s; drop the enum in a later migration, after nothing uses it", enum, u.Object, why)
	}
	if c.Opts.Parent != "" && u.Schema == c.Opts.Parent {
		return nil
	}
	if !u.Table {
		return still("")
	}
	var t *schema.Table
	for _, nt := range c.Schema.Tables {
		if nt.Physical == u.Relation && !nt.Created {
			t = nt
		}
	}
	ot := c.oldTableByPhysical(u.Relation)
	if t == nil || ot == nil {
		return nil // the table is dropped earlier in the contract
	}
	var cols []string // the physical columns the object goes with
	switch {
	case u.Column != "":
		cols = []string{u.Column}
	case u.Constraint != "" && ot.Constraints[u.Constraint] != nil:
		cols = ot.Constraints[u.Constraint].Columns
	case u.Index != "" && ot.Indexes[u.Index] != nil:
		cols = ot.Indexes[u.Index].Columns
	}
	for _, p := range cols {
		for _, r := range c.rewrites {
			if r.table == t && !r.added && r.oldPhys == p {
				// The old column is dropped when the new one is swapped
				// in, at the very end of complete: after this drop.
				return still(fmt.Sprintf(" (the old column %q, which this migration converts, is dropped only at the end of complete)", p))
			}
		}
		if t.ColumnByPhysical(p) == nil {
			// Dropped by an earlier drop_column: PostgreSQL drops the
			// column's default, constraints and indexes with it.
			return nil
		}
	}
	return still("")
}

func (c *Compiler) oldTableByPhysical(name string) *schema.Table {
	return c.oldPhysical(name)
}

// typeIsNamed reports whether the type text typ (as a column's type is
// written: format_type output, or a migration file's) names the type name
// of schemaName, or an array of it. An unqualified name counts, whatever
// the search path.
func typeIsNamed(typ, schemaName, name string) bool {
	s := strings.TrimSpace(typ)
	for {
		switch {
		case strings.HasSuffix(s, "]"):
			i := strings.LastIndex(s, "[")
			if i < 0 {
				return false
			}
			s = strings.TrimSpace(s[:i])
		case len(s) > 6 && strings.EqualFold(s[len(s)-6:], " array"):
			s = strings.TrimSpace(s[:len(s)-6])
		default:
			parts, ok := splitQualified(s)
			if !ok || len(parts) == 0 || parts[len(parts)-1] != name {
				return false
			}
			return len(parts) == 1 || parts[len(parts)-2] == schemaName
		}
	}
}

// splitQualified splits a possibly qualified SQL name into its parts,
// unquoting quoted parts and folding the others to lower case.
func splitQualified(s string) ([]string, bool) {
	var parts []string
	for {
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for {
				j := strings.IndexByte(s[i:], '"')
				if j < 0 {
					return nil, false
				}
				b.WriteString(s[i : i+j])
				i += j + 1
				if i < len(s) && s[i] == '"' { // "" is a quote inside
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			parts = append(parts, b.String())
			s = s[i:]
		} else {
			j := strings.IndexByte(s, '.')
			if j < 0 {
				j = len(s)
			}
			p := s[:j]
			if p == "" || strings.ContainsAny(p, " ()\"',") {
				return nil, false
			}
			parts = append(parts, strings.ToLower(p))
			s = s[j:]
		}
		if s == "" {
			return parts, true
		}
		if s[0] != '.' {
			return nil, false
		}
		s = s[1:]
	}
}

func (op *DropEnum) invert(*schema.Schema) (map[string]any, string) {
	return nil, "drops an enum type: its values are not in the migration; recreate it with create_enum"
}
