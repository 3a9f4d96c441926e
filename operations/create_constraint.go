package operations

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// CreateConstraint adds a constraint over one or more columns without
// blocking. With up/down for its columns, the columns are rewritten (copied
// through up, synced back through down) and the constraint is built on the
// copies, so old code keeps writing what it always wrote while new code gets
// the constraint. Without them, it is added in place: NOT VALID then
// validated, or a unique index built concurrently.
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

func (op *CreateConstraint) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	if err := Required("name", op.Name); err != nil {
		return err
	}
	if _, taken := t.Constraints[op.Name]; taken {
		return errField("name", "table %q already has a constraint %q", t.Name, op.Name)
	}
	if err := c.ReserveName("name", op.Name); err != nil {
		return err
	}
	if len(op.Columns) == 0 {
		return errField("columns", "is required")
	}
	kind := strings.ToLower(op.Type)
	switch kind {
	case "unique", "check", "foreign_key", "primary_key":
	default:
		return errField("type", "must be one of unique, check, foreign_key, primary_key; got %q", op.Type)
	}
	cols := make([]*schema.Column, len(op.Columns))
	for i, name := range op.Columns {
		if cols[i], err = c.Column(fmt.Sprintf("columns[%d]", i), t, name); err != nil {
			return err
		}
	}
	for _, m := range []struct {
		field string
		m     map[string]string
	}{{"up", op.Up}, {"down", op.Down}} {
		for name := range m.m {
			if !containsString(op.Columns, name) {
				return errField(m.field+"."+name, "column %q is not one of the constraint's columns", name)
			}
		}
	}
	// Rewrite the columns that have a conversion; the constraint then
	// applies to the new version's copies only.
	if len(op.Up)+len(op.Down) > 0 {
		if t.Created {
			return errField("up", "table %q is created by this migration; declare the constraint in create_table", t.Name)
		}
		for i, col := range cols {
			up, down := op.Up[col.Name], op.Down[col.Name]
			if up == "" && down == "" {
				continue
			}
			ac := &AlterColumn{Table: t.Name, Column: col.Name, Up: identityOr(up, col.Name), Down: identityOr(down, col.Name)}
			if err := c.alterRewrite(t, col, ac, false, nil); err != nil {
				return wrapField(fmt.Sprintf("columns[%d]", i), err)
			}
		}
	}
	phys := make([]string, len(cols))
	rename := map[string]string{}
	for i, col := range cols {
		phys[i] = col.Physical
		rename[col.Name] = col.Physical
	}
	if kind == "unique" || kind == "primary_key" {
		if err := c.uniqueAllowed("columns", t, kind == "primary_key", phys); err != nil {
			return err
		}
	}
	switch kind {
	case "unique":
		c.addUnique(t, op.Name, phys, op.NullsNotDistinct)
	case "check":
		if op.Check == "" {
			return errField("check", "is required for a check constraint")
		}
		if err := noInheritAllowed("no_inherit", t, op.NoInherit); err != nil {
			return err
		}
		c.addCheck(t, op.Name, RenameIdentifiers(op.Check, rename), op.NoInherit)
	case "foreign_key":
		r := op.References
		if r == nil {
			return errField("references", "is required for a foreign_key constraint")
		}
		rt, err := c.Table("references.table", r.Table)
		if err != nil {
			return err
		}
		if len(r.Columns) != len(cols) {
			return errField("references.columns", "must name as many columns (%d) as columns", len(cols))
		}
		rcols := make([]string, len(r.Columns))
		for i, name := range r.Columns {
			rc, err := c.Column(fmt.Sprintf("references.columns[%d]", i), rt, name)
			if err != nil {
				return err
			}
			rcols[i] = rc.Physical
		}
		def := fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s (%s)", pg.Idents(phys), c.Qualified(rt.Physical), pg.Idents(rcols))
		if m, err := matchType(r.MatchType); err != nil {
			return errField("references.match_type", "%v", err)
		} else if m != "" {
			def += " MATCH " + m
		}
		if a, err := refAction(r.OnDelete); err != nil {
			return errField("references.on_delete", "%v", err)
		} else if a != "" {
			def += " ON DELETE " + a
		}
		if a, err := refAction(r.OnUpdate); err != nil {
			return errField("references.on_update", "%v", err)
		} else if a != "" {
			def += " ON UPDATE " + a
		}
		if op.Deferrable {
			def += " DEFERRABLE"
			if op.InitiallyDeferred {
				def += " INITIALLY DEFERRED"
			}
		}
		c.addForeignKey(t, op.Name, def)
	case "primary_key":
		if len(t.PrimaryKey) > 0 {
			return errField("type", "table %q already has a primary key", t.Name)
		}
		c.addPrimaryKey(t, op.Name, cols)
	}
	return nil
}

// addPrimaryKey builds a unique index concurrently, proves NOT NULL on its
// columns with validated checks, and at complete sets NOT NULL (no scan: the
// checks prove it) and attaches the index as the primary key: the exclusive
// lock is held for catalog changes only.
func (c *Compiler) addPrimaryKey(t *schema.Table, name string, cols []*schema.Column) {
	phys := make([]string, len(cols))
	for i, col := range cols {
		phys[i] = col.Physical
	}
	table := c.Qualified(t.Physical)
	c.Finish(Step{
		Do:   fmt.Sprintf("build the unique index of primary key %s on %s", name, t.Name),
		SQL:  []string{"DROP INDEX CONCURRENTLY IF EXISTS " + c.Qualified(name), fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s)", pg.Ident(name), table, pg.Idents(phys))},
		Undo: []string{"DROP INDEX CONCURRENTLY IF EXISTS " + c.Qualified(name)},
		Lock: "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
		NoTx: true,
	})
	var nn []string
	for _, col := range cols {
		if !col.Nullable {
			continue
		}
		check := ShortName(t.Physical + "_" + col.Name + "_online_pk_nn")
		c.names[check] = true
		c.addCheck(t, check, pg.Ident(col.Physical)+" IS NOT NULL", false)
		nn = append(nn, check)
		col.Nullable = false
	}
	t.PrimaryKey = nil
	for _, col := range cols {
		t.PrimaryKey = append(t.PrimaryKey, col.Name)
	}
	c.pendingPK = append(c.pendingPK, pendingPK{table: t, name: name, cols: cols, checks: nn})
	c.Schema.Indexes[name] = t.Name
}

type pendingPK struct {
	table  *schema.Table
	name   string
	cols   []*schema.Column
	checks []string
}

// attachPrimaryKeys runs at the end of the contract, after rewritten
// columns took their final names.
func (c *Compiler) attachPrimaryKeys() {
	for _, p := range c.pendingPK {
		table := c.Qualified(c.TableNow(p.table))
		var sql []string
		for _, col := range p.cols {
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", table, pg.Ident(c.ColumnNow(p.table, col.Physical))))
		}
		sort.Strings(p.checks)
		for _, ch := range p.checks {
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, pg.Ident(ch)))
			delete(p.table.Constraints, ch)
		}
		sql = append(sql, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s", table, pg.Ident(p.name), pg.Ident(p.name)))
		c.plan.Contract = append(c.plan.Contract, Step{
			Do:   fmt.Sprintf("attach primary key %s", p.name),
			SQL:  sql,
			Lock: "ACCESS EXCLUSIVE (catalog only: NOT NULL is proven by validated checks)",
		})
	}
}
