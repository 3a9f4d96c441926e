package diff

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// Rename is a rename the caller vouches for: a table (Table empty, From and
// To table names) or a column of a table (Table named as in the desired
// schema).
type Rename struct {
	Table, From, To string
}

func (r Rename) String() string {
	if r.Table == "" {
		return fmt.Sprintf("table %s -> %s", r.From, r.To)
	}
	return fmt.Sprintf("column %s.%s -> %s", r.Table, r.From, r.To)
}

// Flag is the --rename value that asks for this rename.
func (r Rename) Flag() string {
	if r.Table == "" {
		return r.From + "=" + r.To
	}
	return r.Table + "." + r.From + "=" + r.To
}

// ParseRename reads a --rename value: "old=new" for a table,
// "table.old=new" for a column.
func ParseRename(s string) (Rename, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return Rename{}, fmt.Errorf("--rename %q: want old=new (a table) or table.old=new (a column)", s)
	}
	if t, c, ok := strings.Cut(from, "."); ok {
		if t == "" || c == "" {
			return Rename{}, fmt.Errorf("--rename %q: want table.old=new", s)
		}
		return Rename{Table: t, From: c, To: to}, nil
	}
	return Rename{From: from, To: to}, nil
}

// Result is the migration Compare wrote.
type Result struct {
	Ops []Op
	// Unsupported lists each difference no operation expresses; the
	// migration leaves it as it is.
	Unsupported []string
	// RenameCandidates are drops and adds that might be renames.
	RenameCandidates []Rename
	// Review counts the operations with a comment asking for review.
	Review int
}

// Compare writes the operations that take schema from to schema to. Renames
// are applied as given; one that names a missing table or column is an
// error.
//
// Compare sees the managed schema only: Plan, on snapshots, also writes
// what only sql operations express.
func Compare(from, to *schema.Schema, renames []Rename) (*Result, error) {
	return compare(from, to, renames, nil, nil)
}

func compare(from, to *schema.Schema, renames []Rename, fromObjs, toObjs *Objects) (*Result, error) {
	d := &differ{from: from, to: to, res: &Result{}, tableRename: map[string]string{}, colRename: map[string]map[string]string{},
		fromObjs: fromObjs, toObjs: toObjs}
	for _, r := range renames {
		if r.Table == "" {
			if from.Tables[r.From] == nil {
				return nil, fmt.Errorf("--rename %s: table %q is not in the current schema", r.Flag(), r.From)
			}
			if to.Tables[r.To] == nil {
				return nil, fmt.Errorf("--rename %s: table %q is not in the desired schema", r.Flag(), r.To)
			}
			d.tableRename[r.To] = r.From
		}
	}
	for _, r := range renames {
		if r.Table == "" {
			continue
		}
		tt := to.Tables[r.Table]
		ft := from.Tables[d.oldName(r.Table)]
		if tt == nil || ft == nil {
			return nil, fmt.Errorf("--rename %s: table %q is not in both schemas", r.Flag(), r.Table)
		}
		if ft.Column(r.From) == nil {
			return nil, fmt.Errorf("--rename %s: column %q is not in table %q of the current schema", r.Flag(), r.From, ft.Name)
		}
		if tt.Column(r.To) == nil {
			return nil, fmt.Errorf("--rename %s: column %q is not in table %q of the desired schema", r.Flag(), r.To, r.Table)
		}
		if d.colRename[r.Table] == nil {
			d.colRename[r.Table] = map[string]string{}
		}
		d.colRename[r.Table][r.To] = r.From
	}
	d.run()
	return d.res, nil
}

type differ struct {
	from, to *schema.Schema
	// fromObjs and toObjs are set by Plan: what they hold, the sql pass
	// writes, and the differ leaves alone.
	fromObjs, toObjs *Objects
	res              *Result
	// tableRename maps a desired table name to its current name;
	// colRename, per desired table, a desired column name to its current.
	tableRename map[string]string
	colRename   map[string]map[string]string

	enums, renames, creates, adds, dropCons, dropIdx, alters, newIdx, newCons, dropCols, dropTables, dropEnums []Op
	droppedCols                                                                                                map[string]map[string]bool
	// fkTargets holds, per current table, the columns that a foreign key
	// this migration drops references. online's complete drops columns,
	// constraints and tables before the constraints of rewritten
	// columns, so what such a key needs waits for the next migration.
	fkTargets map[string]map[string]bool
}

func (d *differ) oldName(desired string) string {
	if o, ok := d.tableRename[desired]; ok {
		return o
	}
	return desired
}

func (d *differ) oldCol(table, desired string) string {
	if o, ok := d.colRename[table][desired]; ok {
		return o
	}
	return desired
}

// sameColumnElsewhere names the desired table, other than table, that
// has a column of fc's name and type which its current version lacks;
// "" when there is none.
func (d *differ) sameColumnElsewhere(table string, fc *schema.Column) string {
	for _, name := range d.to.TableNames() {
		if name == table {
			continue
		}
		tc := d.to.Tables[name].Column(fc.Name)
		if tc == nil || tc.Type != fc.Type {
			continue
		}
		if cur := d.from.Tables[d.oldName(name)]; cur != nil && cur.Column(d.oldCol(name, fc.Name)) != nil {
			continue
		}
		return name
	}
	return ""
}

func (d *differ) unsupported(format string, args ...any) {
	d.res.Unsupported = append(d.res.Unsupported, fmt.Sprintf(format, args...))
}

func (d *differ) run() {
	d.droppedCols = map[string]map[string]bool{}
	d.findFKTargets()
	d.diffEnums()
	kept := map[string]bool{} // current names of the tables that stay
	var created []*schema.Table
	for _, name := range d.to.TableNames() {
		tt := d.to.Tables[name]
		ft := d.from.Tables[d.oldName(name)]
		if ft == nil {
			created = append(created, tt)
			continue
		}
		kept[ft.Name] = true
		if ft.Name != name {
			d.renames = append(d.renames, Op{Kind: "rename_table", Body: mapping("from", str(ft.Name), "to", str(name))})
		}
		d.diffTable(ft, tt)
	}
	var dropped []*schema.Table
	for _, name := range d.from.TableNames() {
		if !kept[name] {
			dropped = append(dropped, d.from.Tables[name])
		}
	}
	d.tableCandidates(dropped, created)
	d.otherObjects()
	d.createTables(created)
	d.dropTablesInOrder(dropped)
	d.res.Ops = slices.Concat(d.enums, d.renames, d.creates, d.adds, d.dropCons, d.dropIdx, d.alters, d.newIdx, d.newCons, d.dropCols, d.dropTables, d.dropEnums)
	for _, o := range d.res.Ops {
		if strings.Contains(o.Comment, "REVIEW") || hasReview(o.Body) {
			d.res.Review++
		}
	}
}

func hasReview(n *yaml.Node) bool {
	if strings.Contains(n.HeadComment, "REVIEW") || strings.Contains(n.LineComment, "REVIEW") {
		return true
	}
	for _, c := range n.Content {
		if hasReview(c) {
			return true
		}
	}
	return false
}

// diffEnums adds new enums and new labels of existing ones. A removed or
// reordered label cannot be expressed: PostgreSQL has no way to drop one.
func (d *differ) diffEnums() {
	for _, name := range slices.Sorted(maps.Keys(d.to.Enums)) {
		want := d.to.Enums[name]
		have, ok := d.from.Enums[name]
		if !ok {
			d.enums = append(d.enums, Op{Kind: "create_enum", Body: mapping("name", str(name), "values", names(want))})
			continue
		}
		pos := map[string]int{}
		for i, l := range want {
			pos[l] = i
		}
		last := -1
		for _, l := range have {
			p, ok := pos[l]
			if !ok {
				d.unsupported("enum %s: label %q is gone from the desired schema; PostgreSQL cannot drop an enum label (recreate the type by hand)", name, l)
				continue
			}
			if p < last {
				d.unsupported("enum %s: label %q moved; PostgreSQL cannot reorder enum labels", name, l)
			}
			last = max(last, p)
		}
		present := map[string]bool{}
		for _, l := range have {
			present[l] = true
		}
		for i, l := range want {
			if present[l] {
				continue
			}
			body := mapping("enum", str(name), "value", str(l))
			if i > 0 {
				set(body, "after", str(want[i-1]), "")
			} else if len(want) > 1 {
				set(body, "before", str(want[1]), "")
			}
			present[l] = true
			d.enums = append(d.enums, Op{Kind: "add_enum_value", Body: body})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.from.Enums)) {
		if _, ok := d.to.Enums[name]; ok {
			continue
		}
		if uses := d.from.EnumUses[name]; len(uses) > 0 {
			// online drops the columns that use it only at the end of
			// complete, after drop_enum would have run.
			d.unsupported("enum %s is not dropped yet: %s uses it; run online diff again once this migration is complete", name, uses[0].Object)
			continue
		}
		d.dropEnums = append(d.dropEnums, Op{Kind: "drop_enum", Body: mapping("name", str(name))})
	}
}

// otherObjects reports the relations (views, sequences, materialized
// views...) and the types (domains, ranges, composites) that only one side
// has: diff compares tables, indexes, constraints and enums only.
func (d *differ) otherObjects() {
	owned := func(s *schema.Schema) map[string]bool {
		m := map[string]bool{}
		for _, t := range s.Tables {
			m[t.Name] = true
			for _, c := range t.Columns {
				// The sequence of a serial or identity column comes with it.
				m[t.Name+"_"+c.Name+"_seq"] = true
			}
		}
		for ix := range s.Indexes {
			m[ix] = true
		}
		return m
	}
	fromOwned, toOwned := owned(d.from), owned(d.to)
	if d.toObjs != nil {
		// Views, sequences, partitions and their indexes are the sql
		// pass's.
		for _, o := range []*Objects{d.fromObjs, d.toObjs} {
			for n := range o.Views {
				fromOwned[n], toOwned[n] = true, true
			}
			for n := range o.Sequences {
				fromOwned[n], toOwned[n] = true, true
			}
			for n := range o.Partitions {
				fromOwned[n], toOwned[n] = true, true
			}
			for n := range o.OtherIndexes {
				fromOwned[n], toOwned[n] = true, true
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(d.to.Relations)) {
		if !toOwned[n] && !d.from.Relations[n] {
			d.unsupported("relation %s (a view, sequence or other non-table) of the desired schema is not created: diff compares tables, indexes, constraints and enums", n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(d.from.Relations)) {
		if !fromOwned[n] && !d.to.Relations[n] {
			d.unsupported("relation %s (a view, sequence or other non-table) is not in the desired schema and is not dropped", n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(d.to.Types)) {
		k := d.to.Types[n]
		if k == "d" && d.toObjs != nil {
			continue // the sql pass's
		}
		if k != "e" && !d.to.Relations[n] && d.from.Types[n] == "" {
			d.unsupported("type %s (typtype %s) of the desired schema is not created: only enums are", n, k)
		}
	}
}

// tableCandidates lists each dropped table whose columns (names and types)
// equal those of a created one.
func (d *differ) tableCandidates(dropped, created []*schema.Table) {
	sig := func(t *schema.Table) string {
		var b strings.Builder
		for _, c := range t.Columns {
			b.WriteString(c.Name + " " + c.Type + ";")
		}
		return b.String()
	}
	for _, o := range dropped {
		for _, n := range created {
			if sig(o) == sig(n) {
				d.res.RenameCandidates = append(d.res.RenameCandidates, Rename{From: o.Name, To: n.Name})
			}
		}
	}
}

// diffTable compares a table that stays (ft current, tt desired).
func (d *differ) diffTable(ft, tt *schema.Table) {
	table := tt.Name
	keptCols := map[string]bool{}
	var addedCols []*schema.Column
	for _, tc := range tt.Columns {
		fc := ft.Column(d.oldCol(table, tc.Name))
		if fc == nil {
			addedCols = append(addedCols, tc)
			d.addColumn(tt, tc)
			continue
		}
		keptCols[fc.Name] = true
		if fc.Name != tc.Name {
			d.renames = append(d.renames, Op{Kind: "rename_column", Body: mapping("table", str(table), "from", str(fc.Name), "to", str(tc.Name))})
		}
		d.alterColumn(tt, fc, tc)
	}
	dropped := map[string]bool{}
	for _, fc := range ft.Columns {
		if keptCols[fc.Name] {
			continue
		}
		if pk := primaryKey(ft); pk != nil && slices.Contains(pk.Columns, fc.Name) {
			d.unsupported("column %s.%s is not dropped: it is part of the primary key %s, which online does not drop (online's triggers and backfill need a key)", table, fc.Name, pk.Name)
			continue
		}
		if d.fkTargets[ft.Name][fc.Name] {
			d.unsupported("column %s.%s is not dropped yet: a foreign key this migration drops references it; run online diff again once this migration is complete", table, fc.Name)
			continue
		}
		dropped[fc.Name] = true
		for _, ac := range addedCols {
			if ac.Type == fc.Type {
				d.res.RenameCandidates = append(d.res.RenameCandidates, Rename{Table: table, From: fc.Name, To: ac.Name})
			}
		}
		body := mapping("table", str(table), "column", str(fc.Name))
		comment := ""
		if !fc.Nullable && fc.Default == nil && fc.Identity == "" && !fc.Generated {
			// The old version still writes the column until complete:
			// rows the new version inserts need a value.
			set(body, "down", str(placeholder(fc, d.from)), "REVIEW: the value the old version's NOT NULL column gets for rows the new version inserts")
		}
		if other := d.sameColumnElsewhere(table, fc); other != "" {
			// A dropped column that reappears in another table looks
			// like data moving between tables; diff compares catalogs,
			// and never infers that.
			comment = fmt.Sprintf("REVIEW: %s.%s goes while %s gets a column of that name. If the data moves, this is beyond what online diff infers: as written, the values of %s.%s are dropped at complete, and %s starts without them. Write the move yourself: add_column or create_table with \"from\" (docs/guides/moving-data-between-tables.md).", table, fc.Name, other, table, fc.Name, other)
		}
		d.dropCols = append(d.dropCols, Op{Kind: "drop_column", Body: body, Comment: comment})
	}
	d.droppedCols[ft.Name] = dropped
	if !eqPtr(ft.Comment, tt.Comment) && d.toObjs == nil {
		d.unsupported("table %s: comment differs; no operation changes a table's comment (use an sql operation)", table)
	}
	d.replicaIdentity(ft, tt)
	if ft.Partitioned != tt.Partitioned || !slices.Equal(ft.PartitionKey, tt.PartitionKey) {
		d.unsupported("table %s: partitioning differs; online cannot partition or unpartition a table", table)
	}
	d.diffIndexes(ft, tt)
	d.diffConstraints(ft, tt, dropped)
}

// newName maps a current column name of table to its desired name.
func (d *differ) newCol(table, current string) string {
	for n, o := range d.colRename[table] {
		if o == current {
			return n
		}
	}
	return current
}

func (d *differ) addColumn(t *schema.Table, c *schema.Column) {
	if c.Identity != "" {
		// add_column refuses it: PostgreSQL fills an identity column by
		// rewriting the table under an exclusive lock.
		d.unsupported("column %s.%s: an identity column added to an existing table is not expressed (PostgreSQL rewrites the table to fill it); add a bigint column with a sequence default instead", t.Name, c.Name)
		return
	}
	col, notes := columnNode(c, t.Name, false)
	for _, n := range notes {
		d.unsupported("%s", n)
	}
	d.identityOptions(col, t.Name, c)
	body := mapping("table", str(t.Name), "column", col)
	if !c.Nullable && c.Default == nil && c.Identity == "" && !c.Generated && !isSerial(c, t.Name) {
		set(body, "up", str(placeholder(c, d.to)), "REVIEW: NOT NULL without a default: the value existing rows get")
	}
	d.adds = append(d.adds, Op{Kind: "add_column", Body: body})
}

// alterColumn writes one alter_column with every change to a column.
func (d *differ) alterColumn(t *schema.Table, fc, tc *schema.Column) {
	body := mapping("table", str(t.Name), "column", str(tc.Name))
	changed := false
	col := pg.Ident(tc.Name)
	if fc.Generated != tc.Generated || fc.GeneratedExpr != tc.GeneratedExpr {
		d.unsupported("column %s.%s: generated expression differs; drop and add the column instead", t.Name, tc.Name)
	}
	identityChange := fc.Identity != tc.Identity
	if identityChange && d.toObjs == nil {
		d.unsupported("column %s.%s: identity differs (%q -> %q); not expressed", t.Name, tc.Name, fc.Identity, tc.Identity)
	}
	up, down := col, pg.Ident(tc.Name)
	upNote := ""
	// A new collation rewrites the column (alter_column's collation,
	// ours); the rewrite needs a key to walk the table by, else the sql
	// pass changes it in place.
	// A type change gives the new type's default collation: a column
	// that keeps its own says it again.
	hasKey := d.from.Tables[d.oldName(t.Name)] != nil && len(d.from.Tables[d.oldName(t.Name)].KeyColumns()) > 0
	// On a table without a key, alter_column cannot rewrite (its backfill
	// walks the key): the sql pass changes type, collation and NOT NULL
	// in place.
	inPlace := d.toObjs != nil && !hasKey
	collation := !inPlace && ((fc.Type != tc.Type && tc.Collation != "") || (fc.Collation != tc.Collation && (fc.Type != tc.Type || hasKey)))
	if fc.Type != tc.Type && !inPlace {
		changed = true
		set(body, "type", str(tc.Type), "")
		up = fmt.Sprintf("CAST(%s AS %s)", col, tc.Type)
		down = fmt.Sprintf("CAST(%s AS %s)", col, fc.Type)
		upNote = fmt.Sprintf("REVIEW: a cast from %s; start fails on a row it cannot convert", fc.Type)
	}
	// An identity column is NOT NULL until its identity goes: the sql
	// pass changes both together. A column of a new primary key gets its
	// NOT NULL from the key; alter_column would need a key to backfill
	// by.
	if fc.Nullable != tc.Nullable && !(identityChange && d.toObjs != nil) && !d.newPKColumn(t, fc.Name) && !(inPlace && !tc.Nullable) {
		changed = true
		set(body, "nullable", boolean(tc.Nullable), "")
		if !tc.Nullable {
			up = fmt.Sprintf("coalesce(%s, %s)", up, placeholder(tc, d.to))
			upNote = strings.TrimPrefix(upNote+"; ", "; ") + "REVIEW: the placeholder existing NULLs get"
			if fc.Type == tc.Type {
				upNote = "REVIEW: the placeholder existing NULLs get"
			}
		}
	}
	if collation {
		changed = true
		c := tc.Collation
		if c == "" {
			c = "default"
		}
		set(body, "collation", str(c), "")
	}
	if upNote != "" {
		set(body, "up", str(up), upNote)
		set(body, "down", str(down), "")
	}
	if !eqPtr(fc.Default, tc.Default) && !isSerial(tc, t.Name) && d.newLabelDefault(tc) {
		d.unsupported("column %s.%s: the default %s uses an enum label this migration adds (PostgreSQL refuses a new label before its commit): set by the next migration, run online diff again once this one is complete", t.Name, tc.Name, *tc.Default)
	} else if !eqPtr(fc.Default, tc.Default) && !isSerial(tc, t.Name) {
		changed = true
		if tc.Default == nil {
			set(body, "default", null(), "")
		} else {
			set(body, "default", str(*tc.Default), "")
		}
	}
	if !eqPtr(fc.Comment, tc.Comment) {
		changed = true
		if tc.Comment == nil {
			set(body, "comment", null(), "")
		} else {
			set(body, "comment", str(*tc.Comment), "")
		}
	}
	if changed {
		d.alters = append(d.alters, Op{Kind: "alter_column", Body: body})
	}
}

// diffIndexes compares the indexes that no constraint owns (those come with
// their constraint).
func (d *differ) diffIndexes(ft, tt *schema.Table) {
	for _, name := range slices.Sorted(maps.Keys(tt.Indexes)) {
		ix := tt.Indexes[name]
		if ix.Constraint != "" {
			continue
		}
		if old := ft.Indexes[name]; old != nil && old.Constraint == "" {
			if normIndex(d.renameIn(tt.Name, old.Definition)) != normIndex(ix.Definition) && d.toObjs == nil {
				d.unsupported("index %s: definition differs (%s -> %s); drop it in one migration and create it in the next, or create it under a new name", name, old.Definition, ix.Definition)
			}
			continue
		}
		if on := sameIndex(ft, tt, ix); on != "" {
			d.unsupported("index %s: the index %s has its definition under another name; no operation renames an index (ALTER INDEX %s RENAME TO %s is instant)", name, on, pg.Ident(on), pg.Ident(name))
			continue
		}
		if op, ok := createIndexOp(tt, ix); ok {
			d.newIdx = append(d.newIdx, op)
		} else {
			d.unsupported("index %s: %s is beyond what create_index expresses here", name, ix.Definition)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ft.Indexes)) {
		ix := ft.Indexes[name]
		if ix.Constraint != "" {
			continue
		}
		if n := tt.Indexes[name]; n != nil && n.Constraint == "" {
			continue
		}
		if d.allDropped(ft.Name, ix.Columns) {
			continue // dropped with its columns
		}
		if sameIndex(tt, ft, ix) != "" {
			continue // reported as a rename
		}
		if d.fkTarget(ft.Name, ix.Columns) {
			d.unsupported("index %s is not dropped yet: a foreign key this migration drops references its columns; run online diff again once this migration is complete", name)
			continue
		}
		d.dropIdx = append(d.dropIdx, Op{Kind: "drop_index", Body: mapping("name", str(name))})
	}
}

// findFKTargets fills fkTargets: the foreign keys of the current schema that
// the desired one lacks, or whose table or columns it lacks.
func (d *differ) findFKTargets() {
	d.fkTargets = map[string]map[string]bool{}
	for _, name := range d.from.TableNames() {
		ft := d.from.Tables[name]
		newName := name
		for n, o := range d.tableRename {
			if o == name {
				newName = n
			}
		}
		tt := d.to.Tables[newName]
		for _, con := range ft.Constraints {
			if con.Type != "f" || con.RefSchema != d.from.Name {
				continue
			}
			gone := tt == nil || tt.Constraints[con.Name] == nil
			for _, c := range con.Columns {
				if tt != nil && tt.Column(d.newCol(newName, c)) == nil {
					gone = true
				}
			}
			if !gone {
				continue
			}
			if d.fkTargets[con.RefTableName] == nil {
				d.fkTargets[con.RefTableName] = map[string]bool{}
			}
			for _, c := range con.RefColumns {
				d.fkTargets[con.RefTableName][c] = true
			}
		}
	}
}

func (d *differ) fkTarget(table string, cols []string) bool {
	for _, c := range cols {
		if d.fkTargets[table][c] {
			return true
		}
	}
	return false
}

func (d *differ) allDropped(table string, cols []string) bool {
	if len(cols) == 0 {
		return false
	}
	for _, c := range cols {
		if !d.droppedCols[table][c] {
			return false
		}
	}
	return true
}

func (d *differ) anyDropped(table string, cols []string) bool {
	for _, c := range cols {
		if d.droppedCols[table][c] {
			return true
		}
	}
	return false
}

// sameIndex returns the name of an index of table a, not in b by that name,
// whose definition equals ix's but for the names.
func sameIndex(a, b *schema.Table, ix *schema.Index) string {
	want := normIndex(ix.Definition)
	for _, n := range slices.Sorted(maps.Keys(a.Indexes)) {
		o := a.Indexes[n]
		if o.Constraint == "" && b.Indexes[n] == nil && normIndex(o.Definition) == want {
			return n
		}
	}
	return ""
}

// indexHead is the part of an index definition that holds the names of the
// index and its table.
var indexHead = regexp.MustCompile(`^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ `)

// normIndex is an index definition without the names of the index and its
// table, so that the index of a renamed table compares equal.
func normIndex(def string) string {
	return indexHead.ReplaceAllString(def, "CREATE ${1}INDEX ON ${2}")
}

var indexDef = regexp.MustCompile(`^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ USING (\w+) \((.*?)\)( INCLUDE \((.*?)\))?( NULLS NOT DISTINCT)?( WITH \((.*?)\))?( WHERE (.*))?$`)

// createIndexOp translates an index definition to create_index, for a key
// of plain columns (with their sort order).
func createIndexOp(t *schema.Table, ix *schema.Index) (Op, bool) {
	m := indexDef.FindStringSubmatch(ix.Definition)
	if m == nil || len(ix.Columns) == 0 {
		return Op{}, false
	}
	keys := splitTop(m[3])
	if len(keys) != len(ix.Columns) {
		return Op{}, false
	}
	// Plain columns are a list; with sort or nulls, the map form (name
	// to options), which every version of the format accepts.
	cols, opts := seq(), mapping()
	plain := true
	for i, k := range keys {
		q := pg.Ident(ix.Columns[i])
		rest, ok := strings.CutPrefix(k, ix.Columns[i])
		if !ok {
			if rest, ok = strings.CutPrefix(k, q); !ok {
				return Op{}, false
			}
		}
		colNode := mapping()
		for _, w := range strings.Fields(rest) {
			switch w {
			case "DESC":
				set(colNode, "sort", str("DESC"), "")
			case "NULLS":
			case "FIRST", "LAST":
				set(colNode, "nulls", str(w), "")
			default:
				return Op{}, false // an opclass or a collation
			}
		}
		if strings.TrimSpace(rest) != "" {
			plain = false
		} else {
			colNode = null()
		}
		cols.Content = append(cols.Content, str(ix.Columns[i]))
		set(opts, ix.Columns[i], colNode, "")
	}
	cols.Style = yaml.FlowStyle
	if !plain {
		cols = opts
	}
	body := mapping("table", str(t.Name), "name", str(ix.Name), "columns", cols)
	if m[2] != "btree" {
		set(body, "method", str(m[2]), "")
	}
	if ix.Unique {
		set(body, "unique", boolean(true), "")
	}
	if m[5] != "" {
		set(body, "include", names(unquoteAll(splitTop(m[5]))), "")
	}
	if m[6] != "" {
		set(body, "nulls_not_distinct", boolean(true), "")
	}
	if m[8] != "" {
		set(body, "storage_parameters", str(m[8]), "")
	}
	if m[10] != "" {
		set(body, "predicate", str(m[10]), "")
	}
	return Op{Kind: "create_index", Body: body}, true
}

// splitTop splits a list at its top-level commas.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	inQuote := false
	for i, r := range s {
		switch {
		case r == '"' || r == '\'':
			inQuote = !inQuote
		case inQuote:
		case r == '(':
			depth++
		case r == ')':
			depth--
		case r == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func unquoteAll(ss []string) []string {
	for i, s := range ss {
		if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
			ss[i] = strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
		}
	}
	return ss
}

// diffConstraints compares the constraints of a table that stays.
func (d *differ) diffConstraints(ft, tt *schema.Table, dropped map[string]bool) {
	// A constraint of the same type and definition under another name is a
	// rename (PostgreSQL names them after the table: a renamed table's
	// primary key keeps its old name).
	renamed := map[string]bool{} // current names
	for _, name := range slices.Sorted(maps.Keys(tt.Constraints)) {
		con := tt.Constraints[name]
		if ft.Constraints[name] != nil {
			continue
		}
		for _, on := range slices.Sorted(maps.Keys(ft.Constraints)) {
			old := ft.Constraints[on]
			if tt.Constraints[on] == nil && !renamed[on] && old.Type == con.Type && d.renamedDef(ft, tt, old) == con.Definition {
				renamed[on] = true
				d.renames = append(d.renames, Op{Kind: "rename_constraint", Body: mapping("table", str(tt.Name), "from", str(on), "to", str(name))})
				break
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tt.Constraints)) {
		con := tt.Constraints[name]
		if old := ft.Constraints[name]; old != nil {
			if (old.Type != con.Type || d.renamedDef(ft, tt, old) != con.Definition) && d.toObjs == nil {
				d.unsupported("constraint %s on %s: definition differs (%s -> %s); drop it and create it under a new name", name, tt.Name, old.Definition, con.Definition)
			}
			continue
		}
		if slices.ContainsFunc(d.renames, func(o Op) bool {
			return o.Kind == "rename_constraint" && o.Body.Content[1].Value == tt.Name && o.Body.Content[5].Value == name
		}) {
			continue
		}
		if d.toObjs != nil && sqlConstraint(d.to.Relations, con.Name, con.Type, con.Definition, con.RefSchema != d.to.Name) {
			continue // the sql pass adds it
		}
		body, ok := d.constraintBody(tt, con)
		if !ok {
			continue
		}
		comment := ""
		if con.Type == "p" {
			comment = fmt.Sprintf("REVIEW: a new primary key (%s): it builds a unique index and sets its columns NOT NULL", con.Definition)
		}
		set(body, "table", str(tt.Name), "")
		body.Content = append(body.Content[len(body.Content)-2:], body.Content[:len(body.Content)-2]...)
		d.newCons = append(d.newCons, Op{Kind: "create_constraint", Body: body, Comment: comment})
	}
	for _, name := range slices.Sorted(maps.Keys(ft.Constraints)) {
		con := ft.Constraints[name]
		if tt.Constraints[name] != nil || renamed[name] {
			continue
		}
		if d.anyDropped(ft.Name, con.Columns) {
			continue // drop_column drops its constraints
		}
		if d.fkTarget(ft.Name, con.Columns) {
			d.unsupported("constraint %s on %s is not dropped yet: a foreign key this migration drops references its columns; run online diff again once this migration is complete", name, tt.Name)
			continue
		}
		if con.Type == "p" {
			d.unsupported("table %s: primary key %s is gone from the desired schema; online does not drop a primary key", tt.Name, name)
			continue
		}
		if d.toObjs != nil && len(ft.KeyColumns()) == 0 {
			continue // no key to rewrite by: the sql pass drops it in place
		}
		cols := make([]string, len(con.Columns))
		up, down := mapping(), mapping()
		for i, c := range con.Columns {
			cols[i] = d.newCol(tt.Name, c)
			set(up, cols[i], str(pg.Ident(cols[i])), "")
			set(down, cols[i], str(pg.Ident(cols[i])), "")
		}
		d.dropCons = append(d.dropCons, Op{Kind: "drop_multicolumn_constraint", Body: mapping("table", str(tt.Name), "name", str(name), "up", up, "down", down)})
	}
}

// renamedDef is a constraint's definition with the renames applied, so that
// an unchanged constraint over a renamed column compares equal.
func (d *differ) renamedDef(ft, tt *schema.Table, con *schema.Constraint) string {
	return d.renameIn(tt.Name, con.Definition)
}

// renameIn applies the column renames of a table (by its desired name) to
// a definition. A name inside a string literal would be renamed too; the
// comparison then reports a difference, never hides one.
func (d *differ) renameIn(table, def string) string {
	for n, o := range d.colRename[table] {
		def = regexp.MustCompile(`\b`+regexp.QuoteMeta(o)+`\b`).ReplaceAllString(def, n)
	}
	return def
}

var (
	onDelete  = regexp.MustCompile(`ON DELETE (CASCADE|RESTRICT|SET NULL|SET DEFAULT|NO ACTION)`)
	onUpdate  = regexp.MustCompile(`ON UPDATE (CASCADE|RESTRICT|SET NULL|SET DEFAULT|NO ACTION)`)
	checkBody = regexp.MustCompile(`^CHECK \((.*)\)( NO INHERIT)?( NOT VALID)?$`)
)

// constraintBody is the body shared by create_table's constraints and
// create_constraint: name, type, columns and the rest.
func (d *differ) constraintBody(t *schema.Table, con *schema.Constraint) (*yaml.Node, bool) {
	body := mapping("name", str(con.Name))
	switch con.Type {
	case "u", "p":
		kind := "unique"
		if con.Type == "p" {
			kind = "primary_key"
		}
		set(body, "type", str(kind), "")
		set(body, "columns", names(con.Columns), "")
		if strings.Contains(con.Definition, "NULLS NOT DISTINCT") {
			set(body, "nulls_not_distinct", boolean(true), "")
		}
		if strings.Contains(con.Definition, " INCLUDE ") || strings.Contains(con.Definition, " WITH (") {
			d.unsupported("constraint %s on %s: index parameters (%s) left out", con.Name, t.Name, con.Definition)
		}
	case "c":
		m := checkBody.FindStringSubmatch(con.Definition)
		if m == nil {
			d.unsupported("constraint %s on %s: %s not understood", con.Name, t.Name, con.Definition)
			return nil, false
		}
		set(body, "type", str("check"), "")
		set(body, "columns", names(con.Columns), "")
		set(body, "check", str(m[1]), "")
		if m[2] != "" {
			set(body, "no_inherit", boolean(true), "")
		}
	case "f":
		set(body, "type", str("foreign_key"), "")
		set(body, "columns", names(con.Columns), "")
		ref := mapping("table", str(con.RefTableName), "columns", names(con.RefColumns))
		if m := onDelete.FindStringSubmatch(con.Definition); m != nil {
			set(ref, "on_delete", str(m[1]), "")
		}
		if m := onUpdate.FindStringSubmatch(con.Definition); m != nil {
			set(ref, "on_update", str(m[1]), "")
		}
		if strings.Contains(con.Definition, "MATCH FULL") {
			set(ref, "match_type", str("FULL"), "")
		}
		set(body, "references", ref, "")
		if con.RefSchema != d.to.Name {
			d.unsupported("constraint %s on %s references a table of schema %s; left out", con.Name, t.Name, con.RefSchema)
			return nil, false
		}
		if strings.Contains(con.Definition, "DEFERRABLE") && !strings.Contains(con.Definition, "NOT DEFERRABLE") {
			set(body, "deferrable", boolean(true), "")
			if strings.Contains(con.Definition, "INITIALLY DEFERRED") {
				set(body, "initially_deferred", boolean(true), "")
			}
		}
	default:
		d.unsupported("constraint %s on %s (%s): exclusion constraints are not generated", con.Name, t.Name, con.Definition)
		return nil, false
	}
	return body, true
}

// createTables writes create_table for each new table, referenced tables
// first. A foreign key to a table that comes later (a cycle) is added by
// create_constraint after all tables exist.
func (d *differ) createTables(created []*schema.Table) {
	done := map[string]bool{}
	pending := map[string]bool{}
	for _, t := range created {
		pending[t.Name] = true
	}
	var order []*schema.Table
	var visit func(t *schema.Table, path map[string]bool)
	visit = func(t *schema.Table, path map[string]bool) {
		if done[t.Name] || path[t.Name] {
			return
		}
		path[t.Name] = true
		for _, cn := range slices.Sorted(maps.Keys(t.Constraints)) {
			con := t.Constraints[cn]
			if con.Type == "f" && pending[con.RefTableName] && con.RefTableName != t.Name {
				visit(d.to.Tables[con.RefTableName], path)
			}
		}
		delete(path, t.Name)
		done[t.Name] = true
		order = append(order, t)
	}
	for _, t := range created {
		visit(t, map[string]bool{})
	}
	exists := map[string]bool{}
	for _, t := range order {
		cols := seq()
		for _, c := range t.Columns {
			n, notes := columnNode(c, t.Name, true)
			for _, s := range notes {
				d.unsupported("%s", s)
			}
			d.identityOptions(n, t.Name, c)
			cols.Content = append(cols.Content, n)
		}
		body := mapping("name", str(t.Name), "columns", cols)
		if t.Comment != nil {
			set(body, "comment", str(*t.Comment), "")
		}
		cons := seq()
		for _, cn := range slices.Sorted(maps.Keys(t.Constraints)) {
			con := t.Constraints[cn]
			if d.toObjs != nil && sqlConstraint(d.to.Relations, con.Name, con.Type, con.Definition, con.RefSchema != d.to.Name) {
				d.unsupported("constraint %s on %s: added by the next migration (an sql operation): run online diff again once this one is complete", cn, t.Name)
				continue
			}
			b, ok := d.constraintBody(t, con)
			if !ok {
				continue
			}
			if con.Type == "f" && pending[con.RefTableName] && !exists[con.RefTableName] && con.RefTableName != t.Name {
				set(b, "table", str(t.Name), "")
				b.Content = append(b.Content[len(b.Content)-2:], b.Content[:len(b.Content)-2]...)
				d.newCons = append(d.newCons, Op{Kind: "create_constraint", Body: b, Comment: "a foreign key of a cycle of new tables, added once both exist"})
				continue
			}
			cons.Content = append(cons.Content, b)
		}
		if len(cons.Content) > 0 {
			set(body, "constraints", cons, "")
		}
		exists[t.Name] = true
		d.creates = append(d.creates, Op{Kind: "create_table", Body: body})
		for _, name := range slices.Sorted(maps.Keys(t.Indexes)) {
			ix := t.Indexes[name]
			if ix.Constraint != "" {
				continue
			}
			if op, ok := createIndexOp(t, ix); ok {
				d.newIdx = append(d.newIdx, op)
			} else {
				d.unsupported("index %s: %s is beyond what create_index expresses here", name, ix.Definition)
			}
		}
		if t.Partitioned {
			d.unsupported("table %s is partitioned; create_table does not create partitioned tables here", t.Name)
		}
	}
}

// dropTablesInOrder drops referencing tables before the tables they
// reference, and first the foreign keys that kept tables hold to them.
func (d *differ) dropTablesInOrder(dropped []*schema.Table) {
	gone := map[string]bool{}
	for _, t := range dropped {
		gone[t.Name] = true
	}
	// A table that stays but references a dropped one loses that key first.
	for _, name := range d.from.TableNames() {
		t := d.from.Tables[name]
		if gone[name] {
			continue
		}
		for _, cn := range slices.Sorted(maps.Keys(t.Constraints)) {
			con := t.Constraints[cn]
			if con.Type != "f" || !gone[con.RefTableName] || d.anyDropped(name, con.Columns) {
				continue
			}
			newName := name
			for n, o := range d.tableRename {
				if o == name {
					newName = n
				}
			}
			if tt := d.to.Tables[newName]; tt != nil && tt.Constraints[cn] != nil {
				continue
			}
			already := false
			for _, o := range d.dropCons {
				if o.Body.Content[1].Value == newName && o.Body.Content[3].Value == cn {
					already = true
				}
			}
			// online's complete drops tables last, after the column swaps
			// that drop this key: both go in one migration.
			if !already {
				up, down := mapping(), mapping()
				for _, c := range con.Columns {
					set(up, c, str(pg.Ident(c)), "")
					set(down, c, str(pg.Ident(c)), "")
				}
				d.dropCons = append(d.dropCons, Op{Kind: "drop_multicolumn_constraint", Body: mapping("table", str(newName), "name", str(cn), "up", up, "down", down)})
			}
		}
	}
	done := map[string]bool{}
	var visit func(t *schema.Table, path map[string]bool)
	visit = func(t *schema.Table, path map[string]bool) {
		if done[t.Name] || path[t.Name] {
			return
		}
		path[t.Name] = true
		// Tables that reference t go first.
		for _, o := range dropped {
			for _, con := range o.Constraints {
				if con.Type == "f" && con.RefTableName == t.Name && o.Name != t.Name {
					visit(o, path)
				}
			}
		}
		delete(path, t.Name)
		done[t.Name] = true
		d.dropTables = append(d.dropTables, Op{Kind: "drop_table", Body: mapping("name", str(t.Name))})
	}
	for _, t := range dropped {
		visit(t, map[string]bool{})
	}
}

// columnNode writes a column of create_table or add_column, with notes on
// what it leaves out.
func columnNode(c *schema.Column, table string, inCreate bool) (*yaml.Node, []string) {
	var notes []string
	typ := c.Type
	serial := isSerial(c, table)
	if serial {
		typ = map[string]string{"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}[c.Type]
	}
	n := mapping("name", str(c.Name), "type", str(typ))
	// nullable defaults to false in the format (as in pgroll), true in
	// older versions of online: say it either way.
	set(n, "nullable", boolean(c.Nullable), "")
	if c.Default != nil && !serial && !c.Generated {
		set(n, "default", str(*c.Default), "")
	}
	if c.Comment != nil {
		set(n, "comment", str(*c.Comment), "")
	}
	if c.Collation != "" {
		set(n, "collation", str(c.Collation), "")
	}
	switch {
	case c.Generated:
		set(n, "generated", mapping("expression", str(c.GeneratedExpr)), "")
	case c.Identity != "":
		v := "ALWAYS"
		if c.Identity == "d" {
			v = "BY DEFAULT"
		}
		set(n, "generated", mapping("identity", mapping("user_specified_values", str(v))), "")
	}
	if serial && !inCreate {
		notes = append(notes, fmt.Sprintf("column %s.%s is a %s added to an existing table: PostgreSQL fills it by rewriting the table under an ACCESS EXCLUSIVE lock", table, c.Name, typ))
	}
	return n, notes
}

var serialDefault = regexp.MustCompile(`^nextval\('(.+)'::regclass\)$`)

// isSerial is true for a column whose default is its own serial sequence.
func isSerial(c *schema.Column, table string) bool {
	if c.Default == nil || (c.Type != "integer" && c.Type != "bigint" && c.Type != "smallint") {
		return false
	}
	m := serialDefault.FindStringSubmatch(*c.Default)
	if m == nil {
		return false
	}
	seq := strings.Trim(m[1], `"`)
	return seq == table+"_"+c.Name+"_seq"
}

// placeholder is the value a NOT NULL column gets where it had none: its
// default when it has one, else a zero value of its type. The caller marks
// it for review.
func placeholder(c *schema.Column, s *schema.Schema) string {
	if c.Default != nil {
		return *c.Default
	}
	t := c.Type
	switch {
	case t == "smallint" || t == "integer" || t == "bigint" || t == "real" || t == "double precision" || strings.HasPrefix(t, "numeric"):
		return "0"
	case t == "text" || strings.HasPrefix(t, "character"):
		return "''"
	case t == "boolean":
		return "false"
	case t == "date":
		return "current_date"
	case strings.HasPrefix(t, "timestamp"):
		return "now()"
	case t == "uuid":
		return "gen_random_uuid()"
	case t == "json" || t == "jsonb":
		return "'{}'::" + t
	case strings.HasSuffix(t, "[]"):
		return "'{}'::" + t
	}
	if labels := s.Enums[t]; len(labels) > 0 {
		return pg.Literal(labels[0]) + "::" + t
	}
	return "NULL /* REVIEW: no placeholder for type " + t + " */"
}

func eqPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// newLabelDefault is true when a column's default names a label that this
// migration adds to the column's enum.
func (d *differ) newLabelDefault(c *schema.Column) bool {
	if c.Default == nil {
		return false
	}
	for _, o := range d.enums {
		if o.Kind != "add_enum_value" || o.Body.Content[1].Value != c.Type {
			continue
		}
		if strings.Contains(*c.Default, pg.Literal(o.Body.Content[3].Value)) {
			return true
		}
	}
	return false
}

// replicaIdentity writes set_replica_identity when a kept table's differs.
func (d *differ) replicaIdentity(ft, tt *schema.Table) {
	if ft.ReplicaIdentity == tt.ReplicaIdentity || tt.ReplicaIdentity == "" {
		if ft.ReplicaIdentity != "i" || tt.ReplicaIdentity != "i" {
			return
		}
	}
	riIndex := func(t *schema.Table) string {
		for _, n := range slices.Sorted(maps.Keys(t.Indexes)) {
			if t.Indexes[n].ReplicaIdentity {
				return n
			}
		}
		return ""
	}
	if ft.ReplicaIdentity == tt.ReplicaIdentity && riIndex(ft) == riIndex(tt) {
		return
	}
	kind := map[string]string{"d": "default", "n": "nothing", "f": "full", "i": "index"}[tt.ReplicaIdentity]
	ri := mapping("type", str(kind))
	if kind == "index" {
		set(ri, "index", str(riIndex(tt)), "")
	}
	d.alters = append(d.alters, Op{Kind: "set_replica_identity", Body: mapping("table", str(tt.Name), "identity", ri)})
}

func primaryKey(t *schema.Table) *schema.Constraint {
	for _, n := range slices.Sorted(maps.Keys(t.Constraints)) {
		if t.Constraints[n].Type == "p" {
			return t.Constraints[n]
		}
	}
	return nil
}

// newPKColumn is true for a column (current name) of a primary key that
// the desired table has and the current one lacks.
func (d *differ) newPKColumn(tt *schema.Table, col string) bool {
	ft := d.from.Tables[d.oldName(tt.Name)]
	pk := primaryKey(tt)
	if ft == nil || pk == nil || primaryKey(ft) != nil {
		return false
	}
	return slices.Contains(pk.Columns, d.newCol(tt.Name, col))
}

// identityOptions writes the sequence options of a new identity column
// (its START, INCREMENT...) as the desired schema has them.
func (d *differ) identityOptions(col *yaml.Node, table string, c *schema.Column) {
	if c.Identity == "" || d.toObjs == nil {
		return
	}
	for _, n := range slices.Sorted(maps.Keys(d.toObjs.Sequences)) {
		s := d.toObjs.Sequences[n]
		if !s.Identity || s.Table != table || s.Column != c.Name {
			continue
		}
		opts := strings.TrimPrefix(s.options(), "AS "+s.Type+" ")
		for i := 0; i+1 < len(col.Content); i += 2 {
			if col.Content[i].Value == "generated" {
				id := col.Content[i+1].Content[1]
				set(id, "sequence_options", str(opts), "")
			}
		}
	}
}
