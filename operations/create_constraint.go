package operations

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/internal/sqllex"
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
	Exclude           *Exclude          `yaml:"exclude"`
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
	if t.Created {
		return op.onNewTable(c, t)
	}
	if _, taken := t.Constraints[op.Name]; taken {
		return errField("name", "table %q already has a constraint %q", t.Name, op.Name)
	}
	// A constraint an earlier operation drops is dropped at complete:
	// until then the old version needs it, and its name is taken.
	if ot := c.oldTable(t); ot != nil {
		if _, taken := ot.Constraints[op.Name]; taken {
			return errField("name", "constraint %q of table %q is dropped by an earlier operation of this migration, but only at complete (the old version keeps it until then), so the name is still taken: give the new constraint another name, or create it in a later migration", op.Name, t.Name)
		}
	}
	if err := c.ReserveName("name", op.Name); err != nil {
		return err
	}
	kind := strings.ToLower(op.Type)
	switch kind {
	case "unique", "check", "foreign_key", "primary_key", "exclude":
	default:
		return errField("type", "must be one of unique, check, foreign_key, primary_key, exclude; got %q", op.Type)
	}
	// An exclusion constraint names its columns in its elements.
	if len(op.Columns) == 0 && kind != "exclude" {
		return errField("columns", "is required")
	}
	cols := make([]*schema.Column, len(op.Columns))
	for i, name := range op.Columns {
		if cols[i], err = c.Column(fmt.Sprintf("columns[%d]", i), t, name); err != nil {
			return err
		}
	}
	if err := op.checkConversionColumns(); err != nil {
		return err
	}
	// Rewrite the columns that have a conversion; the constraint then
	// applies to the new version's copies only.
	if len(op.Up)+len(op.Down) > 0 {
		for i, col := range cols {
			up, down := op.Up[col.Name], op.Down[col.Name]
			if up == "" && down == "" {
				continue
			}
			spec := rewriteSpec{up: identityOr(up, col.Name), down: identityOr(down, col.Name)}
			if _, err := c.alterRewrite(t, col, spec); err != nil {
				return wrapField(fmt.Sprintf("columns[%d]", i), err)
			}
		}
	}
	phys := make([]string, len(cols))
	rename := map[string]string{}
	if kind == "exclude" {
		// Elements and predicate may name any column of the table.
		for _, col := range t.Columns {
			rename[col.Name] = col.Physical
		}
	}
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
		c.addCheck(t, op.Name, sqllex.RenameIdentifiers(op.Check, rename), op.NoInherit)
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
		setCols, err := setColumns("references", r.OnDeleteSetColumns, op.Columns, phys)
		if err != nil {
			return err
		}
		def, err := renderFK(fkSpec{field: "references", cols: phys, refTable: c.Qualified(rt.Physical), refCols: rcols, match: r.MatchType,
			onDelete: r.OnDelete, setCols: setCols, onUpdate: r.OnUpdate, deferrable: op.Deferrable, initiallyDeferred: op.InitiallyDeferred})
		if err != nil {
			return err
		}
		c.addForeignKey(t, op.Name, def)
	case "primary_key":
		if len(t.PrimaryKey) > 0 {
			return errField("type", "table %q already has a primary key", t.Name)
		}
		c.addPrimaryKey(t, op.Name, cols)
	case "exclude":
		return op.addExclude(c, t, rename)
	}
	return nil
}

// onNewTable adds the constraint to a table this migration creates: it has
// no rows and no old version, so the constraint is added as it is, right
// after the table, in expand. pgroll's files give up and down for every
// column (its format requires them); there is nothing for them to convert
// here, so they are accepted and not used.
func (op *CreateConstraint) onNewTable(c *Compiler, t *schema.Table) error {
	if err := op.checkConversionColumns(); err != nil {
		return err
	}
	con := &TableConstraint{
		Name: op.Name, Type: op.Type, Columns: op.Columns, Check: op.Check, References: op.References,
		Exclude: op.Exclude, Deferrable: op.Deferrable, InitiallyDeferred: op.InitiallyDeferred,
		NullsNotDistinct: op.NullsNotDistinct, NoInherit: op.NoInherit, IndexParameters: op.IndexParameters,
	}
	if strings.EqualFold(op.Type, "primary_key") && len(t.PrimaryKey) > 0 {
		return errField("type", "table %q already has a primary key", t.Name)
	}
	def, err := c.tableConstraint("", t, con)
	if err != nil {
		return err
	}
	if strings.EqualFold(op.Type, "primary_key") {
		t.PrimaryKey = append([]string(nil), op.Columns...)
		for _, name := range op.Columns {
			t.Column(name).Nullable = false
		}
	}
	table := c.Qualified(t.Physical)
	c.Expand(Step{
		Do:   fmt.Sprintf("add constraint %s to new table %s", op.Name, t.Name),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s ADD %s", table, def)},
		Undo: []string{fmt.Sprintf("ALTER TABLE IF EXISTS %s DROP CONSTRAINT IF EXISTS %s", table, pg.Ident(op.Name))},
		Lock: "none (new table, empty)",
	})
	return nil
}

// addExclude adds an exclusion constraint to a table that has rows.
// PostgreSQL can add one neither NOT VALID nor from an index built
// CONCURRENTLY (USING INDEX takes unique indexes only), so the statement
// holds ACCESS EXCLUSIVE while it builds the index: reads and writes of the
// table wait for the build. Waiting for the lock is bounded by lock_timeout
// and retried like every step; the build itself is not, which the plan's
// lock says. It runs after the backfill, on the columns' final values.
func (op *CreateConstraint) addExclude(c *Compiler, t *schema.Table, rename map[string]string) error {
	x := op.Exclude
	if x == nil || strings.TrimSpace(x.Elements) == "" {
		return errField("exclude.elements", "is required for an exclude constraint")
	}
	if t.Partitioned {
		return errField("type", "table %q is partitioned; an exclusion constraint on a partitioned table is not supported by online", t.Name)
	}
	method := x.IndexMethod
	if method == "" {
		method = "gist"
	}
	def := fmt.Sprintf("EXCLUDE USING %s (%s)%s", pg.Ident(method), sqllex.RenameIdentifiers(x.Elements, rename), indexParams(op.IndexParameters))
	if x.Predicate != "" {
		def += " WHERE (" + sqllex.RenameIdentifiers(x.Predicate, rename) + ")"
	}
	if op.Deferrable {
		def += " DEFERRABLE"
		if op.InitiallyDeferred {
			def += " INITIALLY DEFERRED"
		}
	}
	table := c.Qualified(t.Physical)
	c.Finish(Step{
		Do:   fmt.Sprintf("add exclusion constraint %s on %s (builds its index under the lock)", op.Name, t.Name),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", table, pg.Ident(op.Name), def)},
		Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", table, pg.Ident(op.Name))},
		Lock: "ACCESS EXCLUSIVE for the whole index build (PostgreSQL has no NOT VALID or CONCURRENTLY form of an exclusion constraint): reads and writes of the table wait",
	})
	var phys []string
	for _, name := range op.Columns {
		phys = append(phys, rename[name])
	}
	t.Constraints[op.Name] = &schema.Constraint{Name: op.Name, Type: "x", Columns: phys, Validated: true}
	c.Schema.Indexes[op.Name] = t.Name
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
		Do:        fmt.Sprintf("build the unique index of primary key %s on %s", name, t.Name),
		SQL:       []string{"DROP INDEX CONCURRENTLY IF EXISTS " + c.Qualified(name), fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s)", pg.Ident(name), table, pg.Idents(phys))},
		Undo:      c.dropIndexInTx(c.Opts.Schema, name),
		UndoAfter: c.dropIndexAfter(c.Opts.Schema, name),
		Lock:      "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
		NoTx:      true,
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

// checkConversionColumns refuses an up or down for a column the constraint
// does not cover.
func (op *CreateConstraint) checkConversionColumns() error {
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
	return nil
}

func (op *CreateConstraint) table() string { return op.Table }

func (op *CreateConstraint) sqlFields() []sqlField {
	fs := []sqlField{{"check", op.Check, sqlcheck.Check}}
	if x := op.Exclude; x != nil {
		fs = append(fs,
			sqlField{"exclude.elements", x.Elements, sqlcheck.ExclusionElements},
			sqlField{"exclude.predicate", x.Predicate, sqlcheck.Predicate})
	}
	fs = append(fs, indexParamsSQL("", op.IndexParameters)...)
	return append(fs, conversionsSQL(op.Up, op.Down)...)
}

func (op *CreateConstraint) upDown() map[string]string {
	return prefixed(prefixed(map[string]string{}, "up", op.Up), "down", op.Down)
}

func (op *CreateConstraint) exprFields() []exprField {
	fs := []exprField{{field: "check", value: op.Check, boolean: true}}
	return append(fs, upDownExprs(op.Up, op.Down)...)
}

// invert drops the constraint again, the way the format drops one: the
// columns it covers are rewritten. Up copies them as they are; down, which
// fills the constrained columns from what the reverted version writes, is
// this operation's own up where it has one (it makes any value fit the
// constraint), else the column as it is.
func (op *CreateConstraint) invert(*schema.Schema) (map[string]any, string) {
	if len(op.Columns) == 0 {
		return nil, "an exclusion constraint over expressions names no columns to drop it by; drop it with sql in a new migration"
	}
	up, down := map[string]any{}, map[string]any{}
	for _, c := range op.Columns {
		up[c], down[c] = pg.Ident(c), pg.Ident(c)
		if e := op.Up[c]; e != "" {
			down[c] = e
		}
	}
	if len(op.Columns) == 1 {
		c := op.Columns[0]
		return op1("drop_constraint", map[string]any{"table": op.Table, "name": op.Name, "up": up[c], "down": down[c]}), ""
	}
	return op1("drop_multicolumn_constraint", map[string]any{"table": op.Table, "name": op.Name, "up": up, "down": down}), ""
}

// namedObjects lists the index access method of an exclusion constraint
// (see namedObjectChecks).
func (op *CreateConstraint) namedObjects() []namedObject {
	if op.Exclude == nil || op.Exclude.IndexMethod == "" {
		return nil
	}
	return []namedObject{{field: "exclude.index_method", kind: "access method", name: op.Exclude.IndexMethod}}
}
