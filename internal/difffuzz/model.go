// Package difffuzz generates random schemas and random migrations over them,
// each operation written twice: as a migration file in pgroll's vocabulary,
// and as the plain DDL and data statements PostgreSQL would run for the same
// change. Its test runs every generated migration through online and checks
// it against three oracles: the real pgroll on a second database, the plain
// DDL on a third, and the rows written through both versions.
//
// The generator keeps a small model of the schema as each operation leaves
// it, so a migration can chain operations the way pgroll's own test
// migrations do: rename a table, then rename one of its columns, then
// change that column's type; create a table, then constrain it.
//
// Every value the generator writes fits every constraint it can generate
// (keys and unique columns hold values distinct per row, numbers are
// positive, text is made of digits), so a difference between the oracles is
// never the data's fault.
package difffuzz

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/onlinepg/online/internal/pg"
)

// Column is a column of the model.
type Column struct {
	Name    string
	Type    string // int, bigint, text or varchar(200)
	NotNull bool
	Default string // SQL, "" for none
	Key     bool   // part of the primary key
	Unique  bool   // under a unique constraint or index: no up may collapse values
	FK      bool   // references another table: holds only the referenced keys
	// Shared: added by the migration with a default, which every existing
	// row then holds: no unique constraint or index can go over it.
	Shared bool
	// Up: added by the migration with an up, which fills it for rows
	// that come without it.
	Up bool
	// Orig is the column this one copies in the schema before the
	// migration (nil for one the migration adds).
	Orig *Column
}

func (c *Column) numeric() bool { return c.Type == "int" || c.Type == "integer" || c.Type == "bigint" }

// Table is a table of the model. Orig points to the table it was in the
// schema before the migration (nil for a table the migration creates).
type Table struct {
	Name    string
	Columns []*Column
	Orig    *Table
	// Referenced is true while a foreign key of another table points here.
	Referenced bool
	// Indexes and constraints of the table with the column each is on,
	// for the drop operations (and to forget those a drop_column takes).
	Indexes []Named
	Checks  []Named
	Uniques []Named
	// Created: by the migration being generated.
	Created bool
	// Partitioned by range of id (no foreign key points to it).
	Partitioned bool
}

// Column returns the column named n, or nil.
func (t *Table) Column(n string) *Column {
	for _, c := range t.Columns {
		if c.Name == n {
			return c
		}
	}
	return nil
}

// Key is the table's first key column.
func (t *Table) Key() *Column {
	for _, c := range t.Columns {
		if c.Key {
			return c
		}
	}
	return nil
}

// Named is an index or constraint over one column.
type Named struct {
	Name string
	Col  *Column
}

// Schema is the model: tables by name.
type Schema struct {
	Tables map[string]*Table
	seq    int // for fresh names
}

// Clone copies the model; each copied table's Orig is the table it copies.
func (s *Schema) Clone() *Schema {
	out := &Schema{Tables: map[string]*Table{}, seq: s.seq}
	for n, t := range s.Tables {
		nt := *t
		nt.Orig, nt.Created = t, false
		nt.Columns = nil
		copies := map[*Column]*Column{}
		for _, c := range t.Columns {
			cc := *c
			cc.Orig = c
			copies[c] = &cc
			nt.Columns = append(nt.Columns, &cc)
		}
		re := func(list []Named) []Named {
			var out []Named
			for _, n := range list {
				out = append(out, Named{n.Name, copies[n.Col]})
			}
			return out
		}
		nt.Indexes, nt.Checks, nt.Uniques = re(t.Indexes), re(t.Checks), re(t.Uniques)
		out.Tables[n] = &nt
	}
	return out
}

// TableNames are the tables' names, sorted.
func (s *Schema) TableNames() []string {
	var out []string
	for n := range s.Tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (s *Schema) fresh(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%d", prefix, s.seq)
}

// Rows is how many rows each base table holds.
const Rows = 3

// Value is the value the generator writes into column c of row k: distinct
// per row, positive, and for text, digits (so that it casts to a number
// and back).
func Value(c *Column, k int) string {
	if c.FK {
		// The referenced table holds keys 1..Rows.
		return fmt.Sprint(1 + k%Rows)
	}
	if c.numeric() {
		return fmt.Sprint(k)
	}
	return pg.Literal(fmt.Sprintf("1%d", k))
}

// Base generates the schema before the migration and the statements that
// build it with its rows.
func Base(r *rand.Rand) (*Schema, []string) {
	s := &Schema{Tables: map[string]*Table{}}
	var sql []string
	n := 1 + r.IntN(3)
	var first *Table
	for i := 0; i < n; i++ {
		t := &Table{Name: s.fresh("t")}
		t.Columns = append(t.Columns, &Column{Name: "id", Type: "int", NotNull: true, Key: true})
		composite := i > 0 && r.IntN(4) == 0
		// Partitioned, by range of id, in two partitions.
		t.Partitioned = i > 0 && r.IntN(5) == 0
		if composite {
			t.Columns = append(t.Columns, &Column{Name: "id2", Type: "int", NotNull: true, Key: true})
		}
		for j, m := 0, 1+r.IntN(4); j < m; j++ {
			c := &Column{Name: s.fresh("c")}
			c.Type = []string{"int", "text", "bigint", "varchar(200)"}[r.IntN(4)]
			c.NotNull = r.IntN(2) == 0
			if r.IntN(3) == 0 {
				if c.numeric() {
					c.Default = "7"
				} else {
					c.Default = "'17'"
				}
			}
			t.Columns = append(t.Columns, c)
		}
		var defs []string
		for _, c := range t.Columns {
			d := pg.Ident(c.Name) + " " + c.Type
			if c.NotNull && !c.Key {
				d += " NOT NULL"
			}
			if c.Default != "" {
				d += " DEFAULT " + c.Default
			}
			defs = append(defs, d)
		}
		var keys []string
		for _, c := range t.Columns {
			if c.Key {
				keys = append(keys, pg.Ident(c.Name))
			}
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
		if t.Partitioned {
			sql = append(sql, fmt.Sprintf("CREATE TABLE %s (%s) PARTITION BY RANGE (id)", pg.Ident(t.Name), strings.Join(defs, ", ")),
				fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (0) TO (1500)", pg.Ident(t.Name+"_a"), pg.Ident(t.Name)),
				fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (1500) TO (100000)", pg.Ident(t.Name+"_b"), pg.Ident(t.Name)))
		} else {
			sql = append(sql, fmt.Sprintf("CREATE TABLE %s (%s)", pg.Ident(t.Name), strings.Join(defs, ", ")))
		}
		// Some columns get a check, a unique constraint, an index.
		for _, c := range t.Columns[len(keys):] {
			kind := r.IntN(5)
			if kind == 1 && t.Partitioned {
				// A unique key of a partitioned table must hold its
				// partition key (PostgreSQL's rule).
				kind = 2
			}
			switch kind {
			case 0:
				name := t.Name + "_" + c.Name + "_chk"
				sql = append(sql, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s)", pg.Ident(t.Name), pg.Ident(name), checkExpr(c, c.Name)))
				t.Checks = append(t.Checks, Named{name, c})
			case 1:
				// Unique, sometimes deferrable or as an exclusion
				// constraint (hash, =): the same rows pass all three.
				name := t.Name + "_" + c.Name + "_key"
				def := fmt.Sprintf("UNIQUE (%s)", pg.Ident(c.Name))
				switch r.IntN(4) {
				case 0:
					def += " DEFERRABLE INITIALLY DEFERRED"
				case 1:
					if !t.Partitioned {
						name = t.Name + "_" + c.Name + "_excl"
						def = fmt.Sprintf("EXCLUDE USING hash (%s WITH =)", pg.Ident(c.Name))
					}
				}
				sql = append(sql, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", pg.Ident(t.Name), pg.Ident(name), def))
				t.Uniques = append(t.Uniques, Named{name, c})
				c.Unique = true
			case 2:
				name := t.Name + "_" + c.Name + "_idx"
				sql = append(sql, fmt.Sprintf("CREATE INDEX %s ON %s (%s)", pg.Ident(name), pg.Ident(t.Name), pg.Ident(c.Name)))
				t.Indexes = append(t.Indexes, Named{name, c})
			}
		}
		if first == nil {
			first = t
		} else if r.IntN(2) == 0 && !t.Partitioned {
			c := &Column{Name: s.fresh("ref"), Type: "int", FK: true}
			t.Columns = append(t.Columns, c)
			sql = append(sql, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s int REFERENCES %s (id)", pg.Ident(t.Name), pg.Ident(c.Name), pg.Ident(first.Name)))
			first.Referenced = true
		}
		s.Tables[t.Name] = t
	}
	for _, name := range s.TableNames() {
		t := s.Tables[name]
		for k := 1; k <= Rows; k++ {
			sql = append(sql, InsertSQL(t, k, k%2 == 0))
		}
	}
	return s, sql
}

// checkExpr is a check over column c, true for every value Value gives.
func checkExpr(c *Column, name string) string {
	if c.numeric() {
		return pg.Ident(name) + " > 0"
	}
	return "length(" + pg.Ident(name) + ") > 0"
}

// InsertSQL inserts row k into t as the model has it; with nulls, the
// nullable columns get NULL.
func InsertSQL(t *Table, k int, nulls bool) string {
	var cols, vals []string
	for _, c := range t.Columns {
		cols = append(cols, pg.Ident(c.Name))
		// A NULL written through the new version into a column whose old
		// version has a default (or that the migration adds with up)
		// arrives as that default converted (or as up's value): the
		// sync trigger cannot tell it from an old-version insert (the
		// README's known limits). The new version's writes leave those out.
		ambiguous := t.Orig != nil && (c.Orig != nil && c.Orig.Default != "" || c.Orig == nil && (c.Default != "" || c.Up))
		if nulls && !c.NotNull && !c.Key && !c.Unique && !ambiguous {
			vals = append(vals, "NULL")
		} else {
			vals = append(vals, Value(c, k))
		}
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", pg.Ident(t.Name), strings.Join(cols, ", "), strings.Join(vals, ", "))
}

// UpdateSQL sets every non-key column of row key to row k's values.
func UpdateSQL(t *Table, key, k int) string {
	var set []string
	for _, c := range t.Columns {
		if !c.Key && !c.FK {
			set = append(set, pg.Ident(c.Name)+" = "+Value(c, k))
		}
	}
	if len(set) == 0 {
		return ""
	}
	kc := t.Key()
	return fmt.Sprintf("UPDATE %s SET %s WHERE %s = %s", pg.Ident(t.Name), strings.Join(set, ", "), pg.Ident(kc.Name), Value(kc, key))
}
