package diff

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// Side is what one database holds in a schema other than the managed one:
// its tables as schema.Read reads them, and its other objects.
type Side struct {
	Schema  *schema.Schema
	Objects *Objects
}

// A schema other than the managed one has no version schemas: online
// serves its tables to no version, so nothing there is migrated without
// downtime. diff changes such a schema with plain DDL in sql operations
// (each with its down), which lock as the DDL locks: the comments say so.

// moves finds the tables that only changed schema: a table that one schema
// loses and exactly one other schema gains, with the same columns. It
// returns them as "from schema.table" -> "to schema".
func moves(from, to *Snapshot) map[[2]string]string {
	tablesOf := func(s *Snapshot) map[string]map[string]*schema.Table {
		m := map[string]map[string]*schema.Table{s.Schema.Name: s.Schema.Tables}
		for n, side := range s.Others {
			m[n] = side.Schema.Tables
		}
		return m
	}
	ft, tt := tablesOf(from), tablesOf(to)
	out := map[[2]string]string{}
	for _, fs := range slices.Sorted(maps.Keys(ft)) {
		for _, name := range slices.Sorted(maps.Keys(ft[fs])) {
			if tt[fs] != nil && tt[fs][name] != nil {
				continue
			}
			var dest []string
			for _, ts := range slices.Sorted(maps.Keys(tt)) {
				if ts != fs && tt[ts][name] != nil && (ft[ts] == nil || ft[ts][name] == nil) && sameColumns(ft[fs][name], tt[ts][name]) {
					dest = append(dest, ts)
				}
			}
			if len(dest) == 1 {
				out[[2]string{fs, name}] = dest[0]
			}
		}
	}
	return out
}

func sameColumns(a, b *schema.Table) bool {
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for _, c := range a.Columns {
		o := b.Column(c.Name)
		if o == nil || o.Type != c.Type {
			return false
		}
	}
	return true
}

// moveOps writes ALTER TABLE ... SET SCHEMA for each move: the table keeps
// its rows, indexes, constraints and owned sequences.
func moveOps(mv map[[2]string]string) []sqlOp {
	var out []sqlOp
	for _, k := range slices.SortedFunc(maps.Keys(mv), func(a, b [2]string) int { return strings.Compare(a[0]+"."+a[1], b[0]+"."+b[1]) }) {
		to := mv[k]
		out = append(out, sqlOp{what: fmt.Sprintf("table %s.%s (moved to schema %s)", k[0], k[1], to),
			up:   fmt.Sprintf("ALTER TABLE %s SET SCHEMA %s", pg.Ident(k[0], k[1]), pg.Ident(to)),
			down: fmt.Sprintf("ALTER TABLE %s SET SCHEMA %s", pg.Ident(to, k[1]), pg.Ident(k[0]))})
	}
	return out
}

// tablesPass writes the DDL that takes the tables of schema sn from f to t
// (a schema other than the managed one, on both sides). moved lists the
// tables of t that a move brings (not created) and of f that a move takes
// (not dropped). It returns the statements in four groups, in the order
// they run: drops of what changes, creations, additions, drops of what
// goes.
func tablesPass(sn string, f, t *Side, movedIn, movedOut map[string]bool, res *Result) (pre, mid, post, last []sqlOp) {
	q := func(n string) string { return pg.Ident(sn, n) }
	fs, ts := f.Schema, t.Schema
	// New tables: their owned sequences first (a serial's default names
	// its sequence), the table, then who owns the sequence.
	for _, name := range ts.TableNames() {
		tt := ts.Tables[name]
		if fs.Tables[name] != nil || movedIn[name] {
			continue
		}
		if tt.Partitioned {
			res.Unsupported = append(res.Unsupported, fmt.Sprintf("table %s.%s is partitioned: diff does not create a partitioned table outside the managed schema (write it by hand)", sn, name))
			continue
		}
		var up, down []string
		var owned []*Sequence
		for _, n := range slices.Sorted(maps.Keys(t.Objects.Sequences)) {
			s := t.Objects.Sequences[n]
			if s.Table == name && !s.Identity && f.Objects.Sequences[n] == nil {
				owned = append(owned, s)
				up = append(up, "CREATE SEQUENCE "+q(n)+" "+s.options())
			}
		}
		var cols []string
		for _, c := range tt.Columns {
			cols = append(cols, columnDDL(c, name, t.Objects))
		}
		up = append(up, "CREATE TABLE "+q(name)+" (\n  "+strings.Join(cols, ",\n  ")+"\n)")
		for _, s := range owned {
			up = append(up, "ALTER SEQUENCE "+q(s.Name)+" OWNED BY "+s.OwnedBy)
		}
		up = append(up, commentsDDL(q(name), nil, tt)...)
		down = append(down, "DROP TABLE "+q(name))
		for _, s := range owned {
			down = append(down, "DROP SEQUENCE IF EXISTS "+q(s.Name))
		}
		mid = append(mid, sqlOp{what: "table " + sn + "." + name, up: strings.Join(up, ";\n"), down: strings.Join(down, ";\n")})
		cons, idx := constraintsAndIndexes(q, name, nil, tt)
		post = append(post, cons...)
		post = append(post, idx...)
	}
	// Tables on both sides.
	for _, name := range ts.TableNames() {
		tt, ft := ts.Tables[name], fs.Tables[name]
		if ft == nil {
			continue
		}
		alter := "ALTER TABLE " + q(name) + " "
		for _, tc := range tt.Columns {
			fc := ft.Column(tc.Name)
			if fc == nil {
				mid = append(mid, sqlOp{what: "column " + sn + "." + name + "." + tc.Name,
					up: alter + "ADD COLUMN " + columnDDL(tc, name, t.Objects), down: alter + "DROP COLUMN " + pg.Ident(tc.Name),
					comment: "plain DDL outside the managed schema: a NOT NULL column without a default fails on a table with rows"})
				continue
			}
			mid = append(mid, alterColumnDDL(alter, sn, name, fc, tc, res)...)
		}
		for _, fc := range ft.Columns {
			if tt.Column(fc.Name) == nil {
				last = append(last, sqlOp{what: "column " + sn + "." + name + "." + fc.Name + " (dropped)", up: alter + "DROP COLUMN " + pg.Ident(fc.Name), onComplete: true,
					comment: "drops the column and its values, at complete"})
			}
		}
		if !eqPtr(ft.Comment, tt.Comment) {
			post = append(post, sqlOp{what: "table " + sn + "." + name + " (comment)", up: "COMMENT ON TABLE " + q(name) + " IS " + literalOrNull(tt.Comment), down: "COMMENT ON TABLE " + q(name) + " IS " + literalOrNull(ft.Comment)})
		}
		if ft.Partitioned != tt.Partitioned || !slices.Equal(ft.PartitionKey, tt.PartitionKey) {
			res.Unsupported = append(res.Unsupported, fmt.Sprintf("table %s.%s: partitioning differs; not expressed (recreate the table by hand)", sn, name))
		}
		// Constraints and indexes that change are dropped first and
		// created again after the columns change.
		for _, cn := range slices.Sorted(maps.Keys(ft.Constraints)) {
			con := ft.Constraints[cn]
			if n := tt.Constraints[cn]; n != nil && n.Definition == con.Definition && n.Type == con.Type {
				continue
			}
			if droppedWithColumn(tt, con.Columns) {
				continue
			}
			pre = append(pre, sqlOp{what: "constraint " + cn + " on " + sn + "." + name + " (dropped)", up: alter + "DROP CONSTRAINT " + pg.Ident(cn), down: alter + "ADD CONSTRAINT " + pg.Ident(cn) + " " + con.Definition})
		}
		for _, in := range slices.Sorted(maps.Keys(ft.Indexes)) {
			ix := ft.Indexes[in]
			if ix.Constraint != "" {
				continue
			}
			if n := tt.Indexes[in]; n != nil && n.Constraint == "" && n.Definition == ix.Definition {
				continue
			}
			if droppedWithColumn(tt, ix.Columns) {
				continue
			}
			pre = append(pre, sqlOp{what: "index " + sn + "." + in + " (dropped)", up: "DROP INDEX " + q(in), down: ix.Definition})
		}
		cons, idx := constraintsAndIndexes(q, name, ft, tt)
		post = append(post, cons...)
		post = append(post, idx...)
	}
	for _, name := range fs.TableNames() {
		if ts.Tables[name] == nil && !movedOut[name] {
			last = append(last, sqlOp{what: "table " + sn + "." + name + " (dropped)", up: "DROP TABLE " + q(name), onComplete: true,
				comment: "drops the table and its rows, at complete"})
		}
	}
	return pre, mid, post, last
}

// droppedWithColumn is true when one of cols is gone from t: dropping the
// column drops what is built on it.
func droppedWithColumn(t *schema.Table, cols []string) bool {
	for _, c := range cols {
		if t.Column(c) == nil {
			return true
		}
	}
	return false
}

// constraintsAndIndexes writes the constraints (foreign keys last) and
// the indexes that t has and f (nil: a new table) lacks or defines
// otherwise.
func constraintsAndIndexes(q func(string) string, name string, f, t *schema.Table) (cons, idx []sqlOp) {
	alter := "ALTER TABLE " + q(name) + " "
	var fks []sqlOp
	for _, cn := range slices.Sorted(maps.Keys(t.Constraints)) {
		con := t.Constraints[cn]
		if f != nil {
			if o := f.Constraints[cn]; o != nil && o.Definition == con.Definition && o.Type == con.Type {
				continue
			}
		}
		o := sqlOp{what: "constraint " + cn + " on " + q(name), up: alter + "ADD CONSTRAINT " + pg.Ident(cn) + " " + con.Definition, down: alter + "DROP CONSTRAINT " + pg.Ident(cn)}
		if con.Type == "f" {
			fks = append(fks, o)
		} else {
			cons = append(cons, o)
		}
	}
	for _, in := range slices.Sorted(maps.Keys(t.Indexes)) {
		ix := t.Indexes[in]
		if ix.Constraint != "" {
			continue
		}
		if f != nil {
			if o := f.Indexes[in]; o != nil && o.Constraint == "" && o.Definition == ix.Definition {
				continue
			}
		}
		idx = append(idx, sqlOp{what: "index " + in + " on " + q(name), up: ix.Definition, down: "DROP INDEX " + q(in),
			comment: "built in the migration's transaction (not CONCURRENTLY): it blocks writes to its table while it builds"})
	}
	return append(cons, fks...), idx
}

// columnDDL is a column's definition for CREATE TABLE and ADD COLUMN.
func columnDDL(c *schema.Column, table string, objs *Objects) string {
	s := pg.Ident(c.Name) + " " + c.Type
	if c.Collation != "" {
		s += " COLLATE " + pg.Ident(c.Collation)
	}
	switch {
	case c.Generated:
		s += " GENERATED ALWAYS AS (" + c.GeneratedExpr + ") STORED"
	case c.Identity != "":
		s += " GENERATED " + map[string]string{"a": "ALWAYS", "d": "BY DEFAULT"}[c.Identity] + " AS IDENTITY"
		for _, n := range slices.Sorted(maps.Keys(objs.Sequences)) {
			if sq := objs.Sequences[n]; sq.Identity && sq.Table == table && sq.Column == c.Name {
				s += " (" + strings.TrimPrefix(sq.options(), "AS "+sq.Type+" ") + ")"
			}
		}
	case c.Default != nil:
		s += " DEFAULT " + *c.Default
	}
	if !c.Nullable {
		s += " NOT NULL"
	}
	return s
}

// alterColumnDDL changes a column of a table outside the managed schema.
func alterColumnDDL(alter, sn, table string, fc, tc *schema.Column, res *Result) []sqlOp {
	col := "ALTER COLUMN " + pg.Ident(tc.Name) + " "
	what := "column " + sn + "." + table + "." + tc.Name
	var out []sqlOp
	if fc.Generated != tc.Generated || fc.GeneratedExpr != tc.GeneratedExpr || fc.Identity != tc.Identity {
		res.Unsupported = append(res.Unsupported, fmt.Sprintf("%s: identity or generated expression differs; not expressed (drop and add the column by hand)", what))
		return nil
	}
	// The default goes before a type change (it may not cast) and comes
	// back after.
	if fc.Type != tc.Type || fc.Collation != tc.Collation {
		typ := func(c *schema.Column) string {
			s := c.Type
			if c.Collation != "" {
				s += " COLLATE " + pg.Ident(c.Collation)
			}
			return s
		}
		var up, down []string
		if fc.Default != nil {
			up = append(up, alter+col+"DROP DEFAULT")
			down = append(down, alter+col+"DROP DEFAULT")
		}
		up = append(up, alter+col+"TYPE "+typ(tc)+" USING CAST("+pg.Ident(tc.Name)+" AS "+tc.Type+")")
		down = append(down, alter+col+"TYPE "+typ(fc)+" USING CAST("+pg.Ident(tc.Name)+" AS "+fc.Type+")")
		if fc.Default != nil {
			down = append(down, alter+col+"SET DEFAULT "+*fc.Default)
		}
		out = append(out, sqlOp{what: what + " (type)", up: strings.Join(up, ";\n"), down: strings.Join(down, ";\n"),
			comment: "plain ALTER COLUMN TYPE outside the managed schema: it rewrites the table under an ACCESS EXCLUSIVE lock"})
	}
	if !eqPtr(fc.Default, tc.Default) || (fc.Type != tc.Type && fc.Default != nil) {
		set := func(d *string) string {
			if d == nil {
				return alter + col + "DROP DEFAULT"
			}
			return alter + col + "SET DEFAULT " + *d
		}
		out = append(out, sqlOp{what: what + " (default)", up: set(tc.Default), down: set(fc.Default)})
	}
	if fc.Nullable != tc.Nullable {
		nn := func(nullable bool) string {
			if nullable {
				return alter + col + "DROP NOT NULL"
			}
			return alter + col + "SET NOT NULL"
		}
		out = append(out, sqlOp{what: what + " (nullable)", up: nn(tc.Nullable), down: nn(fc.Nullable)})
	}
	if !eqPtr(fc.Comment, tc.Comment) {
		target := strings.TrimPrefix(alter, "ALTER TABLE ")
		target = strings.TrimSuffix(target, " ") + "." + pg.Ident(tc.Name)
		out = append(out, sqlOp{what: what + " (comment)", up: "COMMENT ON COLUMN " + target + " IS " + literalOrNull(tc.Comment), down: "COMMENT ON COLUMN " + target + " IS " + literalOrNull(fc.Comment)})
	}
	return out
}

// commentsDDL comments a new table and its columns.
func commentsDDL(table string, _ *schema.Table, t *schema.Table) []string {
	var out []string
	if t.Comment != nil {
		out = append(out, "COMMENT ON TABLE "+table+" IS "+pg.Literal(*t.Comment))
	}
	for _, c := range t.Columns {
		if c.Comment != nil {
			out = append(out, "COMMENT ON COLUMN "+table+"."+pg.Ident(c.Name)+" IS "+pg.Literal(*c.Comment))
		}
	}
	return out
}

func literalOrNull(s *string) string {
	if s == nil {
		return "NULL"
	}
	return pg.Literal(*s)
}
