package operations

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
)

// PostgreSQL builds no index CONCURRENTLY on a partitioned table, and a plain
// CREATE INDEX there would hold a SHARE lock on every partition (no writes)
// for the whole build. So online builds the index of each leaf partition
// concurrently, then, in one short transaction, creates the index ON ONLY
// each partitioned level (an empty, invalid index, no scan) and attaches the
// partitions' indexes to it; the parent index becomes valid when the last
// one is attached. Unique constraints and foreign keys are built the same
// way on the leaves, then declared on the parent, which attaches the
// partitions' ones instead of building or checking anything again.

// checkPartitions refuses partitioned tables whose partitions online cannot
// build indexes or constraints on: foreign tables, which PostgreSQL cannot
// index, and partitions outside the migrated schema, because the names of
// the partitions' indexes are checked against this schema's relations only,
// and a retry drops an index of that name first: it must never be
// somebody else's.
func (c *Compiler) checkPartitions(field string, t *schema.Table) error {
	var walk func([]*schema.Partition) error
	walk = func(parts []*schema.Partition) error {
		for _, p := range parts {
			if p.Kind == "f" {
				return errField(field, "partition %q of table %q is a foreign table; PostgreSQL cannot index it, so online does not build indexes or unique constraints on table %q", p.Name, t.Name, t.Name)
			}
			if p.Schema != c.Opts.Schema {
				return errField(field, "partition %q of table %q is in schema %q, not in %q; online builds partition indexes in the migrated schema only", p.Name, t.Name, p.Schema, c.Opts.Schema)
			}
			if err := walk(p.Partitions); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(t.Partitions)
}

// partitionKey returns the partition key columns of every level of t's
// partition tree (a unique index must hold them all: PostgreSQL checks each
// level), and whether some level partitions by an expression.
func partitionKey(t *schema.Table) (cols []string, expr bool) {
	add := func(key []string, e bool) {
		expr = expr || e
		for _, k := range key {
			if !containsString(cols, k) {
				cols = append(cols, k)
			}
		}
	}
	add(t.PartitionKey, t.PartitionKeyExpr)
	var walk func([]*schema.Partition)
	walk = func(parts []*schema.Partition) {
		for _, p := range parts {
			add(p.Key, p.KeyExpr)
			walk(p.Partitions)
		}
	}
	walk(t.Partitions)
	return cols, expr
}

func visibleNames(t *schema.Table, phys []string) string {
	out := make([]string, len(phys))
	for i, p := range phys {
		out[i] = p
		if col := t.ColumnByPhysical(p); col != nil {
			out[i] = col.Name
		}
	}
	return strings.Join(out, ", ")
}

// uniqueAllowed checks, before anything runs, a unique index or constraint
// (or primary key, when primary) over the physical columns cols of t.
// PostgreSQL enforces uniqueness on a partitioned table partition by
// partition, so it requires the partition key columns in the key.
func (c *Compiler) uniqueAllowed(field string, t *schema.Table, primary bool, cols []string) error {
	if !t.Partitioned {
		return nil
	}
	if primary {
		return errField("type", "table %q is partitioned; adding a primary key to a partitioned table is not supported yet", t.Name)
	}
	if err := c.checkPartitions(field, t); err != nil {
		return err
	}
	key, expr := partitionKey(t)
	if expr {
		return errField(field, "table %q is partitioned by an expression; PostgreSQL allows no unique index or constraint on it", t.Name)
	}
	var missing []string
	for _, k := range key {
		if !containsString(cols, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return errField(field, "table %q is partitioned by (%s); a unique index or constraint on a partitioned table must include every partition key column, and (%s) lacks %s", t.Name, visibleNames(t, key), visibleNames(t, cols), visibleNames(t, missing))
	}
	return nil
}

// nameTaken reports whether a relation-level name is in use, in the
// catalog or by this migration.
func (c *Compiler) nameTaken(name string) bool {
	_, index := c.Schema.Indexes[name]
	return index || c.names[name] || c.Old.Relations[name] || c.Schema.Relations[name]
}

// partitionIndexName picks and reserves the name of the index (or
// constraint) of partition rel that serves index of its parent: short
// enough for PostgreSQL, and unused.
func (c *Compiler) partitionIndexName(rel, index string) string {
	name := ShortName(rel + "_" + index)
	for n := 2; c.nameTaken(name); n++ {
		name = ShortName(fmt.Sprintf("%s_%s_%d", rel, index, n))
	}
	c.names[name] = true
	return name
}

// partitionedIndex is an index of a partitioned table built partition by
// partition.
type partitionedIndex struct {
	table  *schema.Table
	name   string // the partitioned table's index
	unique bool
	// tail is what follows the relation in CREATE INDEX, the same for
	// every level: " USING btree (a) WHERE ...".
	tail string
	// names holds the index name of every partition, leaf or not.
	names map[*schema.Partition]string
}

func (c *Compiler) newPartitionedIndex(t *schema.Table, name string, unique bool, tail string) *partitionedIndex {
	pi := &partitionedIndex{table: t, name: name, unique: unique, tail: tail, names: map[*schema.Partition]string{}}
	var walk func([]*schema.Partition)
	walk = func(parts []*schema.Partition) {
		for _, p := range parts {
			pi.names[p] = c.partitionIndexName(p.Name, name)
			walk(p.Partitions)
		}
	}
	walk(t.Partitions)
	return pi
}

func (pi *partitionedIndex) create() string {
	if pi.unique {
		return "CREATE UNIQUE INDEX"
	}
	return "CREATE INDEX"
}

// forEach visits the partitions depth first, children before their
// parent, so that a partitioned partition is handled after its own.
func forEachPartition(parts []*schema.Partition, f func(p *schema.Partition)) {
	for _, p := range parts {
		forEachPartition(p.Partitions, f)
		f(p)
	}
}

func isLeaf(p *schema.Partition) bool { return p.Kind != "p" }

// leafBackfills returns bf as the plan's backfill of t: one per leaf
// partition when t is partitioned, so that each batch walks one leaf's own
// key index instead of merging all the leaves' indexes in key order, and
// plans one table instead of all of them. A tree with a foreign-table leaf
// is walked through its parent as one, since a foreign table has no index
// to walk. A leaf partition created after start needs no backfill: the sync
// triggers are cloned to it, so every row it gets is written through them.
func leafBackfills(t *schema.Table, bf Backfill) []Backfill {
	var leaves []*schema.Partition
	foreign := false
	forEachPartition(t.Partitions, func(p *schema.Partition) {
		switch {
		case p.Kind == "f":
			foreign = true
		case isLeaf(p):
			leaves = append(leaves, p)
		}
	})
	if len(leaves) == 0 || foreign {
		return []Backfill{bf}
	}
	sort.Slice(leaves, func(i, j int) bool {
		if leaves[i].Schema != leaves[j].Schema {
			return leaves[i].Schema < leaves[j].Schema
		}
		return leaves[i].Name < leaves[j].Name
	})
	out := make([]Backfill, len(leaves))
	for i, p := range leaves {
		out[i] = bf
		out[i].Schema, out[i].Table, out[i].Parent = p.Schema, p.Name, t.Physical
	}
	return out
}

// buildLeaves adds, through add, one step per leaf partition that builds
// its index concurrently. One step each, so that a resumed start rebuilds
// only the index it was building.
func (pi *partitionedIndex) buildLeaves(c *Compiler, add func(Step)) {
	forEachPartition(pi.table.Partitions, func(p *schema.Partition) {
		if !isLeaf(p) {
			return
		}
		name := pg.Ident(p.Schema, pi.names[p])
		add(Step{
			Do: fmt.Sprintf("build index %s on partition %s of %s", pi.names[p], p.Name, pi.table.Name),
			SQL: []string{
				// A failed concurrent build leaves an invalid index;
				// dropping it first makes the step safe to run again.
				"DROP INDEX CONCURRENTLY IF EXISTS " + name,
				fmt.Sprintf("%s CONCURRENTLY %s ON %s%s", pi.create(), pg.Ident(pi.names[p]), pg.Ident(p.Schema, p.Name), pi.tail),
			},
			Undo:      c.dropIndexInTx(p.Schema, pi.names[p]),
			UndoAfter: c.dropIndexAfter(p.Schema, pi.names[p]),
			Lock:      "SHARE UPDATE EXCLUSIVE on the partition (reads and writes go on)",
			NoTx:      true,
		})
	})
}

// attach adds, through add, the step that creates the index ON ONLY each
// partitioned level (no scan) under parentName and attaches the
// partitions' indexes to it, in one transaction. It checks that the index
// came out valid: a partition created since the plan was made has no index
// to attach, and the parent would stay invalid.
func (pi *partitionedIndex) attach(c *Compiler, parentName string, add func(Step)) {
	var sql []string
	level := func(rel, index string, parts []*schema.Partition) {
		sql = append(sql, fmt.Sprintf("%s %s ON ONLY %s%s", pi.create(), pg.Ident(index), rel, pi.tail))
		for _, p := range parts {
			sql = append(sql, fmt.Sprintf("ALTER INDEX %s ATTACH PARTITION %s", pg.Ident(c.Opts.Schema, index), pg.Ident(p.Schema, pi.names[p])))
		}
	}
	forEachPartition(pi.table.Partitions, func(p *schema.Partition) {
		if !isLeaf(p) {
			level(pg.Ident(p.Schema, p.Name), pi.names[p], p.Partitions)
		}
	})
	level(c.Qualified(pi.table.Physical), parentName, pi.table.Partitions)
	sql = append(sql, validIndexCheck(c.Qualified(parentName), pi.table.Name))
	add(Step{
		Do:   fmt.Sprintf("create index %s on partitioned table %s and attach its partitions' indexes", parentName, pi.table.Name),
		SQL:  sql,
		Undo: []string{"DROP INDEX IF EXISTS " + c.Qualified(parentName)},
		// CREATE INDEX ON ONLY takes SHARE on the partitioned tables
		// only; the partitions' indexes exist, so nothing is scanned.
		// The undo (DROP INDEX, which takes the attached indexes with
		// it) takes ACCESS EXCLUSIVE on the tree, for catalog work only.
		Lock: "SHARE on the partitioned table (catalog only, instant)",
	})
}

// validIndexCheck is a statement failing when index is not valid.
func validIndexCheck(index, table string) string {
	msg := fmt.Sprintf("index %s of partitioned table %s is not valid after attaching the partitions' indexes: a partition was added since the migration was planned; roll back and start again", index, table)
	body := fmt.Sprintf("BEGIN IF (SELECT indisvalid FROM pg_catalog.pg_index WHERE indexrelid = %s::regclass) IS NOT TRUE THEN RAISE EXCEPTION '%%', %s; END IF; END", pg.Literal(index), pg.Literal(msg))
	return "DO " + dollarQuote(body)
}

// dollarQuote quotes s with a dollar tag that s does not contain.
func dollarQuote(s string) string {
	tag := "$online$"
	for n := 2; strings.Contains(s, tag); n++ {
		tag = fmt.Sprintf("$online%d$", n)
	}
	return tag + s + tag
}

// uniqueContract returns the statements that turn the unique indexes of
// the partitions into constraints, then declare constraint name on the
// partitioned levels with def (e.g. "UNIQUE (a, b)"), which attaches them
// instead of building (PostgreSQL matches a partition's index only when a
// constraint owns it).
func (pi *partitionedIndex) uniqueContract(c *Compiler, root, name, def string) []string {
	var sql []string
	forEachPartition(pi.table.Partitions, func(p *schema.Partition) {
		n := pg.Ident(pi.names[p])
		if isLeaf(p) {
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", pg.Ident(p.Schema, p.Name), n, n))
		} else {
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", pg.Ident(p.Schema, p.Name), n, def))
		}
	})
	return append(sql, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", root, pg.Ident(name), def))
}

// addPartitionedUnique is addUnique for a partitioned table: the
// partitions' unique indexes are built concurrently after the backfill
// (each enforces uniqueness in its partition, which, with the partition key
// in the key, is uniqueness in the table), and become constraints at
// complete.
func (c *Compiler) addPartitionedUnique(t *schema.Table, name string, physCols []string, nullsNotDistinct bool) {
	nnd := ""
	if nullsNotDistinct {
		nnd = " NULLS NOT DISTINCT"
	}
	pi := c.newPartitionedIndex(t, name, true, " ("+pg.Idents(physCols)+")"+nnd)
	pi.buildLeaves(c, c.Finish)
	t.Indexes[name] = &schema.Index{Name: name, Columns: physCols, Unique: true, Valid: true,
		Definition: fmt.Sprintf("CREATE UNIQUE INDEX %s ON ONLY %s USING btree (%s)%s", pg.Ident(name), c.Qualified(t.Physical), pg.Idents(physCols), nnd)}
	c.Schema.Indexes[name] = t.Name
	c.contractUnique = append(c.contractUnique, pendingUnique{table: t, name: name, part: pi,
		def: "UNIQUE" + nnd + " (" + pg.Idents(physCols) + ")"})
}

// addPartitionedForeignKey is addForeignKey for a partitioned table.
// PostgreSQL (15 at least) refuses a NOT VALID foreign key on a partitioned
// table, so each leaf partition gets the key NOT VALID and validated
// (SHARE UPDATE EXCLUSIVE: reads and writes go on); then the partitioned
// table gets it, which attaches the partitions' validated keys without
// checking a row again.
func (c *Compiler) addPartitionedForeignKey(t *schema.Table, name, def string) {
	forEachPartition(t.Partitions, func(p *schema.Partition) {
		if !isLeaf(p) {
			return
		}
		pn := c.partitionIndexName(p.Name, name)
		rel := pg.Ident(p.Schema, p.Name)
		c.Finish(Step{
			Do:   fmt.Sprintf("add foreign key %s on partition %s of %s (NOT VALID)", pn, p.Name, t.Name),
			SQL:  []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", rel, pg.Ident(pn), def)},
			Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", rel, pg.Ident(pn))},
			Lock: "SHARE ROW EXCLUSIVE on the partition and the referenced table (instant)",
		})
		c.Finish(Step{
			Do:   fmt.Sprintf("validate foreign key %s", pn),
			SQL:  []string{fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", rel, pg.Ident(pn))},
			Lock: "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
		})
	})
	table := c.Qualified(t.Physical)
	c.Finish(Step{
		Do:  fmt.Sprintf("add foreign key %s on partitioned table %s, attaching its partitions' validated keys", name, t.Name),
		SQL: []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", table, pg.Ident(name), def)},
		// Dropping the partitioned table's key drops the attached keys
		// of the partitions with it.
		Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", table, pg.Ident(name))},
		Lock: "SHARE ROW EXCLUSIVE on the tables, ACCESS EXCLUSIVE on the referenced table (catalog only, instant: no row is checked again)",
	})
	t.Constraints[name] = &schema.Constraint{Name: name, Type: "f", Validated: true}
}

// partitionRebuild is an index of a partitioned table over a column that a
// rewrite replaces: rebuilt on the new column once the compile knows it.
type partitionRebuild struct {
	op      int
	col     *schema.Column
	oldPhys string
	ix      schema.Index
	con     *schema.Constraint // the unique constraint owning the index
}

// partitionedRewrite checks a rewrite of column col of partitioned table t
// and plans the rebuild of its indexes, which the generic rebuild (one
// CREATE INDEX CONCURRENTLY on the table) cannot do there.
func (c *Compiler) partitionedRewrite(t *schema.Table, col *schema.Column) error {
	key, _ := partitionKey(t)
	if containsString(key, col.Physical) {
		return errField("column", "column %q is in the partition key of table %q; PostgreSQL cannot drop or change a partition key column, so online cannot rewrite it", col.Name, t.Name)
	}
	var cons []string
	for n, con := range t.Constraints {
		if con.Type == "f" && containsString(con.Columns, col.Physical) && !c.skipDependents[n] {
			cons = append(cons, n)
		}
	}
	sort.Strings(cons)
	if len(cons) > 0 {
		return errField("column", "column %q of partitioned table %q has foreign key %q, which a rewrite would add again NOT VALID; PostgreSQL cannot add NOT VALID foreign keys to partitioned tables, so rewriting it is not supported yet", col.Name, t.Name, cons[0])
	}
	var names []string
	for n, ix := range t.Indexes {
		if !ix.Primary && ix.Definition != "" && indexUses(ix, col.Physical) && !c.skipDependents[n] && !c.skipDependents[ix.Constraint] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		ix := t.Indexes[n]
		if err := c.checkPartitions("table", t); err != nil {
			return err
		}
		if ix.Deferrable {
			return errField("column", "column %q of partitioned table %q has deferrable constraint %q; rebuilding it partition by partition is not supported yet", col.Name, t.Name, ix.Constraint)
		}
		if con := t.Constraints[n]; con != nil && con.Type != "u" {
			return errField("column", "index %q of partitioned table %q has the name of a %s constraint; rename one of them first", n, t.Name, con.Type)
		}
		if _, ok := indexTail(ix.Definition); !ok {
			return errField("column", "cannot read the definition of index %q of partitioned table %q to rebuild it: %s", n, t.Name, ix.Definition)
		}
		rb := &partitionRebuild{op: c.op, col: col, oldPhys: col.Physical, ix: *ix}
		if ix.Constraint != "" {
			rb.con = t.Constraints[ix.Constraint]
			if rb.con == nil || rb.con.Type != "u" {
				return errField("column", "index %q of partitioned table %q belongs to constraint %q, which online can rebuild only as a unique constraint", n, t.Name, ix.Constraint)
			}
		}
		// The generic rebuild skips it; this one is planned at the end of
		// the compile, when the new column's name is known.
		c.skipDependents[n] = true
		c.contractUnique = append(c.contractUnique, pendingUnique{table: t, rebuild: rb})
	}
	return nil
}

// indexTail returns what follows the relation in an index definition as
// pg_get_indexdef prints it: " USING btree (a) ...".
func indexTail(def string) (string, bool) {
	i := strings.Index(def, " USING ")
	if i < 0 {
		return "", false
	}
	return def[i:], true
}

// planRebuild plans a partitionRebuild once the rewrite of its column is
// known: the partitions' indexes on the new column after the backfill,
// then either a parent index renamed to the old name at complete, or, for
// a unique constraint, the constraints at complete.
func (c *Compiler) planRebuild(t *schema.Table, rb *partitionRebuild) {
	var r *rewrite
	for _, rw := range c.rewrites {
		if rw.table == t && rw.col == rb.col {
			r = rw
		}
	}
	if r == nil {
		// alterRewrite adds the rewrite right after partitionedRewrite
		// accepted it, or fails the compile.
		panic(fmt.Sprintf("online: no rewrite of %s.%s to rebuild index %s on", t.Name, rb.col.Name, rb.ix.Name))
	}
	tail, _ := indexTail(rb.ix.Definition) // checked by partitionedRewrite
	tail = sqllex.RenameIdentifiers(tail, map[string]string{rb.oldPhys: r.newPhys})
	defer func(op int) { c.op = op }(c.op)
	c.op = rb.op
	final := rb.ix.Name
	if rb.con != nil {
		final = rb.con.Name
	}
	pi := c.newPartitionedIndex(t, final, rb.ix.Unique, tail)
	pi.buildLeaves(c, c.Finish)
	if rb.con != nil {
		def := sqllex.RenameIdentifiers(rb.con.Definition, map[string]string{rb.oldPhys: r.newPhys})
		c.contractUnique = append(c.contractUnique, pendingUnique{table: t, name: final, part: pi, def: def})
		return
	}
	tmp := ShortName("_online_" + rb.ix.Name)
	for n := 2; c.nameTaken(tmp); n++ {
		tmp = ShortName(fmt.Sprintf("_online_%s_%d", rb.ix.Name, n))
	}
	c.names[tmp] = true
	pi.attach(c, tmp, c.Finish)
	table := c.Qualified(c.TableNow(t))
	sql := []string{fmt.Sprintf("ALTER INDEX %s RENAME TO %s", c.Qualified(tmp), pg.Ident(rb.ix.Name))}
	if rb.ix.ReplicaIdentity {
		sql = append(sql, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX %s", table, pg.Ident(rb.ix.Name)))
	}
	c.plan.Contract = append(c.plan.Contract, Step{
		Do:   fmt.Sprintf("give the rebuilt index %s of %s its name", rb.ix.Name, t.Name),
		SQL:  sql,
		Lock: "ACCESS EXCLUSIVE on the index (catalog only, instant)",
	})
}

// contractNames renames, in a definition over the physical columns of t as
// they are after start, each column to its name at this point of the
// contract.
func (c *Compiler) contractNames(t *schema.Table, def string) string {
	m := map[string]string{}
	for _, col := range t.Columns {
		if now := c.ColumnNow(t, col.Physical); now != col.Physical {
			m[col.Physical] = now
		}
	}
	if len(m) == 0 {
		return def
	}
	return sqllex.RenameIdentifiers(def, m)
}
