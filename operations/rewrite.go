package operations

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/triggers"
)

// rewrite is a column whose data the new version sees differently: a hidden
// physical column, filled by a backfill and kept equal to the old column by
// sync triggers in both directions, swapped into place at complete.
//
// Several operations on one column add to the same rewrite (their up steps
// chain, their down steps chain in reverse), so a table is backfilled once
// per migration however many changes it gets.
type rewrite struct {
	table   *schema.Table  // the new version's table
	col     *schema.Column // the new version's column (nil: add_column)
	oldPhys string         // "" for add_column
	oldType string
	newPhys string
	newType string
	up      []triggers.Step
	down    []triggers.Step // applied in order, from the new value to the old
	// downIn is the name under which the newest down step reads the new
	// column: its name right after the operation that wrote that step.
	downIn string
	// comment of the old column, copied to the new one at complete.
	comment *string
	// swaps are statements run at complete after the new column takes
	// the old one's name: renaming the constraints and indexes rebuilt on
	// the new column to the names the old ones had.
	swaps   []string
	notNull string // name of the check constraint that proves NOT NULL
	added   bool   // add_column: no old column
	// identity and oldDefault are the old column's, as read: the sequence
	// behind them moves to the new column at complete (see pk.go).
	identity   string
	oldDefault *string
}

func rewriteID(table, col string) string {
	sum := sha256.Sum256([]byte(table + "\x00" + col))
	return "r" + hex.EncodeToString(sum[:])[:12]
}

// findRewrite returns the pending rewrite whose new column serves col.
func (c *Compiler) findRewrite(t *schema.Table, col *schema.Column) *rewrite {
	for _, r := range c.rewrites {
		if r.table == t && r.newPhys == col.Physical {
			return r
		}
	}
	return nil
}

func identityOr(expr, name string) string {
	if expr != "" {
		return expr
	}
	return pg.Ident(name)
}

func (c *Compiler) oldTable(t *schema.Table) *schema.Table {
	if t.Created {
		return nil
	}
	return c.oldPhysical(t.Physical)
}

// rewriteSpec is one change of a column's data that a rewrite carries out,
// as plain data: alter_column, create_constraint and drop_constraint each
// describe theirs, and alterRewrite knows no operation.
type rewriteSpec struct {
	// newType is the column's type in the new version; "" keeps it.
	newType string
	// up computes the new version's value from the old row, down the old
	// version's value from the new row; "" casts when the type changes,
	// and copies otherwise.
	up, down string
	// rename is the column's name after the change, when it renames it.
	rename string
	// nullable is the column's nullability in the new version; nil keeps
	// it.
	nullable *bool
	// defSet says the change sets the column's default to def (nil: none).
	defSet bool
	def    *string
}

// alterRewrite plans a change of a column whose new version needs different
// data: a type change, NOT NULL over existing NULLs, or an explicit up. It
// returns the physical name of the new version's column.
func (c *Compiler) alterRewrite(t *schema.Table, col *schema.Column, spec rewriteSpec) (string, error) {
	if t.Created {
		return "", errField("column", "table %q is created by this migration: declare the column as it should be in create_table", t.Name)
	}
	if c.oldTable(t) == nil {
		return "", errField("table", "table %q has no old version to convert from", t.Name)
	}
	if len(t.KeyColumns()) == 0 {
		return "", errField("table", "table %q has no primary key and no unique NOT NULL column: the backfill needs one to walk the table in batches", t.Name)
	}
	newType := col.Type
	if spec.newType != "" {
		newType = spec.newType
	}
	r := c.findRewrite(t, col)
	if r == nil {
		if err := c.checkReferencingRewrite(t, col); err != nil {
			return "", err
		}
		for _, g := range t.Columns {
			if g.Generated && len(exprColumns(g.GeneratedExpr, []string{col.Physical})) > 0 {
				return "", errField("column", "generated column %q of table %q is computed from column %q; rewriting a column a generated column reads is not supported yet", g.Name, t.Name, col.Name)
			}
		}
		if t.Partitioned {
			// Indexes are rebuilt partition by partition (partition.go).
			if err := c.partitionedRewrite(t, col); err != nil {
				return "", err
			}
		}
		phys, _ := c.NewColumnName(t, col.Name, true)
		r = &rewrite{table: t, col: col, oldPhys: col.Physical, oldType: col.Type, newPhys: phys, comment: col.Comment, identity: col.Identity, oldDefault: col.Default}
		c.rewrites = append(c.rewrites, r)
		c.relaxIdentity(t, col)
		c.rebuildDependents(t, col, r)
		if !col.Nullable && (spec.nullable == nil || !*spec.nullable) {
			r.notNull = ShortName(t.Physical + "_" + col.Name + "_online_nn")
		}
		col.Physical = phys
	}
	if err := c.checkKeyRewrite(t, col, r, newType, spec.nullable); err != nil {
		return "", err
	}
	prevType := col.Type
	upExpr := spec.up
	if upExpr == "" && spec.newType != "" {
		upExpr = fmt.Sprintf("CAST(%s AS %s)", pg.Ident(col.Name), newType)
	}
	// up reads the column under its name before this operation; down
	// reads it under its name after it (a rename in the same operation
	// included) and yields the value under the name before.
	inName := col.Name
	if spec.rename != "" {
		inName = spec.rename
	}
	downExpr := spec.down
	if downExpr == "" && spec.newType != "" {
		downExpr = fmt.Sprintf("CAST(%s AS %s)", pg.Ident(inName), prevType)
	}
	if len(r.up) > 0 {
		// The next step reads the previous step's result under the
		// column's current name.
		r.up[len(r.up)-1].Name = col.Name
	}
	r.up = append(r.up, triggers.Step{Expr: identityOr(upExpr, col.Name), Name: col.Name, Type: newType})
	r.down = append([]triggers.Step{{Expr: identityOr(downExpr, inName), Name: col.Name, Type: prevType}}, r.down...)
	r.downIn = inName
	r.newType = newType
	col.Type = newType

	if spec.defSet {
		col.Default = spec.def
	}
	if spec.nullable != nil {
		if *spec.nullable {
			col.Nullable = true
			r.notNull = ""
		} else {
			col.Nullable = false
			r.notNull = ShortName(t.Physical + "_" + col.Name + "_online_nn")
		}
	}
	return r.newPhys, nil
}

// rebuildDependents recreates, on the new column, the indexes and
// constraints of the old column that dropping it at complete would take
// away. They are built without blocking after the backfill, under temporary
// names, and renamed to the old names at complete.
//
// An index or constraint over several columns that the migration rewrites
// is rebuilt once, over all of their new columns: the first rewrite plans
// it, each later one adds its column to the rebuild's renames and rewrites
// the planned statement in place.
func (c *Compiler) rebuildDependents(t *schema.Table, col *schema.Column, r *rewrite) {
	table := c.Qualified(t.Physical)
	for _, n := range slices.Sorted(maps.Keys(t.Indexes)) {
		ix := t.Indexes[n]
		if ix.Primary || ix.Definition == "" || !indexUses(ix, col.Physical) || c.skipDependents[ix.Name] || c.skipDependents[ix.Constraint] {
			continue
		}
		if c.extendRebuild(t, "index "+n, col.Physical, r.newPhys) {
			continue
		}
		tmp := ShortName("_online_" + n)
		c.names[tmp] = true
		_, rest, ok := strings.Cut(ix.Definition, " ON ")
		if !ok {
			continue
		}
		unique := ""
		if ix.Unique {
			unique = "UNIQUE "
		}
		c.planDependent(t, "index "+n, col.Physical, r.newPhys, func(rename map[string]string) []string {
			return []string{"DROP INDEX CONCURRENTLY IF EXISTS " + c.Qualified(tmp),
				fmt.Sprintf("CREATE %sINDEX CONCURRENTLY %s ON %s", unique, pg.Ident(tmp), sqllex.RenameIdentifiers(rest, rename))}
		}, Step{
			Do:        fmt.Sprintf("rebuild index %s on the new column %s.%s", n, t.Name, col.Name),
			Undo:      c.dropIndexInTx(c.Opts.Schema, tmp),
			UndoAfter: c.dropIndexAfter(c.Opts.Schema, tmp),
			Lock:      "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
			NoTx:      true,
		})
		final := n
		if ix.Constraint != "" {
			r.swaps = append(r.swaps, fmt.Sprintf("ALTER TABLE {table} ADD CONSTRAINT %s UNIQUE USING INDEX %s", pg.Ident(ix.Constraint), pg.Ident(tmp)))
			final = ix.Constraint
		} else {
			r.swaps = append(r.swaps, fmt.Sprintf("ALTER INDEX %s RENAME TO %s", c.Qualified(tmp), pg.Ident(n)))
		}
		if ix.ReplicaIdentity {
			// Dropping the old column dropped the identity's index; the
			// rebuilt one takes its place for logical replication.
			r.swaps = append(r.swaps, fmt.Sprintf("ALTER TABLE {table} REPLICA IDENTITY USING INDEX %s", pg.Ident(final)))
		}
	}
	var cons []string
	for n, con := range t.Constraints {
		if (con.Type == "c" || con.Type == "f") && containsString(con.Columns, col.Physical) && !c.skipDependents[n] {
			cons = append(cons, n)
		}
	}
	sort.Strings(cons)
	for _, n := range cons {
		if c.extendRebuild(t, "constraint "+n, col.Physical, r.newPhys) {
			continue
		}
		con := t.Constraints[n]
		tmp := ShortName("_online_" + n)
		c.names[tmp] = true
		c.planDependent(t, "constraint "+n, col.Physical, r.newPhys, func(rename map[string]string) []string {
			def := strings.TrimSuffix(sqllex.RenameIdentifiers(con.Definition, rename), " NOT VALID")
			return []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", table, pg.Ident(tmp), def)}
		}, Step{
			Do:   fmt.Sprintf("rebuild constraint %s on the new column %s.%s (NOT VALID)", n, t.Name, col.Name),
			Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", table, pg.Ident(tmp))},
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
		if con.Validated {
			c.Finish(Step{
				Do:   fmt.Sprintf("validate rebuilt constraint %s", n),
				SQL:  []string{fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", table, pg.Ident(tmp))},
				Lock: "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
			})
		}
		r.swaps = append(r.swaps, fmt.Sprintf("ALTER TABLE {table} RENAME CONSTRAINT %s TO %s", pg.Ident(tmp), pg.Ident(n)))
	}
}

// rebuild is an index or constraint of a table planned to be rebuilt on
// the new columns of the rewrites that touch it.
type rebuild struct {
	step   int               // its finish step
	rename map[string]string // old physical column -> new
	render func(rename map[string]string) []string
}

// planDependent adds the finish step s of a rebuild, its statements rendered
// for the renames known so far.
func (c *Compiler) planDependent(t *schema.Table, what, oldPhys, newPhys string, render func(map[string]string) []string, s Step) {
	rb := &rebuild{step: len(c.plan.Finish), rename: map[string]string{oldPhys: newPhys}, render: render}
	s.SQL = render(rb.rename)
	c.Finish(s)
	if c.rebuilds == nil {
		c.rebuilds = map[string]*rebuild{}
	}
	c.rebuilds[t.Physical+"\x00"+what] = rb
}

// extendRebuild adds a column to a rebuild planned by an earlier rewrite of
// the same migration, and reports whether there was one.
func (c *Compiler) extendRebuild(t *schema.Table, what, oldPhys, newPhys string) bool {
	rb := c.rebuilds[t.Physical+"\x00"+what]
	if rb == nil {
		return false
	}
	rb.rename[oldPhys] = newPhys
	c.plan.Finish[rb.step].SQL = rb.render(rb.rename)
	return true
}

func indexUses(ix *schema.Index, col string) bool {
	if containsString(ix.Columns, col) {
		return true
	}
	_, rest, _ := strings.Cut(ix.Definition, " USING ")
	return len(sqllex.ReferencedColumns(rest, []string{col})) > 0
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// addColumnUp plans a new column filled from existing data by up.
func (c *Compiler) addColumnUp(t *schema.Table, mc *schema.Column, col *Column, up string) error {
	if t.Created {
		return errField("up", "table %q is created by this migration and has no rows to fill; remove up", t.Name)
	}
	if len(t.KeyColumns()) == 0 {
		return errField("table", "table %q has no primary key and no unique NOT NULL column: the backfill needs one to walk the table in batches", t.Name)
	}
	if col.Generated != nil {
		return errField("up", "a generated column computes its own values; remove up")
	}
	// The column must be hidden so that an old-version INSERT, which cannot
	// name it, is told apart by its NULL (see package triggers).
	if !c.IsHidden(t.Physical, mc.Physical) {
		delete(c.planned[t.Physical], mc.Physical)
		phys, _ := c.NewColumnName(t, col.Name, true)
		mc.Physical = phys
	}
	r := &rewrite{table: t, col: mc, newPhys: mc.Physical, newType: col.Type, added: true, comment: col.Comment}
	r.up = []triggers.Step{{Expr: up, Name: col.Name, Type: col.Type}}
	if !col.nullable() {
		r.notNull = ShortName(t.Physical + "_" + col.Name + "_online_nn")
	}
	c.rewrites = append(c.rewrites, r)
	return nil
}

// dropColumnDown installs the trigger that fills a dropped column for rows
// the new version inserts; it goes with the column at complete.
func (c *Compiler) dropColumnDown(t *schema.Table, col *schema.Column, down string) error {
	ot := c.oldTable(t)
	if ot == nil {
		return errField("table", "table %q is created by this migration; remove down", t.Name)
	}
	var vars []triggers.Var
	for _, other := range t.Columns {
		if other != col {
			vars = append(vars, triggers.Var{Name: other.Name, Type: other.Type, Physical: other.Physical})
		}
	}
	steps := []triggers.Step{{Expr: down, Name: col.Name, Type: col.Type}}
	inputs, _ := usedVars(steps, vars, "")
	tt := triggers.Table{Schema: c.Opts.Schema, Name: t.Physical, FuncSchema: c.Opts.StateSchema, Key: physicalKey(t)}
	rw := triggers.Rewrite{
		ID:        rewriteID(t.Physical, col.Physical),
		OldColumn: col.Physical,
		Down:      &triggers.Conversion{Inputs: inputs, Steps: steps},
	}
	if err := triggers.Validate(rw); err != nil {
		return errField("down", "%v", err)
	}
	tt.CallerPath = c.callerPathSafe(rw)
	c.Expand(Step{
		Do:   fmt.Sprintf("install the trigger that fills %s.%s for new-version inserts", t.Name, col.Name),
		SQL:  triggers.Create(tt, rw),
		Undo: triggers.Drop(tt, rw),
		Lock: "SHARE ROW EXCLUSIVE (instant)",
	})
	c.dropTriggers[t.Physical+"\x00"+col.Physical] = triggers.Drop(tt, rw)
	return nil
}

func physicalKey(t *schema.Table) []string {
	var out []string
	for _, k := range t.KeyColumns() {
		if col := t.Column(k); col != nil {
			out = append(out, col.Physical)
		}
	}
	return out
}

// finishRewrites turns the pending rewrites into steps: per table, one
// expand step (hidden columns and triggers together, in one transaction so
// that no write slips between them), one backfill, NOT NULL proofs after
// it, and one contract step per column that swaps it into place.
func (c *Compiler) finishRewrites() error {
	byTable := map[*schema.Table][]*rewrite{}
	var order []*schema.Table
	for _, r := range c.rewrites {
		if byTable[r.table] == nil {
			order = append(order, r.table)
		}
		byTable[r.table] = append(byTable[r.table], r)
	}
	for _, t := range order {
		if c.Schema.Tables[t.Name] != t {
			return fmt.Errorf("table %q is dropped later in the migration that changes its columns; split the migration", t.Name)
		}
		ot := c.oldTable(t)
		if ot == nil {
			return fmt.Errorf("table %q has no old version", t.Name)
		}
		tt := triggers.Table{Schema: c.Opts.Schema, Name: t.Physical, FuncSchema: c.Opts.StateSchema, Key: physicalKey(ot)}
		var oldVars, newVars []triggers.Var
		for _, col := range ot.Columns {
			oldVars = append(oldVars, triggers.Var{Name: col.Name, Type: col.Type, Physical: col.Physical})
		}
		for _, col := range t.Columns {
			newVars = append(newVars, triggers.Var{Name: col.Name, Type: col.Type, Physical: col.Physical})
		}
		var expand, undo, nulls []string
		// Before the loop, so that the foreign keys are added again before
		// the NOT NULL checks of the loop: order among finish steps does
		// not matter otherwise.
		kw, err := c.planKeys(t, byTable[t])
		if err != nil {
			return err
		}
		var keySwap, trigDrops []string
		firstSwap := len(c.plan.Contract)
		bf := Backfill{Table: t.Physical}
		for _, k := range tt.Key {
			kc := ot.ColumnByPhysical(k)
			bf.Key = append(bf.Key, KeyColumn{Name: k, Type: kc.Type})
		}
		for _, r := range byTable[t] {
			expand = append(expand, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", c.Qualified(t.Physical), pg.Ident(r.newPhys), r.newType))
			rw := triggers.Rewrite{
				ID:        rewriteID(t.Physical, r.newPhys),
				OldColumn: r.oldPhys,
				NewColumn: r.newPhys,
			}
			// Each conversion gets as inputs only the columns its steps
			// mention: fewer copies per row, and exact watch lists.
			upIn, upWatch := usedVars(r.up, oldVars, r.oldPhys)
			rw.Up = &triggers.Conversion{Inputs: upIn, Steps: r.up}
			rw.UpWatch = upWatch
			if !r.added {
				vars := make([]triggers.Var, len(newVars))
				for i, v := range newVars {
					if v.Physical == r.newPhys {
						v.Name = r.downIn
					}
					vars[i] = v
				}
				downIn, downWatch := usedVars(r.down, vars, r.newPhys)
				rw.Down = &triggers.Conversion{Inputs: downIn, Steps: r.down}
				rw.DownWatch = downWatch
			}
			if err := triggers.Validate(rw); err != nil {
				return fmt.Errorf("column %s.%s: %w", t.Name, r.col.Name, err)
			}
			ttr := tt
			ttr.CallerPath = c.callerPathSafe(rw)
			expand = append(expand, triggers.Create(ttr, rw)...)
			undo = append(append(undo, triggers.Drop(tt, rw)...), fmt.Sprintf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", c.Qualified(t.Physical), pg.Ident(r.newPhys)))
			bf.Set = append(bf.Set, Assignment{Column: r.newPhys, Expr: triggers.BackfillExpr(*rw.Up)})
			nulls = append(nulls, pg.Ident(r.newPhys)+" IS NULL")
			if r.notNull != "" {
				c.names[r.notNull] = true
				c.addCheck(t, r.notNull, pg.Ident(r.newPhys)+" IS NOT NULL", false)
			}
			c.viewSequenceDefault(t, r)
			// The sync triggers of every rewritten column of the table go
			// first: one column's conversion may read another's old column,
			// which the swaps drop.
			trigDrops = append(trigDrops, triggers.Drop(tt, rw)...)
			swap := c.contractRewrite(t, r, nil)
			if kw == nil {
				c.plan.Contract = append(c.plan.Contract, Step{
					Do:   fmt.Sprintf("swap the new column %s.%s into place", t.Name, r.col.Name),
					SQL:  swap,
					Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
				})
			} else {
				keySwap = append(keySwap, swap...)
			}
		}
		c.plan.Contract = slices.Insert(c.plan.Contract, firstSwap, Step{
			Do:   fmt.Sprintf("drop the sync triggers of %s", t.Name),
			SQL:  trigDrops,
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
		if kw != nil {
			// One transaction for the whole table: between dropping the old
			// key and attaching the new one, no other session may see it
			// without a primary key (logical replication refuses updates of
			// such a table) or its foreign keys half moved.
			c.plan.Contract = append(c.plan.Contract, Step{
				Do:   fmt.Sprintf("swap the new columns of %s into place with its key and the foreign keys referencing it", t.Name),
				SQL:  append(append(kw.pre, keySwap...), kw.post...),
				Lock: "ACCESS EXCLUSIVE on the table and the referencing tables (catalog only, instant: validated constraints prove NOT NULL and the foreign keys)",
			})
		}
		c.plan.Expand = append(c.plan.Expand, Step{
			Do:   fmt.Sprintf("add the new columns of %s and their sync triggers", t.Name),
			SQL:  expand,
			Undo: undo,
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
		// Only rows no trigger has converted yet: defence in depth, as the
		// new version is published only after the backfill.
		bf.Where = strings.Join(nulls, " OR ")
		c.plan.Backfill = append(c.plan.Backfill, leafBackfills(ot, bf)...)
	}
	c.attachUniques()
	c.attachPrimaryKeys()
	return nil
}

// usedVars picks the variables that the steps mention (always the one
// read from self, the column being converted) and the physical columns
// besides self whose change must recompute the conversion.
func usedVars(steps []triggers.Step, vars []triggers.Var, self string) (in []triggers.Var, watch []string) {
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.Name
	}
	used := map[string]bool{}
	for _, s := range steps {
		for _, n := range exprColumns(s.Expr, names) {
			used[n] = true
		}
	}
	for _, v := range vars {
		if v.Physical == self || used[v.Name] {
			in = append(in, v)
			if v.Physical != self {
				watch = append(watch, v.Physical)
			}
		}
	}
	return in, watch
}

// contractRewrite returns the statements that swap the new column into the
// old one's place.
func (c *Compiler) contractRewrite(t *schema.Table, r *rewrite, dropTriggers []string) []string {
	table := c.Qualified(c.TableNow(t))
	sql := append([]string{}, dropTriggers...)
	if !r.added {
		sql = append(sql, c.sequenceHandoff(t, r)...)
		sql = append(sql, fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", table, pg.Ident(c.ColumnNow(t, r.oldPhys))))
	}
	now := c.ColumnNow(t, r.newPhys)
	if now != r.col.Name {
		sql = append(sql, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", table, pg.Ident(now), pg.Ident(r.col.Name)))
	}
	col := pg.Ident(r.col.Name)
	if r.notNull != "" {
		// The validated check proves no NULL exists, so SET NOT NULL
		// skips its full-table scan under the exclusive lock.
		sql = append(sql,
			fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", table, col),
			fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, pg.Ident(r.notNull)))
		delete(t.Constraints, r.notNull)
	}
	if r.col.Default != nil {
		sql = append(sql, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", table, col, *r.col.Default))
	}
	if r.comment != nil {
		sql = append(sql, commentSQL("COLUMN", table+"."+col, r.comment))
	}
	for _, s := range r.swaps {
		sql = append(sql, strings.ReplaceAll(s, "{table}", table))
	}
	if stmt, ok := notNullName(table, c.TableNow(t), r.col.Name); ok && c.Schema.ServerVersion >= 180000 {
		sql = append(sql, stmt)
	}
	c.SetColumnNow(t, r.newPhys, r.col.Name)
	return sql
}

// notNullName returns a statement that gives a column's NOT NULL
// constraint PostgreSQL's default name, <table>_<column>_not_null, when it
// was made under the hidden column's name. From PostgreSQL 18 a NOT NULL
// is a named constraint, named after the column when it is set; a key or
// identity column gets it before the swap (PRIMARY KEY USING INDEX and
// identity need it), and a column rename does not rename it. Nothing is
// done when the default name would not fit in 63 bytes or is taken.
func notNullName(table, tableName, column string) (string, bool) {
	want := tableName + "_" + column + "_not_null"
	if len(want) > 63 {
		return "", false
	}
	body := fmt.Sprintf(`
DECLARE
    n name;
BEGIN
    SELECT c.conname INTO n
    FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.conrelid = %[1]s::regclass AND c.contype = 'n' AND a.attname = %[2]s;
    IF n IS NOT NULL AND n <> %[3]s AND strpos(n, '_online_') > 0
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = %[1]s::regclass AND conname = %[3]s) THEN
        EXECUTE pg_catalog.format('ALTER TABLE %%s RENAME CONSTRAINT %%I TO %%I', %[1]s, n, %[3]s);
    END IF;
END
`, pg.Literal(table), pg.Literal(column), pg.Literal(want))
	return "DO " + pg.DollarQuote(body), true
}

func asFieldErr(err error, fe **fieldErr) bool { return errors.As(err, fe) }
