package operations

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
)

// columnConstraints adds a column's unique, check and foreign key in their
// non-blocking forms, after any backfill: a unique index built concurrently
// and attached as a constraint at complete; NOT VALID constraints validated
// with only a SHARE UPDATE EXCLUSIVE lock, which lets reads and writes go on.
// phys is the physical column; expressions name the visible column.
func (c *Compiler) columnConstraints(t *schema.Table, col *Column, phys string) error {
	if col.Unique {
		if err := c.uniqueAllowed("column.unique", t, false, []string{phys}); err != nil {
			return err
		}
		name := ShortName(t.Name + "_" + col.Name + "_key")
		if err := c.ReserveName("column.unique", name); err != nil {
			return err
		}
		c.addUnique(t, name, []string{phys}, false)
	}
	if col.Check != nil {
		if err := c.ReserveName("column.check.name", col.Check.Name); err != nil {
			return err
		}
		if err := noInheritAllowed("column.check.no_inherit", t, col.Check.NoInherit); err != nil {
			return err
		}
		expr := sqllex.RenameIdentifiers(col.Check.Constraint, map[string]string{col.Name: phys})
		c.addCheck(t, col.Check.Name, expr, col.Check.NoInherit)
	}
	if r := col.References; r != nil {
		if err := c.ReserveName("column.references.name", r.Name); err != nil {
			return err
		}
		fk, err := c.fkClause("column.references", r)
		if err != nil {
			return err
		}
		c.addForeignKey(t, r.Name, fmt.Sprintf("FOREIGN KEY (%s) %s", pg.Ident(phys), fk))
	}
	return nil
}

// concurrentIndexAllowed checks a single-column unique constraint on a
// column that a rewrite replaces. On a partitioned table it cannot hold:
// PostgreSQL requires the partition key columns in a unique key, and a
// partition key column is never rewritten. Other unique keys are checked
// with their columns by uniqueAllowed.
func concurrentIndexAllowed(field string, t *schema.Table) error {
	if t.Partitioned {
		key, _ := partitionKey(t)
		return errField(field, "table %q is partitioned by (%s); a unique constraint on a partitioned table must include every partition key column, so a unique constraint on the rewritten column alone is not possible", t.Name, visibleNames(t, key))
	}
	return nil
}

// addUnique builds a unique index concurrently after the backfill and, at
// complete, turns it into a constraint (an instant catalog change).
func (c *Compiler) addUnique(t *schema.Table, name string, physCols []string, nullsNotDistinct bool) {
	if t.Partitioned {
		// Checked by uniqueAllowed (or concurrentIndexAllowed) first.
		c.addPartitionedUnique(t, name, physCols, nullsNotDistinct)
		return
	}
	nnd := ""
	if nullsNotDistinct {
		nnd = " NULLS NOT DISTINCT"
	}
	step := len(c.plan.Finish)
	c.Finish(Step{
		Do:        fmt.Sprintf("build unique index %s on %s", name, t.Name),
		SQL:       c.uniqueBuild(t, name, physCols, nnd),
		Undo:      c.dropIndexInTx(c.Opts.Schema, name),
		UndoAfter: c.dropIndexAfter(c.Opts.Schema, name),
		Lock:      "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
		NoTx:      true,
	})
	t.Indexes[name] = &schema.Index{Name: name, Columns: physCols, Unique: true, Valid: true, Constraint: name}
	t.Constraints[name] = &schema.Constraint{Name: name, Type: "u", Columns: physCols, Definition: fmt.Sprintf("UNIQUE%s (%s)", nnd, pg.Idents(physCols)), Validated: true}
	c.Schema.Indexes[name] = t.Name
	c.contractUnique = append(c.contractUnique, pendingUnique{table: t, name: name, step: step, cols: physCols, nnd: nnd})
}

// pending returns the unique constraint of t named name that this
// migration builds (addUnique on a plain table), or nil.
func (c *Compiler) pending(t *schema.Table, name string) *pendingUnique {
	for i := range c.contractUnique {
		if u := &c.contractUnique[i]; u.table == t && u.name == name && u.part == nil && u.rebuild == nil {
			return u
		}
	}
	return nil
}

// dropPending takes a unique constraint this migration builds out of the
// plan, for a later operation that drops it: it is never built.
func (c *Compiler) dropPending(t *schema.Table, name string) bool {
	u := c.pending(t, name)
	if u == nil {
		return false
	}
	s := &c.plan.Finish[u.step]
	s.SQL, s.Undo, s.UndoAfter = nil, nil, nil
	s.Do = fmt.Sprintf("no unique index %s on %s: operation %d drops it", name, t.Name, c.op)
	c.contractUnique = slices.DeleteFunc(c.contractUnique, func(p pendingUnique) bool { return p.table == t && p.name == name && p.part == nil })
	delete(t.Indexes, name)
	delete(t.Constraints, name)
	delete(c.Schema.Indexes, name)
	return true
}

// renamePending renames a unique constraint this migration builds: it is
// built and attached under the new name, with nothing to rename at
// complete.
func (c *Compiler) renamePending(t *schema.Table, from, to string) bool {
	u := c.pending(t, from)
	if u == nil {
		return false
	}
	u.name = to
	c.plan.Finish[u.step].SQL = c.uniqueBuild(t, to, u.cols, u.nnd)
	c.plan.Finish[u.step].Undo = c.dropIndexInTx(c.Opts.Schema, to)
	c.plan.Finish[u.step].UndoAfter = c.dropIndexAfter(c.Opts.Schema, to)
	ix, con := t.Indexes[from], t.Constraints[from]
	delete(t.Indexes, from)
	delete(t.Constraints, from)
	delete(c.Schema.Indexes, from)
	ix.Name, ix.Constraint, con.Name = to, to, to
	t.Indexes[to], t.Constraints[to] = ix, con
	c.Schema.Indexes[to] = t.Name
	return true
}

func (c *Compiler) uniqueBuild(t *schema.Table, name string, physCols []string, nnd string) []string {
	return []string{
		// A failed concurrent build leaves an invalid index behind;
		// dropping it first makes the step safe to run again.
		"DROP INDEX CONCURRENTLY IF EXISTS " + c.Qualified(name),
		fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s)%s", pg.Ident(name), c.Qualified(t.Physical), pg.Idents(physCols), nnd),
	}
}

// retargetUniques moves the unique indexes this migration builds over
// column oldPhys of t to the column that a later rewrite puts in its place:
// they are built after the backfill, when the new column exists, and the
// old column goes at complete with whatever was built on it.
func (c *Compiler) retargetUniques(t *schema.Table, oldPhys, newPhys string) {
	for i := range c.contractUnique {
		u := &c.contractUnique[i]
		if u.table != t || u.part != nil || u.rebuild != nil || !slices.Contains(u.cols, oldPhys) {
			continue
		}
		u.cols = slices.Clone(u.cols)
		for j, col := range u.cols {
			if col == oldPhys {
				u.cols[j] = newPhys
			}
		}
		c.plan.Finish[u.step].SQL = c.uniqueBuild(t, u.name, u.cols, u.nnd)
		if ix := t.Indexes[u.name]; ix != nil {
			ix.Columns = u.cols
		}
	}
}

// noInheritAllowed refuses NO INHERIT on a partitioned table, which
// PostgreSQL rejects: every partition must satisfy its parent's checks.
func noInheritAllowed(field string, t *schema.Table, noInherit bool) error {
	if noInherit && t.Partitioned {
		return errField(field, "table %q is partitioned; PostgreSQL does not allow a NO INHERIT check constraint on a partitioned table", t.Name)
	}
	return nil
}

// addCheck adds a check constraint NOT VALID (no scan) and validates it.
// prelude runs first in the transaction that adds it (a SET LOCAL).
func (c *Compiler) addCheck(t *schema.Table, name, expr string, noInherit bool, prelude ...string) {
	ni := ""
	if noInherit {
		ni = " NO INHERIT"
	}
	table := c.Qualified(t.Physical)
	c.Finish(Step{
		Do:   fmt.Sprintf("add check constraint %s on %s (NOT VALID)", name, t.Name),
		SQL:  append(append([]string{}, prelude...), fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s)%s NOT VALID", table, pg.Ident(name), expr, ni)),
		Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", table, pg.Ident(name))},
		Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
	})
	c.Finish(Step{
		Do:   fmt.Sprintf("validate check constraint %s", name),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", table, pg.Ident(name))},
		Lock: "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
	})
	// Its columns and definition, as the catalog would give them: a later
	// rewrite of one of its columns in this migration rebuilds it on the
	// new column, and a later drop of that column takes it along.
	var phys []string
	for _, col := range t.Columns {
		phys = append(phys, col.Physical)
	}
	t.Constraints[name] = &schema.Constraint{Name: name, Type: "c", Validated: true,
		Columns: exprColumns(expr, phys), Definition: fmt.Sprintf("CHECK (%s)%s", expr, ni)}
}

// addForeignKey adds a foreign key NOT VALID and validates it.
func (c *Compiler) addForeignKey(t *schema.Table, name, def string) {
	if t.Partitioned {
		c.addPartitionedForeignKey(t, name, def)
		return
	}
	table := c.Qualified(t.Physical)
	c.Finish(Step{
		Do:   fmt.Sprintf("add foreign key %s on %s (NOT VALID)", name, t.Name),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", table, pg.Ident(name), def)},
		Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", table, pg.Ident(name))},
		Lock: "SHARE ROW EXCLUSIVE on both tables (instant)",
	})
	c.Finish(Step{
		Do:   fmt.Sprintf("validate foreign key %s", name),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", table, pg.Ident(name))},
		Lock: "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
	})
	t.Constraints[name] = &schema.Constraint{Name: name, Type: "f", Validated: true}
}

// pendingUnique is work left for the end of the compile, when every
// rewritten column has its final physical name and the contract steps that
// swap them in are planned.
type pendingUnique struct {
	table *schema.Table
	name  string
	// part is set for a unique key of a partitioned table, with def, the
	// constraint over the physical columns after start ("UNIQUE (a, b)").
	part *partitionedIndex
	def  string
	// rebuild is set for an index of a partitioned table that a rewrite
	// rebuilds on the new column.
	rebuild *partitionRebuild
	// step, cols and nnd are those of a plain unique index's build, its
	// finish step (see retargetUniques).
	step int
	cols []string
	nnd  string
}

// attachUniques plans the rebuilds of partitioned tables' indexes, then
// turns the unique indexes built by this migration into constraints at the
// end of the contract.
func (c *Compiler) attachUniques() {
	// A rebuild adds the constraint of a unique index it rebuilds to the
	// list, hence the index loop.
	for i := 0; i < len(c.contractUnique); i++ {
		u := c.contractUnique[i]
		if u.rebuild != nil {
			c.planRebuild(u.table, u.rebuild)
		}
	}
	for _, u := range c.contractUnique {
		if u.rebuild != nil || c.Schema.Tables[u.table.Name] != u.table {
			continue // dropped later in the migration
		}
		if u.part != nil {
			c.plan.Contract = append(c.plan.Contract, Step{
				Do:   fmt.Sprintf("attach the unique indexes of the partitions of %s as constraints, then add constraint %s", u.table.Name, u.name),
				SQL:  u.part.uniqueContract(c, c.Qualified(c.TableNow(u.table)), u.name, c.contractNames(u.table, u.def)),
				Lock: "ACCESS EXCLUSIVE on the table and its partitions (catalog only, instant: no index is built)",
			})
			continue
		}
		c.plan.Contract = append(c.plan.Contract, Step{
			Do:   fmt.Sprintf("attach unique index %s as a constraint", u.name),
			SQL:  []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", c.Qualified(c.TableNow(u.table)), pg.Ident(u.name), pg.Ident(u.name))},
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
	}
}

// fkSpec is a foreign key as a file gives it, resolved to physical names:
// the one form create_table, create_constraint, add_column and
// alter_column all render through (renderFK), so that no option is lost on
// one path and kept on another.
type fkSpec struct {
	field    string   // the file's field of the reference, for errors ("references")
	cols     []string // the referencing physical columns; none for a column's inline REFERENCES
	refTable string   // the referenced table, qualified
	refCols  []string // its physical columns
	match    string
	onDelete string
	// setCols are the physical columns that ON DELETE SET NULL or SET
	// DEFAULT applies to (PostgreSQL 15+); none means every key column.
	setCols                       []string
	onUpdate                      string
	deferrable, initiallyDeferred bool
}

// renderFK returns "FOREIGN KEY (..) REFERENCES .." (or, without cols, the
// REFERENCES clause alone), or a field error for a bad option.
func renderFK(s fkSpec) (string, error) {
	var b strings.Builder
	if len(s.cols) > 0 {
		fmt.Fprintf(&b, "FOREIGN KEY (%s) ", pg.Idents(s.cols))
	}
	fmt.Fprintf(&b, "REFERENCES %s (%s)", s.refTable, pg.Idents(s.refCols))
	m, err := matchType(s.match)
	if err != nil {
		return "", errField(s.field+".match_type", "%v", err)
	}
	if m != "" {
		b.WriteString(" MATCH " + m)
	}
	del, err := refAction(s.onDelete)
	if err != nil {
		return "", errField(s.field+".on_delete", "%v", err)
	}
	if len(s.setCols) > 0 && del != "SET NULL" && del != "SET DEFAULT" {
		return "", errField(s.field+".on_delete_set_columns", "applies only with on_delete SET NULL or SET DEFAULT")
	}
	if del != "" {
		b.WriteString(" ON DELETE " + del)
		if len(s.setCols) > 0 {
			b.WriteString(" (" + pg.Idents(s.setCols) + ")")
		}
	}
	upd, err := refAction(s.onUpdate)
	if err != nil {
		return "", errField(s.field+".on_update", "%v", err)
	}
	if upd != "" {
		b.WriteString(" ON UPDATE " + upd)
	}
	if s.deferrable {
		b.WriteString(" DEFERRABLE")
		if s.initiallyDeferred {
			b.WriteString(" INITIALLY DEFERRED")
		}
	}
	return b.String(), nil
}

// setColumns maps the names of on_delete_set_columns to the physical
// columns of the key, refusing a name that is not one of its columns.
func setColumns(field string, names, keyNames, keyPhys []string) ([]string, error) {
	var out []string
	for i, n := range names {
		j := slices.Index(keyNames, n)
		if j < 0 {
			return nil, errField(fmt.Sprintf("%s.on_delete_set_columns[%d]", field, i), "%q is not one of the foreign key's columns", n)
		}
		out = append(out, keyPhys[j])
	}
	return out, nil
}
