package operations

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
)

// AlterColumn changes one column: any combination of name, type, nullable,
// default, unique, check, references and comment. Changes that the new
// version alone must see and that need different data (type, NOT NULL, or
// anything with "up") are made on a copy of the column filled by a backfill
// and kept in sync by triggers; the rest take the cheapest correct path.
type AlterColumn struct {
	Table      string      `yaml:"table"`
	Column     string      `yaml:"column"`
	Name       string      `yaml:"name"`
	Type       string      `yaml:"type"`
	Nullable   *bool       `yaml:"nullable"`
	Default    yaml.Node   `yaml:"default"`
	Comment    yaml.Node   `yaml:"comment"`
	Unique     *UniqueDef  `yaml:"unique"`
	Check      *Check      `yaml:"check"`
	References *ForeignKey `yaml:"references"`
	Up         string      `yaml:"up"`
	Down       string      `yaml:"down"`
	// Collation (ext) gives the column a collation ("default": its
	// type's); the column is rewritten, as for a type change.
	Collation string `yaml:"collation"`
}

// UniqueDef names the unique constraint alter_column adds.
type UniqueDef struct {
	Name string `yaml:"name"`
}

var _ Operation = (*AlterColumn)(nil)

// nodeValue reads a field that can be absent, null (drop) or a value.
func nodeValue(n yaml.Node) (set bool, value *string) {
	if n.Kind == 0 {
		return false, nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true, nil
	}
	v := n.Value
	return true, &v
}

func (op *AlterColumn) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	col, err := c.Column("column", t, op.Column)
	if err != nil {
		return err
	}
	defSet, def := nodeValue(op.Default)
	comSet, com := nodeValue(op.Comment)
	if op.Default.Kind != 0 && op.Default.Kind != yaml.ScalarNode {
		return errField("default", "must be an SQL expression (a string) or null")
	}
	if op.Comment.Kind != 0 && op.Comment.Kind != yaml.ScalarNode {
		return errField("comment", "must be a string or null")
	}
	if op.Name == "" && op.Type == "" && op.Nullable == nil && !defSet && !comSet && op.Unique == nil && op.Check == nil && op.References == nil && op.Up == "" && op.Down == "" && op.Collation == "" {
		return errField("column", "alter_column changes nothing: give at least one of name, type, nullable, default, comment, unique, check, references, collation")
	}
	if op.Collation != "" {
		if err := ValidName("collation", op.Collation); err != nil {
			return err
		}
	}
	if op.Check != nil && (op.Check.Name == "" || op.Check.Constraint == "") {
		return errField("check", "needs both name and constraint")
	}
	if op.Unique != nil && op.Unique.Name == "" {
		return errField("unique.name", "is required")
	}
	if r := op.References; r != nil {
		tmp := Column{Name: col.Name, Type: "x", References: r}
		if err := tmp.validate("alter"); err != nil {
			var fe *fieldErr
			if ok := asFieldErr(err, &fe); ok {
				return errField(fe.field[len("alter."):], "%v", fe.err)
			}
			return err
		}
	}
	if op.Name != "" {
		if err := ValidName("name", op.Name); err != nil {
			return err
		}
	}
	if defSet && def != nil && strings.TrimSpace(*def) == "" {
		return errField("default", "is empty; give an SQL expression, or null to drop the default")
	}
	if op.Name != "" && op.Name != col.Name && t.Column(op.Name) != nil {
		return errField("name", "table %q already has a column %q", t.Name, op.Name)
	}
	collationChange := op.Collation != "" && op.Collation != col.Collation && !(strings.EqualFold(op.Collation, "default") && col.Collation == "")
	needsRewrite := op.Type != "" || (op.Nullable != nil && !*op.Nullable && col.Nullable) || op.Up != "" || collationChange
	if needsRewrite {
		if err := refuseMaintained("column", t, col, "rewriting"); err != nil {
			return err
		}
		spec := rewriteSpec{newType: op.Type, up: op.Up, down: op.Down, rename: op.Name, nullable: op.Nullable, defSet: defSet, def: def, collation: op.Collation}
		phys, err := c.alterRewrite(t, col, spec)
		if err != nil {
			return err
		}
		if err := c.alterConstraints(t, col, op, phys, func() error { return concurrentIndexAllowed("unique", t) }); err != nil {
			return err
		}
	} else if err := c.alterInPlace(t, col, op, defSet, def); err != nil {
		return err
	}
	if comSet {
		col.Comment = com
		if r := c.findRewrite(t, col); r != nil {
			// The swap at complete gives the new column the comment it
			// carries (the old column's until now); a null drops it.
			r.comment = com
		} else {
			c.Contract(Step{
				Do:   fmt.Sprintf("set the comment of %s.%s", t.Name, col.Name),
				SQL:  []string{commentSQL("COLUMN", c.Qualified(c.TableNow(t))+"."+pg.Ident(c.ColumnNow(t, col.Physical)), com)},
				Lock: "SHARE UPDATE EXCLUSIVE (instant)",
			})
		}
	}
	if op.Name != "" && op.Name != col.Name {
		rn := &RenameColumn{Table: t.Name, From: col.Name, To: op.Name}
		if err := rn.Compile(c); err != nil {
			return err
		}
	}
	return nil
}

// alterInPlace handles changes that need no copy of the column.
func (c *Compiler) alterInPlace(t *schema.Table, col *schema.Column, op *AlterColumn, defSet bool, def *string) error {
	table := c.Qualified(t.Physical)
	if defSet {
		// The new version's view carries the new default at once; the table
		// keeps the old one for the old version until complete.
		col.Default = def
		c.overrideDefault(t, col)
		stmt := fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", c.Qualified(c.TableNow(t)), pg.Ident(c.ColumnNow(t, col.Physical)))
		if def != nil {
			stmt = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", c.Qualified(c.TableNow(t)), pg.Ident(c.ColumnNow(t, col.Physical)), *def)
		}
		c.Contract(Step{Do: fmt.Sprintf("set the default of %s.%s", t.Name, col.Name), SQL: []string{stmt}, Lock: "ACCESS EXCLUSIVE (catalog only, instant)"})
	}
	if op.Nullable != nil && *op.Nullable && !col.Nullable {
		if ix := replicaIdentityIndex(t, col.Physical); ix != "" {
			return errField("nullable", "column %q is in index %q, the replica identity of %q, whose columns must be NOT NULL; change the replica identity first", col.Name, ix, t.Name)
		}
		col.Nullable = true
		c.Expand(Step{
			Do:   fmt.Sprintf("drop NOT NULL of %s.%s", t.Name, col.Name),
			SQL:  []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", table, pg.Ident(col.Physical))},
			Undo: []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", table, pg.Ident(col.Physical))},
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
	}
	return c.alterConstraints(t, col, op, col.Physical, func() error {
		return c.uniqueAllowed("unique", t, false, []string{col.Physical})
	})
}

// alterConstraints adds the unique, check and foreign key constraints an
// alter_column asks for, on physical column phys: the column itself, or
// the new column of a rewrite. uniqueAllowed says whether a unique
// constraint can be built on the table.
func (c *Compiler) alterConstraints(t *schema.Table, col *schema.Column, op *AlterColumn, phys string, uniqueAllowed func() error) error {
	if op.Unique != nil {
		if err := uniqueAllowed(); err != nil {
			return err
		}
		if err := c.ReserveName("unique.name", op.Unique.Name); err != nil {
			return err
		}
		c.addUnique(t, op.Unique.Name, []string{phys}, false)
		col.Unique = true
	}
	if op.Check != nil {
		if err := c.ReserveName("check.name", op.Check.Name); err != nil {
			return err
		}
		if err := noInheritAllowed("check.no_inherit", t, op.Check.NoInherit); err != nil {
			return err
		}
		c.addCheck(t, op.Check.Name, sqllex.RenameIdentifiers(op.Check.Constraint, map[string]string{col.Name: phys}), op.Check.NoInherit)
	}
	if r := op.References; r != nil {
		if err := c.ReserveName("references.name", r.Name); err != nil {
			return err
		}
		fk, err := c.fkClause("references", r)
		if err != nil {
			return err
		}
		c.addForeignKey(t, r.Name, fmt.Sprintf("FOREIGN KEY (%s) %s", pg.Ident(phys), fk))
	}
	return nil
}

// replicaIdentityIndex names the replica identity index of t that covers
// the physical column, or "".
func replicaIdentityIndex(t *schema.Table, phys string) string {
	for _, ix := range t.Indexes {
		if ix.ReplicaIdentity && containsString(ix.Columns, phys) {
			return ix.Name
		}
	}
	return ""
}

// overrideDefault makes the new version's view give col its model default,
// which differs from the physical column's until complete.
func (c *Compiler) overrideDefault(t *schema.Table, col *schema.Column) {
	if c.viewDefaults == nil {
		c.viewDefaults = map[string]map[string]*string{}
	}
	if c.viewDefaults[t.Physical] == nil {
		c.viewDefaults[t.Physical] = map[string]*string{}
	}
	null := "NULL"
	d := &null
	if col.Default != nil {
		v := *col.Default
		d = &v
	}
	c.viewDefaults[t.Physical][col.Physical] = d
}

func (op *AlterColumn) table() string { return op.Table }

func (op *AlterColumn) sqlFields() []sqlField {
	fs := []sqlField{
		{"type", op.Type, sqlcheck.TypeName},
		{"up", op.Up, sqlcheck.Expr},
		{"down", op.Down, sqlcheck.Expr},
	}
	if set, def := nodeValue(op.Default); set && def != nil {
		fs = append(fs, sqlField{"default", *def, sqlcheck.SetDefault})
	}
	if op.Check != nil {
		fs = append(fs, sqlField{"check.constraint", op.Check.Constraint, sqlcheck.Check})
	}
	return fs
}

func (op *AlterColumn) upDown() map[string]string {
	return map[string]string{"up": op.Up, "down": op.Down}
}

func (op *AlterColumn) exprFields() []exprField {
	fs := []exprField{{field: "up", value: op.Up, old: true}, {field: "down", value: op.Down}}
	if set, def := nodeValue(op.Default); set && def != nil {
		name := op.Column
		if op.Name != "" {
			name = op.Name
		}
		fs = append(fs, exprField{field: "default", value: *def, castColumn: name})
	}
	if op.Check != nil {
		fs = append(fs, exprField{field: "check.constraint", value: op.Check.Constraint, boolean: true})
	}
	return fs
}

// invert changes the column back to the type, default, comment and
// nullability it had in seen, with up and down swapped.
func (op *AlterColumn) invert(seen *schema.Schema) (map[string]any, string) {
	if op.Unique != nil || op.Check != nil || op.References != nil {
		return nil, "adds a constraint (unique, check or references); revert does not drop constraints yet"
	}
	name := op.Column
	if op.Name != "" {
		name = op.Name
	}
	body := map[string]any{"table": op.Table, "column": name}
	if op.Name != "" && op.Name != op.Column {
		body["name"] = op.Column
	}
	var col *schema.Column
	if seen != nil {
		if t := seen.Table(op.Table); t != nil {
			col = t.Column(op.Column)
		}
	}
	needCol := op.Type != "" || op.Default.Kind != 0 || op.Comment.Kind != 0 || op.Nullable != nil
	if needCol && col == nil {
		return nil, fmt.Sprintf("the definition of column %s.%s before the migration is not recorded (it was not applied by online migrate)", op.Table, op.Column)
	}
	if op.Type != "" || op.Up != "" {
		if op.Down == "" || op.Up == "" {
			return nil, "rewrites the column without both up and down: the old values cannot be computed back"
		}
		body["up"], body["down"] = op.Down, op.Up
		if op.Type != "" {
			body["type"] = col.Type
		}
	}
	if op.Nullable != nil && *op.Nullable != col.Nullable {
		if !col.Nullable {
			// Back to NOT NULL: rows written with NULL since need a value,
			// which only a down expression gives.
			if op.Down == "" {
				return nil, "makes the column nullable; making it NOT NULL again needs down to fill the NULLs written since"
			}
			body["up"], body["down"] = op.Down, op.Up
			if op.Up == "" {
				body["down"] = name
			}
		}
		body["nullable"] = col.Nullable
	}
	if op.Default.Kind != 0 {
		if col.Default != nil {
			body["default"] = *col.Default
		} else {
			body["default"] = nil
		}
	}
	if op.Comment.Kind != 0 {
		if col.Comment != nil {
			body["comment"] = *col.Comment
		} else {
			body["comment"] = nil
		}
	}
	return op1("alter_column", body), ""
}

// namedObjects: the collation is looked up before any change.
func (op *AlterColumn) namedObjects() []namedObject {
	if op.Collation == "" || strings.EqualFold(op.Collation, "default") {
		return nil
	}
	return []namedObject{{field: "collation", kind: "collation", name: op.Collation}}
}
