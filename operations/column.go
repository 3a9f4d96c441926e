package operations

import (
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// Column is a column definition of create_table and add_column.
type Column struct {
	Name       string      `yaml:"name"`
	Type       string      `yaml:"type"`
	Nullable   *bool       `yaml:"nullable"`
	Unique     bool        `yaml:"unique"`
	PK         bool        `yaml:"pk"`
	Default    *string     `yaml:"default"`
	Comment    *string     `yaml:"comment"`
	Check      *Check      `yaml:"check"`
	References *ForeignKey `yaml:"references"`
	Generated  *Generated  `yaml:"generated"`
	// Collation (ext) is the column's collation, a name looked up as
	// COLLATE looks it up (pg_catalog's, then the migrated schema's).
	Collation string `yaml:"collation"`
}

// Check is a named check constraint.
type Check struct {
	Name       string `yaml:"name"`
	Constraint string `yaml:"constraint"`
	NoInherit  bool   `yaml:"no_inherit"`
}

// ForeignKey is a single-column foreign key.
type ForeignKey struct {
	Name              string `yaml:"name"`
	Table             string `yaml:"table"`
	Column            string `yaml:"column"`
	OnDelete          string `yaml:"on_delete"`
	OnUpdate          string `yaml:"on_update"`
	MatchType         string `yaml:"match_type"`
	Deferrable        bool   `yaml:"deferrable"`
	InitiallyDeferred bool   `yaml:"initially_deferred"`
}

// Generated makes a column generated or an identity.
type Generated struct {
	Expression string    `yaml:"expression"`
	Identity   *Identity `yaml:"identity"`
}

// Identity is an identity column's definition.
type Identity struct {
	UserSpecifiedValues string `yaml:"user_specified_values"`
	SequenceOptions     string `yaml:"sequence_options"`
}

// nullable reports whether the column accepts NULL. As in pgroll, a column
// that does not say `nullable: true` is NOT NULL: pgroll's files must build
// the same schema here.
func (col *Column) nullable() bool { return col.Nullable != nil && *col.Nullable }

// validate checks the fields that need no catalog; field is the path prefix.
func (col *Column) validate(field string) error {
	if err := ValidName(field+".name", col.Name); err != nil {
		return err
	}
	if col.Default != nil && strings.TrimSpace(*col.Default) == "" {
		return errField(field+".default", "is empty; give an SQL expression, or leave the field out")
	}
	if strings.TrimSpace(col.Type) == "" {
		return errField(field+".type", "is required")
	}
	if col.Collation != "" {
		if err := ValidName(field+".collation", col.Collation); err != nil {
			return err
		}
	}
	if col.Check != nil {
		if col.Check.Name == "" {
			return errField(field+".check.name", "is required")
		}
		if col.Check.Constraint == "" {
			return errField(field+".check.constraint", "is required")
		}
	}
	if r := col.References; r != nil {
		if r.Name == "" {
			return errField(field+".references.name", "is required")
		}
		if r.Table == "" {
			return errField(field+".references.table", "is required")
		}
		if r.Column == "" {
			return errField(field+".references.column", "is required")
		}
		for _, f := range []struct{ name, v string }{{"on_delete", r.OnDelete}, {"on_update", r.OnUpdate}} {
			if _, err := refAction(f.v); err != nil {
				return errField(field+".references."+f.name, "%v", err)
			}
		}
		if _, err := matchType(r.MatchType); err != nil {
			return errField(field+".references.match_type", "%v", err)
		}
	}
	if g := col.Generated; g != nil {
		if (g.Expression == "") == (g.Identity == nil) {
			return errField(field+".generated", "give exactly one of expression and identity")
		}
		if g.Identity != nil {
			switch strings.ToUpper(g.Identity.UserSpecifiedValues) {
			case "", "ALWAYS", "BY DEFAULT":
			default:
				return errField(field+".generated.identity.user_specified_values", "must be ALWAYS or BY DEFAULT, got %q", g.Identity.UserSpecifiedValues)
			}
		}
		if col.Default != nil {
			return errField(field+".default", "a generated column cannot also have a default")
		}
	}
	return nil
}

func refAction(v string) (string, error) {
	switch u := strings.ToUpper(strings.TrimSpace(v)); u {
	case "":
		return "", nil
	case "NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT":
		return u, nil
	default:
		return "", fmt.Errorf("must be one of NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT; got %q", v)
	}
}

func matchType(v string) (string, error) {
	switch u := strings.ToUpper(strings.TrimSpace(v)); u {
	case "", "SIMPLE", "FULL":
		return u, nil
	default:
		return "", fmt.Errorf("must be SIMPLE or FULL, got %q", v)
	}
}

// fkClause renders "REFERENCES t (c) MATCH .. ON DELETE .. ON UPDATE .. DEFERRABLE ..",
// resolving the referenced table and column through the new version.
func (c *Compiler) fkClause(field string, r *ForeignKey) (string, error) {
	t, err := c.Table(field+".table", r.Table)
	if err != nil {
		return "", err
	}
	col, err := c.Column(field+".column", t, r.Column)
	if err != nil {
		return "", err
	}
	return renderFK(fkSpec{field: field, refTable: c.Qualified(t.Physical), refCols: []string{col.Physical},
		match: r.MatchType, onDelete: r.OnDelete, onUpdate: r.OnUpdate, deferrable: r.Deferrable, initiallyDeferred: r.InitiallyDeferred})
}

// definition renders the column for CREATE TABLE or ADD COLUMN under the
// physical name phys. Constraints that could block on a table with data
// (unique, check, references) are left to the caller unless inline.
func (c *Compiler) definition(field string, col *Column, phys string, inline bool) (string, error) {
	var b strings.Builder
	b.WriteString(pg.Ident(phys) + " " + col.Type)
	if col.Collation != "" {
		b.WriteString(" COLLATE " + pg.Ident(col.Collation))
	}
	if g := col.Generated; g != nil {
		if g.Expression != "" {
			fmt.Fprintf(&b, " GENERATED ALWAYS AS (%s) STORED", g.Expression)
		} else {
			kind := strings.ToUpper(g.Identity.UserSpecifiedValues)
			if kind == "" {
				kind = "BY DEFAULT"
			}
			fmt.Fprintf(&b, " GENERATED %s AS IDENTITY", kind)
			if g.Identity.SequenceOptions != "" {
				fmt.Fprintf(&b, " (%s)", g.Identity.SequenceOptions)
			}
		}
	}
	if col.Default != nil {
		b.WriteString(" DEFAULT " + *col.Default)
	}
	if !col.nullable() && !col.PK {
		b.WriteString(" NOT NULL")
	}
	if inline {
		if col.Unique && !col.PK {
			b.WriteString(" UNIQUE")
		}
		if col.Check != nil {
			fmt.Fprintf(&b, " CONSTRAINT %s CHECK (%s)", pg.Ident(col.Check.Name), col.Check.Constraint)
			if col.Check.NoInherit {
				b.WriteString(" NO INHERIT")
			}
		}
		if col.References != nil {
			fk, err := c.fkClause(field+".references", col.References)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, " CONSTRAINT %s %s", pg.Ident(col.References.Name), fk)
		}
	}
	return b.String(), nil
}

// modelColumn is the schema model's view of a column definition.
func modelColumn(col *Column, phys string) *schema.Column {
	mc := &schema.Column{Name: col.Name, Physical: phys, Type: col.Type, Nullable: col.nullable() && !col.PK, Unique: col.Unique || col.PK, Comment: col.Comment, Collation: col.Collation}
	if col.Default != nil {
		d := *col.Default
		mc.Default = &d
	}
	if g := col.Generated; g != nil {
		if g.Expression != "" {
			mc.Generated = true
		} else if strings.EqualFold(g.Identity.UserSpecifiedValues, "ALWAYS") {
			mc.Identity = "a"
		} else {
			mc.Identity = "d"
		}
	}
	return mc
}

func commentSQL(kind, target string, comment *string) string {
	if comment == nil {
		return fmt.Sprintf("COMMENT ON %s %s IS NULL", kind, target)
	}
	return fmt.Sprintf("COMMENT ON %s %s IS %s", kind, target, pg.Literal(*comment))
}
