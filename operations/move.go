package operations

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/triggers"
)

// From is online's extension for moving data between tables: an add_column
// or create_table whose data comes from another table of the old version,
// kept equal on both sides by triggers on both tables while both versions
// run (see triggers.Move).
type From struct {
	// Table is the source table, as the old version names it.
	Table string `yaml:"table"`
	// Value (add_column) is the new column's value, an expression over the
	// source row; Values (create_table) gives each column of the new table
	// its expression over the source row.
	Value  string            `yaml:"value"`
	Values map[string]string `yaml:"values"`
	// Where joins a source row to the rows of the new place; it names
	// both tables by their names in the old version (the new table by its
	// own name).
	Where string `yaml:"where"`
	// Down carries writes through the new version back to the old place:
	// source column -> expression over the row of the new place.
	Down map[string]string `yaml:"down"`
	// Missing says what a row with no partner gets: add_column: "null"
	// (default: the column is NULL) or "refuse"; create_table: "skip"
	// (default: a source row with nothing to move has no row in the new
	// table) or "refuse". With refuse, start fails while such rows exist,
	// and a write through the new version with no source row to reach is
	// refused.
	Missing string `yaml:"missing"`
	// Several (add_column) says what a row with several source partners
	// gets: "refuse" (default: start fails while such rows exist) or
	// "same" (allowed when they all hold the same value).
	Several string `yaml:"several"`
}

// moveSQL lists the SQL fields of from under prefix.
func moveSQL(prefix string, f *From) []sqlField {
	if f == nil {
		return nil
	}
	fs := []sqlField{{prefix + ".value", f.Value, sqlcheck.Expr}, {prefix + ".where", f.Where, sqlcheck.Predicate}}
	for _, k := range slices.Sorted(maps.Keys(f.Values)) {
		fs = append(fs, sqlField{prefix + ".values." + k, f.Values[k], sqlcheck.Expr})
	}
	for _, k := range slices.Sorted(maps.Keys(f.Down)) {
		fs = append(fs, sqlField{prefix + ".down." + k, f.Down[k], sqlcheck.Expr})
	}
	return fs
}

// moveSource checks from's common fields and returns the source table of
// the old version.
func (c *Compiler) moveSource(f *From, column bool) (*schema.Table, error) {
	if err := Required("from.table", f.Table); err != nil {
		return nil, err
	}
	if err := Required("from.where", f.Where); err != nil {
		return nil, err
	}
	if column {
		if err := Required("from.value", f.Value); err != nil {
			return nil, err
		}
		if len(f.Values) > 0 {
			return nil, errField("from.values", "an add_column takes one value: use \"value\"")
		}
		switch f.Missing {
		case "", "null", "refuse":
		default:
			return nil, errField("from.missing", "%q is not a rule for a row with no partner; use \"null\" or \"refuse\"", f.Missing)
		}
		switch f.Several {
		case "", "refuse", "same":
		default:
			return nil, errField("from.several", "%q is not a rule for a row with several partners; use \"refuse\" or \"same\"", f.Several)
		}
	} else {
		if len(f.Values) == 0 {
			return nil, errField("from.values", "is required: the new table's columns and the expressions over the source row that fill them")
		}
		if f.Value != "" {
			return nil, errField("from.value", "a create_table takes \"values\", one per column")
		}
		if f.Several != "" {
			return nil, errField("from.several", "a create_table makes one row per source row; \"several\" is for add_column")
		}
		switch f.Missing {
		case "", "skip", "refuse":
		default:
			return nil, errField("from.missing", "%q is not a rule for a source row with nothing to move; use \"skip\" or \"refuse\"", f.Missing)
		}
	}
	src := c.Old.Table(f.Table)
	if src == nil {
		return nil, errField("from.table", "table %q is not in the old version: the data moves from a table the old version has", f.Table)
	}
	if err := plainTable("from.table", src); err != nil {
		return nil, err
	}
	if len(src.KeyColumns()) == 0 {
		return nil, errField("from.table", "table %q has no primary key and no unique NOT NULL column: the triggers and the backfill need one", f.Table)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Down)) {
		if src.Column(k) == nil {
			return nil, wrapField("from.down."+k, &schema.NotFoundError{Kind: "column", Name: k, Table: f.Table})
		}
	}
	return src, nil
}

// plainTable refuses a table whose names the move's SQL could not use as
// written: the expressions name tables and columns as the old version
// does, and the triggers run on the physical tables.
func plainTable(field string, t *schema.Table) error {
	if t.Partitioned {
		return errField(field, "table %q is partitioned; moving data from or to a partitioned table is not supported yet", t.Name)
	}
	if t.Physical != t.Name {
		return errField(field, "table %q is stored under another name (%q) until a migration completes; move its data in a later migration", t.Name, t.Physical)
	}
	for _, col := range t.Columns {
		if col.Physical != col.Name {
			return errField(field, "column %q of table %q is stored under another name until a migration completes; move its data in a later migration", col.Name, t.Name)
		}
	}
	return nil
}

func sortedAssigns(m map[string]string) []triggers.Assign {
	var out []triggers.Assign
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, triggers.Assign{Column: k, Expr: m[k]})
	}
	return out
}

func moveID(target, what string) string {
	return "m" + rewriteID(target, what)[1:]
}

// moveContract plans the drop of a move's triggers at complete, before
// anything else of the contract: the migration's own drop_column or
// drop_table of the old place comes after them.
func (c *Compiler) moveContract(mv triggers.Move) {
	c.moveDrops = append(c.moveDrops, Step{
		Op:   c.op,
		Do:   fmt.Sprintf("drop the triggers that keep %s and %s equal", mv.Source.Alias, mv.Target.Alias),
		SQL:  triggers.DropMove(mv),
		Lock: "ACCESS EXCLUSIVE on both tables (catalog only, instant)",
	})
}

// addColumnFrom plans an add_column whose values come from another table.
func (c *Compiler) addColumnFrom(t *schema.Table, col *Column, f *From) error {
	if t.Created {
		return errField("from", "table %q is created by this migration: give create_table a \"from\" instead", t.Name)
	}
	ot := c.oldTable(t)
	if ot == nil {
		return errField("table", "table %q has no old version", t.Name)
	}
	if err := plainTable("table", ot); err != nil {
		return err
	}
	if len(ot.KeyColumns()) == 0 {
		return errField("table", "table %q has no primary key and no unique NOT NULL column: the backfill needs one to walk the table in batches", t.Name)
	}
	src, err := c.moveSource(f, true)
	if err != nil {
		return err
	}
	if src.Name == t.Name {
		return errField("from.table", "the source is the table itself: use \"up\"")
	}
	switch {
	case !col.nullable():
		return errField("column.nullable", "a column filled from another table starts nullable (rows with no partner hold NULL): say \"nullable: true\", and set NOT NULL in a later migration")
	case col.Default != nil:
		return errField("column.default", "a column filled from another table takes its partners' values; a default would hide a missing partner")
	case col.Generated != nil || col.PK || col.Unique || col.Check != nil || col.References != nil:
		return errField("column", "a column filled from another table takes no constraint or generation in the same operation; add them with create_constraint or a later migration")
	}
	phys, hidden := c.NewColumnName(t, col.Name, false)
	if hidden {
		return errField("column.name", "table %q still holds a column %q for the old version; move the data in a later migration", t.Name, col.Name)
	}
	mc := modelColumn(col, phys)
	t.Columns = append(t.Columns, mc)
	mv := triggers.Move{
		ID:            moveID(t.Physical, phys),
		Source:        triggers.MoveTable{Schema: c.Opts.Schema, Name: src.Physical, Alias: src.Name, Key: physicalKey(src)},
		Target:        triggers.MoveTable{Schema: c.Opts.Schema, Name: ot.Physical, Alias: ot.Name, Key: physicalKey(ot)},
		Where:         f.Where,
		FuncSchema:    c.Opts.StateSchema,
		Column:        phys,
		Value:         f.Value,
		Down:          sortedAssigns(f.Down),
		RefuseMissing: f.Missing == "refuse",
	}
	if err := triggers.ValidateMove(mv); err != nil {
		return errField("from", "%v", err)
	}
	table := c.Qualified(t.Physical)
	c.Expand(Step{
		Do: fmt.Sprintf("add column %s.%s and the triggers on %s and %s that keep it equal to %s", t.Name, col.Name, src.Name, t.Name, src.Name),
		// The source first: a write of a source row that references the
		// target (a child and its parent) holds the source and then
		// checks its foreign key in the target, so the other order would
		// deadlock with every such write.
		SQL: append([]string{
			fmt.Sprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", c.Qualified(src.Physical)),
			fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", table, pg.Ident(phys), col.Type)}, triggers.CreateMove(mv)...),
		Undo: append(triggers.DropMove(mv), fmt.Sprintf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", table, pg.Ident(phys))),
		Lock: fmt.Sprintf("SHARE ROW EXCLUSIVE on %s, then ACCESS EXCLUSIVE on %s (catalog only, instant)", src.Name, t.Name),
	})
	var key []KeyColumn
	for _, k := range physicalKey(ot) {
		key = append(key, KeyColumn{Name: k, Type: ot.ColumnByPhysical(k).Type})
	}
	c.plan.Backfill = append(c.plan.Backfill, Backfill{
		Ops:   []int{c.op},
		Table: t.Physical,
		Key:   key,
		Set:   []Assignment{{Column: phys, Expr: fmt.Sprintf("(SELECT %s FROM %s AS %s WHERE %s LIMIT 1)", pg.Paren(f.Value), c.Qualified(src.Physical), pg.Ident(src.Name), pg.Paren(f.Where))}},
		Where: pg.Ident(phys) + " IS NULL",
	})
	c.moveContract(mv)
	return nil
}

// createTableFrom plans the rows of a table create_table makes, taken from
// another table.
func (c *Compiler) createTableFrom(t *schema.Table, f *From) error {
	src, err := c.moveSource(f, false)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(f.Values)) {
		if t.Column(k) == nil {
			return wrapField("from.values."+k, &schema.NotFoundError{Kind: "column", Name: k, Table: t.Name})
		}
	}
	mv := triggers.Move{
		ID:            moveID(t.Physical, ""),
		Source:        triggers.MoveTable{Schema: c.Opts.Schema, Name: src.Physical, Alias: src.Name, Key: physicalKey(src)},
		Target:        triggers.MoveTable{Schema: c.Opts.Schema, Name: t.Physical, Alias: t.Name, Key: physicalKey(t)},
		Where:         f.Where,
		FuncSchema:    c.Opts.StateSchema,
		Values:        sortedAssigns(f.Values),
		Down:          sortedAssigns(f.Down),
		RefuseMissing: f.Missing == "refuse",
	}
	if err := triggers.ValidateMove(mv); err != nil {
		return errField("from", "%v", err)
	}
	c.Expand(Step{
		Do:   fmt.Sprintf("install the triggers on %s and %s that keep them equal", src.Name, t.Name),
		SQL:  triggers.CreateMove(mv),
		Undo: triggers.DropMove(mv),
		Lock: fmt.Sprintf("SHARE ROW EXCLUSIVE on %s (instant)", src.Name),
	})
	var key []KeyColumn
	for _, k := range physicalKey(src) {
		key = append(key, KeyColumn{Name: k, Type: src.ColumnByPhysical(k).Type})
	}
	var cols, exprs []string
	for _, a := range mv.Values {
		cols = append(cols, a.Column)
		exprs = append(exprs, a.Expr)
	}
	where := fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s AS %s WHERE %s)", c.Qualified(t.Physical), pg.Ident(t.Name), pg.Paren(f.Where))
	if p := movePresent(f); p != "" {
		where = "(" + p + ") AND " + where
	}
	c.plan.Backfill = append(c.plan.Backfill, Backfill{
		Ops:    []int{c.op},
		Table:  src.Physical,
		Key:    key,
		Insert: &Insert{Into: t.Physical, Columns: cols, Exprs: exprs},
		Where:  where,
	})
	c.moveContract(mv)
	return nil
}

// movePresent is the test, over the source row's own columns, that it has
// something to move to a new table: one of the columns down writes holds
// a value. "" when every row has (no down).
func movePresent(f *From) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f.Down)) {
		parts = append(parts, pg.Ident(k)+" IS NOT NULL")
	}
	return strings.Join(parts, " OR ")
}

// moveChecks are the checks start makes before it changes anything: the
// expressions against both tables, then the data against the partner
// rules. base names the operation; target is the table of the new place
// (nil for create_table, whose table does not exist yet).
func moveChecks(base CatalogCheck, old *schema.Schema, f *From, target string, column string) []CatalogCheck {
	src := old.Table(f.Table)
	if src == nil {
		return nil
	}
	srcRel := pg.Ident(src.Physical) + " AS " + pg.Ident(src.Name)
	var out []CatalogCheck
	add := func(field, sql, msg string) {
		k := base
		k.Field, k.SQL, k.InSchema = field, sql, true
		if msg != "" {
			k.Rows, k.Message = true, msg
		}
		out = append(out, k)
	}
	if column == "" {
		// create_table: the target does not exist yet; only the source side
		// can be checked, and the rule for rows with nothing to move.
		for _, k := range slices.Sorted(maps.Keys(f.Values)) {
			add("from.values."+k, fmt.Sprintf("SELECT %s FROM %s WHERE false", pg.Paren(f.Values[k]), srcRel), "")
		}
		if p := movePresent(f); p != "" && f.Missing == "refuse" {
			keys, order := physicalKeyQuoted(src, src.Name)
			add("from.missing", fmt.Sprintf("SELECT count(*), string_agg(k, ', ' ORDER BY n) FILTER (WHERE n <= 5) FROM (SELECT %s AS k, row_number() OVER (ORDER BY %s) AS n FROM %s WHERE NOT (%s)) s", keys, order, srcRel, p),
				fmt.Sprintf("missing: refuse, and %%d rows of %s have nothing to move (all of %s NULL); keys: %%s", src.Name, strings.Join(slices.Sorted(maps.Keys(f.Down)), ", ")))
		}
		return out
	}
	tgt := old.Table(target)
	if tgt == nil {
		return out
	}
	tgtRel := pg.Ident(tgt.Physical) + " AS " + pg.Ident(tgt.Name)
	add("from.where", fmt.Sprintf("SELECT 1 FROM %s, %s WHERE %s AND false", srcRel, tgtRel, pg.Paren(f.Where)), "")
	add("from.value", fmt.Sprintf("SELECT %s FROM %s, %s WHERE false", pg.Paren(f.Value), srcRel, tgtRel), "")
	keys, order := physicalKeyQuoted(tgt, tgt.Name)
	partners := fmt.Sprintf("(SELECT count(*) FROM %s WHERE %s)", srcRel, pg.Paren(f.Where))
	if f.Missing == "refuse" {
		add("from.missing", fmt.Sprintf("SELECT count(*), string_agg(k, ', ' ORDER BY n) FILTER (WHERE n <= 5) FROM (SELECT %s AS k, row_number() OVER (ORDER BY %s) AS n FROM %s WHERE %s = 0) s", keys, order, tgtRel, partners),
			fmt.Sprintf("missing: refuse, and %%d rows of %s have no row of %s where %s; keys: %%s", tgt.Name, src.Name, f.Where))
	}
	cond, rule := partners+" > 1", fmt.Sprintf("several: refuse, and %%d rows of %s have more than one row of %s where %s; keys: %%s (several: same accepts them when they agree)", tgt.Name, src.Name, f.Where)
	if f.Several == "same" {
		// NULL is one more value, however many partners hold it.
		cond = fmt.Sprintf("(SELECT count(DISTINCT %s) + max(CASE WHEN %s IS NULL THEN 1 ELSE 0 END) FROM %s WHERE %s) > 1", pg.Paren(f.Value), pg.Paren(f.Value), srcRel, pg.Paren(f.Where))
		rule = fmt.Sprintf("several: same, and %%d rows of %s have rows of %s that disagree on the value; keys: %%s", tgt.Name, src.Name)
	}
	add("from.several", fmt.Sprintf("SELECT count(*), string_agg(k, ', ' ORDER BY n) FILTER (WHERE n <= 5) FROM (SELECT %s AS k, row_number() OVER (ORDER BY %s) AS n FROM %s WHERE %s) s", keys, order, tgtRel, cond), rule)
	return out
}

// physicalKeyQuoted is t's key as one text value per row, for examples,
// and the key's columns, to order them by.
func physicalKeyQuoted(t *schema.Table, alias string) (text, order string) {
	var parts, cols []string
	for _, k := range physicalKey(t) {
		parts = append(parts, pg.Ident(alias, k)+"::text")
		cols = append(cols, pg.Ident(alias, k))
	}
	order = strings.Join(cols, ", ")
	if len(parts) == 1 {
		return parts[0], order
	}
	return "'(' || concat_ws(',', " + strings.Join(parts, ", ") + ") || ')'", order
}

// mover is an operation that may move data from another table.
type mover interface {
	moveChecks(base CatalogCheck, old *schema.Schema) []CatalogCheck
}
