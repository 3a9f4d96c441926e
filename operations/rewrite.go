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
	// up and down are the conversions' steps as their operations wrote
	// them, each against the schema as of that operation; down is in the
	// order it is applied, from the new value to the old. finishRewrites
	// turns them into trigger steps (see convSteps).
	up   []exprStep
	down []exprStep
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
	// collation is the column's collation in the new version; "" keeps
	// it, but a new type takes its own default (as ALTER COLUMN TYPE does).
	collation string
}

// setCollation records in the model the collation a change gives col.
func setCollation(col *schema.Column, prevType string, spec rewriteSpec) {
	if spec.newType != "" && spec.newType != prevType {
		col.Collation = ""
	}
	switch {
	case strings.EqualFold(spec.collation, "default"):
		col.Collation = ""
	case spec.collation != "":
		col.Collation = spec.collation
	}
}

// collateClause is " COLLATE name" for a column with its own collation.
func collateClause(col *schema.Column) string {
	if col == nil || col.Collation == "" {
		return ""
	}
	return " COLLATE " + pg.Ident(col.Collation)
}

// alterRewrite plans a change of a column whose new version needs different
// data: a type change, NOT NULL over existing NULLs, or an explicit up. It
// returns the physical name of the new version's column.
func (c *Compiler) alterRewrite(t *schema.Table, col *schema.Column, spec rewriteSpec) (string, error) {
	if t.Created {
		return c.alterOnNewTable(t, col, spec), nil
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
		c.retargetUniques(t, col.Physical, phys)
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
	others := otherColumns(t, col)
	r.up = append(r.up, exprStep{expr: identityOr(upExpr, col.Name), self: col.Name, refs: others, typ: newType})
	r.down = append([]exprStep{{expr: identityOr(downExpr, inName), self: inName, refs: others, typ: prevType}}, r.down...)
	r.newType = newType
	setCollation(col, prevType, spec)
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

// alterOnNewTable changes a column of a table this migration creates. No
// version sees that table before the migration publishes, and it has no
// rows yet, so the change is made in place during expand, where no copy,
// backfill or trigger is needed (up and down have no rows to convert). A
// type change drops the default first, as PostgreSQL cannot always cast
// it, and sets it again after: the one the change gives, or the old one.
func (c *Compiler) alterOnNewTable(t *schema.Table, col *schema.Column, spec rewriteSpec) string {
	table, name := c.Qualified(t.Physical), pg.Ident(col.Physical)
	var sql []string
	def := col.Default
	if spec.defSet {
		def = spec.def
	}
	if (spec.newType != "" && spec.newType != col.Type) || spec.collation != "" {
		typ := col.Type
		if spec.newType != "" {
			typ = spec.newType
		}
		if col.Default != nil {
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", table, name))
		}
		setCollation(col, col.Type, spec)
		sql = append(sql, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s%s USING CAST(NULL AS %s)", table, name, typ, collateClause(col), typ))
		if def != nil {
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", table, name, *def))
		}
		col.Type = typ
	} else if spec.defSet {
		if def != nil {
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", table, name, *def))
		} else {
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", table, name))
		}
	}
	col.Default = def
	if spec.nullable != nil && *spec.nullable != col.Nullable {
		verb := "SET"
		if *spec.nullable {
			verb = "DROP"
		}
		sql = append(sql, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s %s NOT NULL", table, name, verb))
		col.Nullable = *spec.nullable
	}
	if len(sql) > 0 {
		c.Expand(Step{
			Do:   fmt.Sprintf("change column %s.%s of the table created above", t.Name, col.Name),
			SQL:  sql,
			Lock: "ACCESS EXCLUSIVE (on a table no version uses yet)",
		})
	}
	return col.Physical
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
		if con := t.Constraints[ix.Constraint]; con != nil && con.Type == "x" {
			c.rebuildExclusion(t, col, r, con, tmp)
			continue
		}
		firstSwap, firstFinish := len(r.swaps), len(c.plan.Finish)
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
		if con := t.Constraints[ix.Constraint]; con != nil && ix.Deferrable {
			// A deferrable constraint is one from the moment its index is
			// built: application transactions that rely on deferring the
			// check keep working during the migration too.
			c.Finish(Step{
				Do:   fmt.Sprintf("make the rebuilt index of %s a deferrable constraint", ix.Constraint),
				SQL:  []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s%s", table, pg.Ident(tmp), pg.Ident(tmp), deferral(con.Definition))},
				Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", table, pg.Ident(tmp))},
				Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
			})
			r.swaps = append(r.swaps, fmt.Sprintf("ALTER TABLE {table} RENAME CONSTRAINT %s TO %s", pg.Ident(tmp), pg.Ident(ix.Constraint)))
			final = ix.Constraint
		} else if ix.Constraint != "" {
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
		rb := c.rebuilds[t.Physical+"\x00index "+n]
		rb.r, rb.swaps = r, slices.Clone(r.swaps[firstSwap:])
		for i := firstFinish + 1; i < len(c.plan.Finish); i++ {
			rb.extra = append(rb.extra, i)
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
		rb := c.rebuilds[t.Physical+"\x00constraint "+n]
		rb.check = con.Type == "c"
		rb.name, rb.def, rb.validate, rb.r = n, con.Definition, -1, r
		if con.Validated {
			rb.validate = len(c.plan.Finish)
			c.Finish(Step{
				Do:   fmt.Sprintf("validate rebuilt constraint %s", n),
				SQL:  []string{fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", table, pg.Ident(tmp))},
				Lock: "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
			})
		}
		rb.swaps = []string{fmt.Sprintf("ALTER TABLE {table} RENAME CONSTRAINT %s TO %s", pg.Ident(tmp), pg.Ident(n))}
		if rb.validate >= 0 {
			rb.extra = append(rb.extra, rb.validate)
		}
		r.swaps = append(r.swaps, rb.swaps...)
	}
}

// deferral is the DEFERRABLE clause of a constraint definition as
// pg_get_constraintdef prints it, or "".
func deferral(def string) string {
	switch {
	case strings.Contains(def, " DEFERRABLE INITIALLY DEFERRED"):
		return " DEFERRABLE INITIALLY DEFERRED"
	case strings.Contains(def, " DEFERRABLE"):
		return " DEFERRABLE"
	}
	return ""
}

// rebuildExclusion rebuilds an exclusion constraint over a rewritten column
// as an exclusion constraint on the new column. PostgreSQL can neither
// build one concurrently nor make one from an existing index, so it is
// added after the backfill under its table lock, which is held while the
// index is built; complete renames it to the old name.
func (c *Compiler) rebuildExclusion(t *schema.Table, col *schema.Column, r *rewrite, con *schema.Constraint, tmp string) {
	table := c.Qualified(t.Physical)
	c.planDependent(t, "index "+con.Name, col.Physical, r.newPhys, func(rename map[string]string) []string {
		return []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", table, pg.Ident(tmp), sqllex.RenameIdentifiers(con.Definition, rename))}
	}, Step{
		Do:   fmt.Sprintf("rebuild exclusion constraint %s on the new column %s.%s", con.Name, t.Name, col.Name),
		Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", table, pg.Ident(tmp))},
		Lock: "ACCESS EXCLUSIVE while its index is built (PostgreSQL builds exclusion constraints no other way)",
	})
	swap := fmt.Sprintf("ALTER TABLE {table} RENAME CONSTRAINT %s TO %s", pg.Ident(tmp), pg.Ident(con.Name))
	r.swaps = append(r.swaps, swap)
	rb := c.rebuilds[t.Physical+"\x00index "+con.Name]
	rb.r, rb.swaps = r, []string{swap}
}

// rebuild is an index or constraint of a table planned to be rebuilt on
// the new columns of the rewrites that touch it.
type rebuild struct {
	step   int               // its finish step
	rename map[string]string // old physical column -> new
	render func(rename map[string]string) []string
	// For a check constraint (check): its name and definition, its
	// validating finish step (-1: none), the swap that renames it at
	// complete and the rewrite that carries that swap; dropFitless
	// drops it all when the check does not fit the new types.
	check     bool
	name, def string
	validate  int
	// swaps are the statements of r's swap at complete that belong to
	// this rebuild, and extra its finish steps besides step: both go
	// when a later operation drops what is rebuilt (cancel).
	swaps []string
	extra []int
	r     *rewrite
}

// cancel takes a planned rebuild out of the plan: its finish steps do
// nothing, and complete renames nothing into place.
func (c *Compiler) cancel(rb *rebuild, why string) {
	c.plan.Finish[rb.step].Do = why
	for _, i := range append([]int{rb.step}, rb.extra...) {
		c.plan.Finish[i].SQL, c.plan.Finish[i].Undo, c.plan.Finish[i].UndoAfter = nil, nil, nil
		if i != rb.step {
			c.plan.Finish[i].Do = "nothing more: " + why
		}
	}
	if rb.r != nil {
		rb.r.swaps = slices.DeleteFunc(rb.r.swaps, func(s string) bool { return slices.Contains(rb.swaps, s) })
	}
}

// cancelRebuild cancels the rebuild of an index or constraint ("index n",
// "constraint n") of t that an earlier rewrite of the migration planned,
// when a later operation drops it.
func (c *Compiler) cancelRebuild(t *schema.Table, what string) {
	key := t.Physical + "\x00" + what
	if rb := c.rebuilds[key]; rb != nil {
		c.cancel(rb, fmt.Sprintf("no rebuild of %s of %s: operation %d drops it", what, t.Name, c.op))
		delete(c.rebuilds, key)
	}
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
	r.up = []exprStep{{expr: up, refs: otherColumns(t, mc), typ: col.Type}}
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
	// The trigger goes in the contract, where an earlier rename_table of
	// this migration may already have renamed the table.
	now := tt
	now.Name = c.TableNow(t)
	c.dropTriggers[t.Physical+"\x00"+col.Physical] = triggers.Drop(now, rw)
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
		// A table dropped later in the migration keeps its rewrites: the
		// old version uses it until complete, which swaps the columns and
		// then drops it (pgroll runs such migrations too).
		if err := c.dropFitless(t, byTable[t]); err != nil {
			return err
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
			// The copy has the column's collation in the new version: its
			// own for a kept one, the new one for a change.
			expand = append(expand, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s%s", c.Qualified(t.Physical), pg.Ident(r.newPhys), r.newType, collateClause(r.col)))
			rw := triggers.Rewrite{
				ID:        rewriteID(t.Physical, r.newPhys),
				OldColumn: r.oldPhys,
				NewColumn: r.newPhys,
			}
			if oc := ot.ColumnByPhysical(r.oldPhys); oc != nil && !r.added && !oc.Nullable && oc.Default == nil && oc.Identity == "" && r.col.Nullable {
				// The new version may insert NULL into its nullable column;
				// only it can leave the old NOT NULL column empty.
				rw.OldNotNull = true
			}
			// Each conversion gets as inputs only the columns its steps
			// mention: fewer copies per row, and exact watch lists.
			upSteps := c.convSteps(r.up, "_online_u", func(col *schema.Column) string { return c.oldNameOf(t, ot, col) })
			upVars := make([]triggers.Var, len(oldVars))
			for i, v := range oldVars {
				if v.Physical == r.oldPhys {
					v.Name = "_online_u0"
				}
				upVars[i] = v
			}
			if !slices.ContainsFunc(upVars, func(v triggers.Var) bool { return v.Physical == r.oldPhys }) && !r.added {
				// A column an earlier operation of the migration added:
				// the old version never writes it, but it has its value
				// (its default) to convert.
				upVars = append(upVars, triggers.Var{Name: "_online_u0", Type: r.oldType, Physical: r.oldPhys})
			}
			upIn, upWatch := usedVars(upSteps, upVars, r.oldPhys)
			rw.Up = &triggers.Conversion{Inputs: upIn, Steps: upSteps}
			rw.UpWatch = upWatch
			if !r.added {
				vars := make([]triggers.Var, len(newVars))
				for i, v := range newVars {
					if v.Physical == r.newPhys {
						v.Name = "_online_d0"
					}
					vars[i] = v
				}
				downSteps := c.convSteps(r.down, "_online_d", func(col *schema.Column) string { return col.Name })
				downIn, downWatch := usedVars(downSteps, vars, r.newPhys)
				rw.Down = &triggers.Conversion{Inputs: downIn, Steps: downSteps}
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
			// They are dropped after every operation's own contract steps,
			// a rename_table's included: under the table's name by then.
			now := tt
			now.Name = c.TableNow(t)
			trigDrops = append(trigDrops, triggers.Drop(now, rw)...)
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

// exprStep is one operation's part of a conversion, as the operation wrote
// it: expr reads the column being converted as self (its name at that
// operation; "" when there is none, as for add_column) and the table's other
// columns by their names at that operation, which later operations of the
// migration may change (rename_column, a rewrite's hidden column).
type exprStep struct {
	expr, self string
	refs       map[string]*schema.Column
	typ        string // the type of the step's result
}

// otherColumns maps the names of t's columns other than self, as they are
// at this point of the compile, to the columns themselves, which outlive
// renames.
func otherColumns(t *schema.Table, self *schema.Column) map[string]*schema.Column {
	m := map[string]*schema.Column{}
	for _, col := range t.Columns {
		if col != self {
			m[col.Name] = col
		}
	}
	return m
}

// oldNameOf is the old version's name of the physical column under col,
// the name an up conversion's inputs carry; "" when the old version has no
// such column (the migration added it).
func (c *Compiler) oldNameOf(t, old *schema.Table, col *schema.Column) string {
	phys := col.Physical
	for _, r := range c.rewrites {
		if r.table == t && r.col == col && !r.added {
			phys = r.oldPhys
		}
	}
	if oc := old.ColumnByPhysical(phys); oc != nil {
		return oc.Name
	}
	return ""
}

// convSteps turns the steps that operations wrote into trigger steps. Each
// expression is renamed from the names of its own operation to those of the
// conversion's inputs (nameOf), and the column being converted is read, in
// every step after the first, as the previous step's result under a name no
// column can have (prefix and the step's number), so that no column's name
// and no step's result shadow each other however the migration renames.
// The first step reads it as prefix+"0" (the input the caller binds), or,
// with an empty self, not at all.
func (c *Compiler) convSteps(steps []exprStep, prefix string, nameOf func(*schema.Column) string) []triggers.Step {
	out := make([]triggers.Step, len(steps))
	for i, s := range steps {
		m := map[string]string{}
		for n, col := range s.refs {
			if to := nameOf(col); to != "" && to != n {
				m[n] = to
			} else if to == "" {
				delete(m, n)
			}
		}
		if s.self != "" {
			m[s.self] = fmt.Sprintf("%s%d", prefix, i)
		}
		expr := s.expr
		if len(m) > 0 {
			expr = sqllex.RenameIdentifiers(expr, m)
		}
		out[i] = triggers.Step{Expr: expr, Name: fmt.Sprintf("%s%d", prefix, i+1), Type: s.typ}
	}
	return out
}

// dropFitless drops, as pgroll does, what a type change leaves without
// meaning: a column's default, or a check constraint over rewritten columns,
// that PostgreSQL refuses for the new types (a text default on an integer
// column; length() of an integer). Options.Fits asks the catalog; without it
// everything is kept. The plan says what was dropped.
func (c *Compiler) dropFitless(t *schema.Table, rs []*rewrite) error {
	if c.Opts.Fits == nil {
		return nil
	}
	// Only columns of the table as it is now: one the migration adds has
	// the default its file gave, which the file's author set for its type.
	old := c.oldTable(t)
	types := map[string]string{}
	for _, r := range rs {
		if !r.added && r.newType != r.oldType && old != nil && old.ColumnByPhysical(r.oldPhys) != nil {
			types[r.oldPhys] = r.newType
		}
	}
	if len(types) == 0 {
		return nil
	}
	for _, r := range rs {
		if r.added || r.oldDefault == nil || r.col.Default == nil || *r.col.Default != *r.oldDefault || types[r.oldPhys] == "" {
			continue
		}
		ok, err := c.Opts.Fits(FitQuery{Table: t.Physical, Types: types, Column: r.oldPhys, Default: *r.oldDefault})
		if err != nil {
			return fmt.Errorf("column %s.%s: does its default fit the new type: %w", t.Name, r.col.Name, err)
		}
		if !ok {
			r.col.Default = nil
			c.Contract(Step{Do: fmt.Sprintf("drop the default %s of %s.%s: it does not fit the new type %s (as in pgroll)", *r.oldDefault, t.Name, r.col.Name, r.newType)})
		}
	}
	for _, key := range slices.Sorted(maps.Keys(c.rebuilds)) {
		rb := c.rebuilds[key]
		if !rb.check || !strings.HasPrefix(key, t.Physical+"\x00") {
			continue
		}
		ok, err := c.Opts.Fits(FitQuery{Table: t.Physical, Types: types, Check: strings.TrimSuffix(rb.def, " NOT VALID")})
		if err != nil {
			return fmt.Errorf("table %s: does check %s fit the new types: %w", t.Name, rb.name, err)
		}
		if ok {
			continue
		}
		c.cancel(rb, fmt.Sprintf("drop check constraint %s of %s: it does not fit the new column types (as in pgroll)", rb.name, t.Name))
		delete(c.rebuilds, key)
		delete(t.Constraints, rb.name)
	}
	return nil
}

// FitQuery asks whether a default or a check constraint of physical table
// Table still holds once columns change type (Types: physical column to new
// type): Default for Column, or Check (a constraint definition, as
// pg_get_constraintdef gives it).
type FitQuery struct {
	Table   string
	Types   map[string]string
	Column  string
	Default string
	Check   string
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

// forgetRewrite undoes the plan of a rewrite of col when a later operation
// of the migration drops the column: the new version never sees its data,
// so neither the hidden copy nor anything built on it is needed, and the
// drop applies to the column the old version has. What operations added
// over the copy (its constraints and indexes, rebuilt or new) leaves the
// plan and the model.
func (c *Compiler) forgetRewrite(t *schema.Table, col *schema.Column) {
	r := c.findRewrite(t, col)
	if r == nil || r.added {
		return
	}
	c.rewrites = slices.DeleteFunc(c.rewrites, func(x *rewrite) bool { return x == r })
	why := fmt.Sprintf("nothing for the new copy of %s.%s: operation %d drops the column", t.Name, col.Name, c.op)
	for _, key := range slices.Sorted(maps.Keys(c.rebuilds)) {
		if rb := c.rebuilds[key]; rb.r == r {
			c.cancel(rb, why)
			delete(c.rebuilds, key)
		}
	}
	// What operations built over the copy goes with it: its indexes and
	// constraints, and every step that names the copy or one of them.
	names := []string{pg.Ident(r.newPhys)}
	gone := map[string]bool{}
	for n, ix := range t.Indexes {
		if containsString(ix.Columns, r.newPhys) || indexUses(ix, r.newPhys) {
			delete(t.Indexes, n)
			delete(c.Schema.Indexes, n)
			gone[n] = true
			names = append(names, pg.Ident(n))
		}
	}
	for n, con := range t.Constraints {
		if containsString(con.Columns, r.newPhys) {
			delete(t.Constraints, n)
			names = append(names, pg.Ident(n))
		}
	}
	c.contractUnique = slices.DeleteFunc(c.contractUnique, func(p pendingUnique) bool { return p.table == t && gone[p.name] })
	c.cancelSteps(t, names, why, c.plan.Expand, c.plan.Finish, c.plan.Contract)
	delete(c.planned[t.Physical], r.newPhys)
	delete(c.hidden[t.Physical], r.newPhys)
	col.Physical, col.Type, col.Default, col.Identity = r.oldPhys, r.oldType, r.oldDefault, r.identity
}

// cancelSteps empties the steps of phases that earlier operations of the
// migration added for table t and whose statements name one of names
// (quoted identifiers): what they build or change is gone from the plan.
func (c *Compiler) cancelSteps(t *schema.Table, names []string, why string, phases ...[]Step) {
	table, tableNow := c.Qualified(t.Physical), c.Qualified(c.TableNow(t))
	for _, steps := range phases {
		for i := range steps {
			s := &steps[i]
			if s.Op == 0 || s.Op == c.op {
				continue
			}
			joined := strings.Join(s.SQL, "\n")
			if !strings.Contains(joined, table) && !strings.Contains(joined, tableNow) {
				continue
			}
			for _, n := range names {
				if strings.Contains(joined, n) {
					s.SQL, s.Undo, s.UndoAfter, s.After, s.Do = nil, nil, nil, nil, why
					break
				}
			}
		}
	}
}
