package operations

import (
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/schema"
)

// CreateTable creates a table. It is physical at once (an empty table blocks
// nobody) and appears in the new version's views only.
type CreateTable struct {
	Name        string            `yaml:"name"`
	Columns     []Column          `yaml:"columns"`
	Comment     *string           `yaml:"comment"`
	Constraints []TableConstraint `yaml:"constraints"`
	// From fills the table from another one and keeps both equal while
	// both versions run (online's extension; see move.go).
	From *From `yaml:"from"`
}

// TableConstraint is a table-level constraint of create_table.
type TableConstraint struct {
	Name              string           `yaml:"name"`
	Type              string           `yaml:"type"`
	Columns           []string         `yaml:"columns"`
	Check             string           `yaml:"check"`
	References        *TableReference  `yaml:"references"`
	Exclude           *Exclude         `yaml:"exclude"`
	Deferrable        bool             `yaml:"deferrable"`
	InitiallyDeferred bool             `yaml:"initially_deferred"`
	NullsNotDistinct  bool             `yaml:"nulls_not_distinct"`
	NoInherit         bool             `yaml:"no_inherit"`
	IndexParameters   *IndexParameters `yaml:"index_parameters"`
}

// TableReference is the target of a multi-column foreign key.
type TableReference struct {
	Table              string   `yaml:"table"`
	Columns            []string `yaml:"columns"`
	OnDelete           string   `yaml:"on_delete"`
	OnUpdate           string   `yaml:"on_update"`
	OnDeleteSetColumns []string `yaml:"on_delete_set_columns"`
	MatchType          string   `yaml:"match_type"`
}

// Exclude is an exclusion constraint's definition.
type Exclude struct {
	IndexMethod string `yaml:"index_method"`
	Elements    string `yaml:"elements"`
	Predicate   string `yaml:"predicate"`
}

// IndexParameters tune the index behind a unique, primary key or exclude constraint.
type IndexParameters struct {
	IncludeColumns    []string `yaml:"include_columns"`
	StorageParameters string   `yaml:"storage_parameters"`
	Tablespace        string   `yaml:"tablespace"`
}

var _ Operation = (*CreateTable)(nil)

func (op *CreateTable) Compile(c *Compiler) error {
	if err := ValidName("name", op.Name); err != nil {
		return err
	}
	if c.Schema.Table(op.Name) != nil {
		return errField("name", "table %q already exists", op.Name)
	}
	for _, t := range c.Old.Tables {
		if t.Physical == op.Name {
			return errField("name", "a table named %q still exists for the old version (renamed or dropped by this migration, it goes at complete); create the table in a later migration", op.Name)
		}
	}
	if _, isType := c.Schema.Types[op.Name]; isType {
		return errField("name", "the name %q is already used by a type of schema %q (a table's row type takes the same name)", op.Name, c.Opts.Schema)
	}
	if c.Old.Relations[op.Name] {
		return errField("name", "the name %q is already used by a relation of schema %q", op.Name, c.Opts.Schema)
	}
	if len(op.Columns) == 0 {
		return errField("columns", "a table needs at least one column")
	}
	t := &schema.Table{Name: op.Name, Physical: op.Name, Created: true, Indexes: map[string]*schema.Index{}, Constraints: map[string]*schema.Constraint{}, Comment: op.Comment}
	// Register the table first so that a column may reference its own table.
	c.Schema.Tables[op.Name] = t
	var defs, pk []string
	seen := map[string]bool{}
	for i := range op.Columns {
		col := &op.Columns[i]
		field := fmt.Sprintf("columns[%d]", i)
		if err := col.validate(field); err != nil {
			return err
		}
		if seen[col.Name] {
			return errField(field+".name", "column %q is defined twice", col.Name)
		}
		if col.Check != nil {
			if err := c.ReserveName(field+".check.name", col.Check.Name); err != nil {
				return err
			}
		}
		if col.References != nil {
			if err := c.ReserveName(field+".references.name", col.References.Name); err != nil {
				return err
			}
		}
		seen[col.Name] = true
		t.Columns = append(t.Columns, modelColumn(col, col.Name))
	}
	for i := range op.Columns {
		col := &op.Columns[i]
		def, err := c.definition(fmt.Sprintf("columns[%d]", i), col, col.Name, true)
		if err != nil {
			return err
		}
		defs = append(defs, def)
		if col.PK {
			pk = append(pk, col.Name)
		}
		// The named constraints of a column definition are in the model
		// too, for the migrations after this one (a rename_constraint, a
		// drop_constraint) to find.
		if col.Check != nil {
			t.Constraints[col.Check.Name] = &schema.Constraint{Name: col.Check.Name, Type: "c", Columns: []string{col.Name}, Definition: "CHECK (" + col.Check.Constraint + ")", Validated: true}
		}
		if col.Unique && !col.PK {
			// PostgreSQL names an unnamed column UNIQUE <table>_<column>_key,
			// its index the same.
			name := ShortName(op.Name + "_" + col.Name + "_key")
			if t.Constraints[name] == nil && c.Schema.Indexes[name] == "" {
				t.Constraints[name] = &schema.Constraint{Name: name, Type: "u", Columns: []string{col.Name}, Validated: true}
				t.Indexes[name] = &schema.Index{Name: name, Columns: []string{col.Name}, Unique: true, Valid: true, Constraint: name}
				c.Schema.Indexes[name] = op.Name
			}
		}
		if r := col.References; r != nil && r.Name != "" {
			t.Constraints[r.Name] = &schema.Constraint{Name: r.Name, Type: "f", Columns: []string{col.Name}, Validated: true}
		}
	}
	for i, con := range op.Constraints {
		def, err := c.tableConstraint(fmt.Sprintf("constraints[%d].", i), t, &con)
		if err != nil {
			return err
		}
		if strings.EqualFold(con.Type, "primary_key") {
			if len(pk) > 0 {
				return errField(fmt.Sprintf("constraints[%d]", i), "the table already has a primary key from its columns' pk fields")
			}
			t.PrimaryKey = con.Columns
		}
		defs = append(defs, def)
	}
	if len(pk) > 0 {
		defs = append(defs, "PRIMARY KEY ("+pg.Idents(pk)+")")
		t.PrimaryKey = pk
	}
	sql := []string{fmt.Sprintf("CREATE TABLE %s (\n  %s\n)", c.Qualified(op.Name), strings.Join(defs, ",\n  "))}
	if op.Comment != nil {
		sql = append(sql, commentSQL("TABLE", c.Qualified(op.Name), op.Comment))
	}
	for _, col := range op.Columns {
		if col.Comment != nil {
			sql = append(sql, commentSQL("COLUMN", c.Qualified(op.Name)+"."+pg.Ident(col.Name), col.Comment))
		}
	}
	c.Expand(Step{
		Do:   fmt.Sprintf("create table %s", op.Name),
		SQL:  sql,
		Undo: []string{"DROP TABLE IF EXISTS " + c.Qualified(op.Name)},
		Lock: "none (new table)",
	})
	if op.From != nil {
		return c.createTableFrom(t, op.From)
	}
	return nil
}

// tableConstraint renders one table-level constraint of a new table, for
// create_table (prefix "constraints[i].") and for a create_constraint on a
// table the migration creates (prefix ""): an empty table needs none of the
// steps that keep a constraint from blocking.
func (c *Compiler) tableConstraint(prefix string, t *schema.Table, con *TableConstraint) (string, error) {
	if con.Name == "" {
		return "", errField(prefix+"name", "is required")
	}
	if err := c.ReserveName(prefix+"name", con.Name); err != nil {
		return "", err
	}
	cols := make([]string, len(con.Columns))
	for i, name := range con.Columns {
		col, err := c.Column(fmt.Sprintf("%scolumns[%d]", prefix, i), t, name)
		if err != nil {
			return "", err
		}
		cols[i] = col.Physical
	}
	head := "CONSTRAINT " + pg.Ident(con.Name) + " "
	var body string
	needCols := func() error {
		if len(cols) == 0 {
			return errField(prefix+"columns", "is required for a %s constraint", con.Type)
		}
		return nil
	}
	switch strings.ToLower(con.Type) {
	case "unique":
		if err := needCols(); err != nil {
			return "", err
		}
		body = "UNIQUE "
		if con.NullsNotDistinct {
			body += "NULLS NOT DISTINCT "
		}
		body += "(" + pg.Idents(cols) + ")" + indexParams(con.IndexParameters)
	case "primary_key":
		if err := needCols(); err != nil {
			return "", err
		}
		body = "PRIMARY KEY (" + pg.Idents(cols) + ")" + indexParams(con.IndexParameters)
	case "check":
		if con.Check == "" {
			return "", errField(prefix+"check", "is required for a check constraint")
		}
		body = "CHECK (" + con.Check + ")"
		if con.NoInherit {
			body += " NO INHERIT"
		}
	case "foreign_key":
		if err := needCols(); err != nil {
			return "", err
		}
		r := con.References
		if r == nil {
			return "", errField(prefix+"references", "is required for a foreign_key constraint")
		}
		rt, err := c.Table(prefix+"references.table", r.Table)
		if err != nil {
			return "", err
		}
		if len(r.Columns) != len(cols) {
			return "", errField(prefix+"references.columns", "must name as many columns (%d) as columns", len(cols))
		}
		rcols := make([]string, len(r.Columns))
		for i, name := range r.Columns {
			rc, err := c.Column(fmt.Sprintf("%sreferences.columns[%d]", prefix, i), rt, name)
			if err != nil {
				return "", err
			}
			rcols[i] = rc.Physical
		}
		setCols, err := setColumns(prefix+"references", r.OnDeleteSetColumns, con.Columns, cols)
		if err != nil {
			return "", err
		}
		body, err = renderFK(fkSpec{field: prefix + "references", cols: cols, refTable: c.Qualified(rt.Physical), refCols: rcols,
			match: r.MatchType, onDelete: r.OnDelete, setCols: setCols, onUpdate: r.OnUpdate})
		if err != nil {
			return "", err
		}
	case "exclude":
		x := con.Exclude
		if x == nil || x.Elements == "" {
			return "", errField(prefix+"exclude.elements", "is required for an exclude constraint")
		}
		method := x.IndexMethod
		if method == "" {
			method = "gist"
		}
		body = fmt.Sprintf("EXCLUDE USING %s (%s)%s", pg.Ident(method), x.Elements, indexParams(con.IndexParameters))
		if x.Predicate != "" {
			body += " WHERE (" + x.Predicate + ")"
		}
	default:
		return "", errField(prefix+"type", "must be one of unique, check, primary_key, foreign_key, exclude; got %q", con.Type)
	}
	if con.Deferrable {
		body += " DEFERRABLE"
		if con.InitiallyDeferred {
			body += " INITIALLY DEFERRED"
		}
	}
	t.Constraints[con.Name] = &schema.Constraint{Name: con.Name, Type: constraintLetter(con.Type), Columns: cols, Validated: true}
	return head + body, nil
}

func indexParams(p *IndexParameters) string {
	if p == nil {
		return ""
	}
	s := ""
	if len(p.IncludeColumns) > 0 {
		s += " INCLUDE (" + pg.Idents(p.IncludeColumns) + ")"
	}
	if p.StorageParameters != "" {
		s += " WITH (" + p.StorageParameters + ")"
	}
	if p.Tablespace != "" {
		s += " USING INDEX TABLESPACE " + pg.Ident(p.Tablespace)
	}
	return s
}

func constraintLetter(kind string) string {
	switch strings.ToLower(kind) {
	case "unique":
		return "u"
	case "primary_key":
		return "p"
	case "check":
		return "c"
	case "foreign_key":
		return "f"
	case "exclude":
		return "x"
	}
	return "?"
}

func (op *CreateTable) table() string { return op.Name }

func (op *CreateTable) sqlFields() []sqlField {
	var fs []sqlField
	for i := range op.Columns {
		fs = append(fs, columnSQL(fmt.Sprintf("columns[%d]", i), &op.Columns[i])...)
	}
	for i, con := range op.Constraints {
		field := fmt.Sprintf("constraints[%d]", i)
		fs = append(fs, sqlField{field + ".check", con.Check, sqlcheck.Check})
		if x := con.Exclude; x != nil {
			fs = append(fs,
				sqlField{field + ".exclude.elements", x.Elements, sqlcheck.ExclusionElements},
				sqlField{field + ".exclude.predicate", x.Predicate, sqlcheck.Predicate})
		}
		fs = append(fs, indexParamsSQL(field, con.IndexParameters)...)
	}
	return append(fs, moveSQL("from", op.From)...)
}

func (op *CreateTable) exprFields() []exprField {
	var fs []exprField
	for i := range op.Columns {
		fs = append(fs, columnExprs(fmt.Sprintf("columns[%d]", i), &op.Columns[i])...)
	}
	for i, con := range op.Constraints {
		fs = append(fs, exprField{field: fmt.Sprintf("constraints[%d].check", i), value: con.Check, boolean: true})
	}
	return fs
}

func (op *CreateTable) invert(*schema.Schema) (map[string]any, string) {
	return op1("drop_table", map[string]any{"name": op.Name}), ""
}

// namedObjects: the collations of the columns (ext) are looked up before
// any change (catalogchecks.go).
func (op *CreateTable) namedObjects() []namedObject {
	var out []namedObject
	for i, col := range op.Columns {
		if col.Collation != "" {
			out = append(out, namedObject{field: fmt.Sprintf("columns[%d].collation", i), kind: "collation", name: col.Collation})
		}
	}
	return out
}

func (op *CreateTable) moveChecks(base CatalogCheck, old *schema.Schema) []CatalogCheck {
	if op.From == nil {
		return nil
	}
	return moveChecks(base, old, op.From, op.Name, "")
}
