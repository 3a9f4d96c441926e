package operations

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// Options name where a migration runs.
type Options struct {
	Schema      string // the schema whose tables are migrated
	StateSchema string // where online keeps its state and trigger functions
	// Parent is the version schema of the previous migration, still serving
	// the old version; "" when the old version is the tables themselves.
	Parent string
	// Fits, when set, answers a FitQuery from the live catalog (the engine
	// tries it in a transaction it rolls back); nil keeps every default
	// and check through a type change.
	Fits func(FitQuery) (bool, error) `json:"-"`
}

// Compiler carries the state of one compile. Operations use its methods to
// look up tables and columns and to add steps.
type Compiler struct {
	// Schema is the new version as the operations so far have shaped it.
	Schema *schema.Schema
	// Old is the version before the migration; never changed.
	Old  *schema.Schema
	Opts Options

	plan *Plan
	file string
	op   int
	kind string

	// planned holds, per physical table, physical column names this
	// migration adds, so that two operations never pick the same one.
	planned map[string]map[string]bool
	// hidden marks physical columns this migration adds under a name no user
	// would pick; a version view gives them their visible default.
	hidden map[string]map[string]bool
	// names holds relation-level names (indexes, constraints) planned so far.
	names map[string]bool
	// now tracks, while contract steps are generated in order, what each
	// physical table and column is called at that point of the contract.
	nowTable map[string]string
	nowCol   map[string]string

	rewrites       []*rewrite
	contractUnique []pendingUnique
	viewDefaults   map[string]map[string]*string
	// dropTriggers holds, per table and column, the statements that drop
	// a drop_column's down trigger; they run just before the column goes.
	dropTriggers map[string][]string
	// skipDependents names constraints a drop_constraint removes: the
	// rewrite of their columns does not rebuild them.
	skipDependents map[string]bool
	// rebuilds holds, per table and index or constraint, the rebuild on
	// new columns that a rewrite planned (see rebuildDependents).
	rebuilds   map[string]*rebuild
	pendingPK  []pendingPK
	exprChecks []exprCheck
	data       []pendingData
	// oldByPhys indexes Old's tables by physical name (see oldPhysical).
	oldByPhys map[string]*schema.Table
	// contractLast holds contract steps that run after all others.
	contractLast []Step
	// moveDrops drop the triggers of data moved between tables: first in
	// the contract, before the old place goes.
	moveDrops []Step
	rawSQL    int
	others    int
}

// Compile checks every operation of m against the current schema and returns
// the plan and the model of the new version. Nothing touches the database.
func Compile(m *Migration, current *schema.Schema, o Options) (*Plan, *schema.Schema, error) {
	c := &Compiler{
		Schema:         current.Clone(),
		Old:            current,
		Opts:           o,
		file:           m.File,
		planned:        map[string]map[string]bool{},
		hidden:         map[string]map[string]bool{},
		names:          map[string]bool{},
		nowTable:       map[string]string{},
		nowCol:         map[string]string{},
		dropTriggers:   map[string][]string{},
		skipDependents: map[string]bool{},
	}
	c.plan = &Plan{
		Name:          m.Name,
		Schema:        o.Schema,
		VersionSchema: VersionSchemaName(o.Schema, m.VersionSchema),
		Parent:        o.Parent,
	}
	if c.plan.VersionSchema == o.Schema || c.plan.VersionSchema == o.StateSchema || (o.Parent != "" && c.plan.VersionSchema == o.Parent) {
		return nil, nil, &Error{File: m.File, Field: "version_schema", Err: fmt.Errorf("version schema %q is already in use", c.plan.VersionSchema)}
	}
	if o.Parent != "" {
		c.plan.Contract = append(c.plan.Contract, Step{
			Do:   fmt.Sprintf("drop the previous version schema %s (at complete: its views one by one, then the schema; refused when anything else is in it or uses its views, unless --drop-dependents)", o.Parent),
			SQL:  []string{DropVersionSchemaSQL(o.Parent)},
			Lock: "ACCESS EXCLUSIVE on its views",
		})
	}
	for i, op := range m.Operations {
		c.op, c.kind = i+1, kindOf(op)
		if c.kind == "sql" {
			c.rawSQL++
		} else {
			c.others++
		}
		// Parse checks these too; a Migration built in code has not been
		// parsed.
		if err := checkSQLFields(op); err != nil {
			return nil, nil, c.wrap(err)
		}
		tableName, _ := upDownFields(op)
		before := c.columnsOf(tableName)
		if err := op.Compile(c); err != nil {
			return nil, nil, c.wrap(err)
		}
		c.noteExprs(op, before)
	}
	if err := c.checkExprColumns(); err != nil {
		return nil, nil, err
	}
	c.op, c.kind = 0, ""
	if c.rawSQL > 0 && c.others > 0 {
		return nil, nil, &Error{File: m.File, Field: "operations", Err: errors.New("a \"sql\" operation must be alone in its migration (with other \"sql\" operations at most): online cannot know what raw SQL changes, so it builds the new version's views from the catalog after it runs")}
	}
	c.plan.RawSQL = c.rawSQL > 0
	if err := c.finishRewrites(); err != nil {
		return nil, nil, &Error{File: m.File, Err: err}
	}
	c.plan.Contract = append(c.plan.Contract, c.contractLast...)
	c.plan.Contract = append(c.moveDrops, c.plan.Contract...)
	if err := c.checkDataMigrations(); err != nil {
		return nil, nil, err
	}
	c.plan.Views = c.views()
	return c.plan, c.Schema, nil
}

func (c *Compiler) wrap(err error) error {
	e := &Error{File: c.file, Op: c.op, Kind: c.kind, Err: err}
	var fe *fieldErr
	if errors.As(err, &fe) {
		e.Field, e.Err = fe.field, fe.err
	}
	return e
}

// Expand adds a step to the expand phase.
func (c *Compiler) Expand(s Step) { s.Op = c.op; c.plan.Expand = append(c.plan.Expand, s) }

// Finish adds a step to run after the backfill, before publishing.
func (c *Compiler) Finish(s Step) { s.Op = c.op; c.plan.Finish = append(c.plan.Finish, s) }

// Contract adds a step to the contract phase (online complete).
func (c *Compiler) Contract(s Step) { s.Op = c.op; c.plan.Contract = append(c.plan.Contract, s) }

// ContractLast adds a step that runs after every other contract step: a
// dropped table goes once the column swaps have dropped the foreign keys
// that referenced it.
func (c *Compiler) ContractLast(s Step) { s.Op = c.op; c.contractLast = append(c.contractLast, s) }

// Table returns the table of the new version named by field, or a field error.
func (c *Compiler) Table(field, name string) (*schema.Table, error) {
	if name == "" {
		return nil, errField(field, "is required")
	}
	t := c.Schema.Table(name)
	if t == nil {
		if c.Old.Table(name) != nil {
			return nil, errField(field, "table %q is no longer in the new version (an earlier operation of this migration renamed or dropped it)", name)
		}
		return nil, wrapField(field, &schema.NotFoundError{Kind: "table", Name: name})
	}
	return t, nil
}

// Column returns the column of t named by field, or a field error.
func (c *Compiler) Column(field string, t *schema.Table, name string) (*schema.Column, error) {
	if name == "" {
		return nil, errField(field, "is required")
	}
	col := t.Column(name)
	if col == nil {
		if old := c.Old.Table(t.Name); old != nil && old.Column(name) != nil {
			return nil, errField(field, "column %q of table %q is no longer in the new version (an earlier operation of this migration renamed or dropped it)", name, t.Name)
		}
		return nil, wrapField(field, &schema.NotFoundError{Kind: "column", Name: name, Table: t.Name})
	}
	return col, nil
}

// Required returns a field error when v is empty.
func Required(field, v string) error {
	if v == "" {
		return errField(field, "is required")
	}
	return nil
}

// Qualified quotes a physical table of the migrated schema.
func (c *Compiler) Qualified(physical string) string { return pg.Ident(c.Opts.Schema, physical) }

// NewColumnName picks the physical name of a column that the new version
// adds to table t: the visible name when the physical table has no such
// column, otherwise a hidden name renamed into place at complete.
func (c *Compiler) NewColumnName(t *schema.Table, visible string, forceHidden bool) (phys string, hidden bool) {
	if !forceHidden && !t.PhysicalColumnTaken(visible, c.planned[t.Physical]) && c.oldHasNoColumn(t, visible) {
		c.plan_(t.Physical, visible, false)
		return visible, false
	}
	base := "_online_" + visible
	phys = ShortName(base)
	for n := 2; t.PhysicalColumnTaken(phys, c.planned[t.Physical]) || !c.oldHasNoColumn(t, phys); n++ {
		phys = ShortName(fmt.Sprintf("%s_%d", base, n))
	}
	c.plan_(t.Physical, phys, true)
	return phys, true
}

// oldHasNoColumn reports whether the physical table, as it is now, has no
// column of that name (the old version may hide columns the model dropped).
func (c *Compiler) oldHasNoColumn(t *schema.Table, name string) bool {
	if ot := c.oldPhysical(t.Physical); ot != nil {
		return ot.ColumnByPhysical(name) == nil
	}
	return true
}

// oldPhysical returns the table of the old version whose physical name is
// phys, or nil. Old never changes during a compile, so the index is built
// once: a walk over every old table for each lookup made a file of many
// operations compile in quadratic time.
func (c *Compiler) oldPhysical(phys string) *schema.Table {
	if c.oldByPhys == nil {
		c.oldByPhys = make(map[string]*schema.Table, len(c.Old.Tables))
		for _, ot := range c.Old.Tables {
			c.oldByPhys[ot.Physical] = ot
		}
	}
	return c.oldByPhys[phys]
}

func (c *Compiler) plan_(table, col string, hidden bool) {
	if c.planned[table] == nil {
		c.planned[table] = map[string]bool{}
	}
	c.planned[table][col] = true
	if hidden {
		if c.hidden[table] == nil {
			c.hidden[table] = map[string]bool{}
		}
		c.hidden[table][col] = true
	}
}

// IsHidden reports whether a physical column is one this migration added
// under a hidden name.
func (c *Compiler) IsHidden(table, col string) bool { return c.hidden[table][col] }

// ReserveName claims a schema-wide relation name (index, constraint) or
// returns a field error when it is taken.
func (c *Compiler) ReserveName(field, name string) error {
	if err := ValidName(field, name); err != nil {
		return err
	}
	if _, taken := c.Schema.Indexes[name]; taken || c.names[name] {
		return errField(field, "the name %q is already used by an index or constraint of schema %q", name, c.Opts.Schema)
	}
	// Relation names share one namespace: a name the old version still
	// uses (a table, a sequence, an index dropped only at complete) is taken.
	if c.Old.Relations[name] {
		return errField(field, "the name %q is already used by a relation of schema %q (until complete, for one this migration drops)", name, c.Opts.Schema)
	}
	c.names[name] = true
	return nil
}

// ValidName refuses a name PostgreSQL would silently truncate, which would
// make the model and the catalog disagree.
func ValidName(field, name string) error {
	if name == "" {
		return errField(field, "is required")
	}
	if strings.ContainsRune(name, 0) {
		return errField(field, "contains a NUL byte, which PostgreSQL identifiers cannot hold")
	}
	if len(name) > 63 {
		return errField(field, "%q is %d bytes long; PostgreSQL identifiers are at most 63 bytes", name, len(name))
	}
	return nil
}

// TableNow is the physical name of a table at this point of the contract.
func (c *Compiler) TableNow(t *schema.Table) string {
	if n, ok := c.nowTable[t.Physical]; ok {
		return n
	}
	return t.Physical
}

// SetTableNow records that the contract renames a table.
func (c *Compiler) SetTableNow(t *schema.Table, name string) { c.nowTable[t.Physical] = name }

// ColumnNow is the physical name of a column at this point of the contract.
func (c *Compiler) ColumnNow(t *schema.Table, phys string) string {
	if n, ok := c.nowCol[t.Physical+"\x00"+phys]; ok {
		return n
	}
	return phys
}

// SetColumnNow records that the contract renames a physical column.
func (c *Compiler) SetColumnNow(t *schema.Table, phys, name string) {
	c.nowCol[t.Physical+"\x00"+phys] = name
}

func (c *Compiler) views() []View {
	var out []View
	for _, name := range c.Schema.TableNames() {
		t := c.Schema.Tables[name]
		v := View{Name: t.Name, Table: t.Physical}
		for _, col := range t.Columns {
			vc := ViewColumn{Name: col.Name, Physical: col.Physical}
			if d, ok := c.viewDefaults[t.Physical][col.Physical]; ok {
				vc.Default = d
			} else if c.IsHidden(t.Physical, col.Physical) && col.Default != nil {
				d := *col.Default
				vc.Default = &d
			}
			v.Columns = append(v.Columns, vc)
		}
		out = append(out, v)
	}
	return out
}

// VersionSchemaName is the schema serving a version: "<schema>_<version>",
// shortened with a stable hash when PostgreSQL would truncate it.
func VersionSchemaName(schemaName, version string) string {
	return ShortName(schemaName + "_" + version)
}

// ShortName returns name when it fits PostgreSQL's 63-byte identifier limit;
// otherwise a prefix of it and a hash of the whole, so that two long names
// that share a prefix never collide after truncation.
func ShortName(name string) string {
	const max = 63
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:])[:10]
	cut := max - len(suffix)
	// Do not cut a multi-byte character in half.
	for cut > 0 && name[cut]&0xC0 == 0x80 {
		cut--
	}
	return name[:cut] + suffix
}

// dropIndexInTx and dropIndexAfter are the two halves of undoing an index
// build inside the rollback's single transaction (see DropIndexLater).
func (c *Compiler) dropIndexInTx(schema, name string) []string {
	inTx, _ := DropIndexLater(schema, name, c.plan.Name)
	return []string{inTx}
}

func (c *Compiler) dropIndexAfter(schema, name string) []string {
	_, after := DropIndexLater(schema, name, c.plan.Name)
	return []string{after}
}
