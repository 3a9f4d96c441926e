package difffuzz

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/onlinepg/online/internal/pg"
)

// Op is one generated operation: its entry in the migration file and the
// plain statements that make the same change.
type Op struct {
	Kind  string
	File  map[string]any
	Plain []string
}

// Migration is a generated migration over a base schema.
type Migration struct {
	Seed uint64
	Base []string // the base schema's statements and rows
	Old  *Schema  // the schema before the migration
	New  *Schema  // after it
	Ops  []Op
}

// File is the migration file (JSON, which pgroll and online both read).
func (m *Migration) File() []byte {
	ops := make([]any, len(m.Ops))
	for i, o := range m.Ops {
		ops[i] = o.File
	}
	b, err := json.MarshalIndent(map[string]any{"operations": ops}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// Plain is every plain statement of the migration, in order.
func (m *Migration) Plain() []string {
	var out []string
	for _, o := range m.Ops {
		out = append(out, o.Plain...)
	}
	return out
}

// Kinds lists the operation kinds of the migration, in order.
func (m *Migration) Kinds() string {
	var k []string
	for _, o := range m.Ops {
		k = append(k, o.Kind)
	}
	return strings.Join(k, ", ")
}

// Generate makes the migration of seed: a base schema and 1 to 6
// operations over it, each applied to the model before the next is drawn.
func Generate(seed uint64) *Migration {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	old, base := Base(r)
	m := &Migration{Seed: seed, Base: base, Old: old, New: old.Clone()}
	n := 1 + r.IntN(6)
	for tries := 0; len(m.Ops) < n && tries < 100; tries++ {
		g := generators[r.IntN(len(generators))]
		if op, ok := g(r, m.New); ok {
			m.Ops = append(m.Ops, op)
		}
	}
	return m
}

type generator func(r *rand.Rand, s *Schema) (Op, bool)

var generators = []generator{
	genAddColumn, genAddColumn, genDropColumn, genRenameColumn, genRenameColumn, genRenameTable,
	genAlterType, genAlterType, genSetNotNull, genDropNotNull, genSetDefault, genComment,
	genAlterUnique, genAlterCheck, genCreateIndex, genDropIndex, genCreateTable, genDropTable,
	genCreateCheck, genCreateUnique, genRenameConstraint, genDropConstraint, genAlterName,
}

// aConstraint picks a table with a check or unique constraint, the list
// that holds it and its place there; false when the pick finds none.
func aConstraint(r *rand.Rand, s *Schema) (*Table, *[]Named, int, bool) {
	t := aTable(r, s)
	if t == nil || len(t.Checks)+len(t.Uniques) == 0 {
		return nil, nil, 0, false
	}
	list := &t.Checks
	if len(t.Checks) == 0 || len(t.Uniques) > 0 && r.IntN(2) == 0 {
		list = &t.Uniques
	}
	return t, list, r.IntN(len(*list)), true
}

func genRenameConstraint(r *rand.Rand, s *Schema) (Op, bool) {
	t, list, i, ok := aConstraint(r, s)
	if !ok {
		return Op{}, false
	}
	from := (*list)[i].Name
	to := s.fresh("rc")
	(*list)[i].Name = to
	return Op{Kind: "rename_constraint", File: map[string]any{"rename_constraint": map[string]any{"table": t.Name, "from": from, "to": to}},
		Plain: []string{fmt.Sprintf("%s RENAME CONSTRAINT %s TO %s", alterTable(t), pg.Ident(from), pg.Ident(to))}}, true
}

func genDropConstraint(r *rand.Rand, s *Schema) (Op, bool) {
	t, list, i, ok := aConstraint(r, s)
	if !ok {
		return Op{}, false
	}
	n := (*list)[i]
	*list = append((*list)[:i:i], (*list)[i+1:]...)
	if list == &t.Uniques {
		n.Col.Unique = false
	}
	id := pg.Ident(n.Col.Name)
	return Op{Kind: "drop_constraint", File: map[string]any{"drop_constraint": map[string]any{"table": t.Name, "name": n.Name, "up": id, "down": id}},
		Plain: []string{fmt.Sprintf("%s DROP CONSTRAINT %s", alterTable(t), pg.Ident(n.Name))}}, true
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// aTable picks a table of the model, or nil.
func aTable(r *rand.Rand, s *Schema) *Table {
	names := s.TableNames()
	if len(names) == 0 {
		return nil
	}
	return s.Tables[pick(r, names)]
}

// aColumn picks a column of t that is not a key or foreign key column and
// for which ok holds, or nil.
func aColumn(r *rand.Rand, t *Table, ok func(*Column) bool) *Column {
	var cs []*Column
	for _, c := range t.Columns {
		if !c.Key && !c.FK && (ok == nil || ok(c)) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return pick(r, cs)
}

func alterTable(t *Table) string { return "ALTER TABLE " + pg.Ident(t.Name) }

// target picks a table and one of its columns (not a key or foreign key
// column) for which ok holds; false when the pick finds none.
func target(r *rand.Rand, s *Schema, ok func(*Table, *Column) bool) (*Table, *Column, bool) {
	t := aTable(r, s)
	if t == nil {
		return nil, nil, false
	}
	c := aColumn(r, t, func(c *Column) bool { return ok == nil || ok(t, c) })
	return t, c, c != nil
}

// newUnique picks a column a unique constraint can go over (not on a
// partitioned table, whose unique keys must hold the partition key; not
// over a column whose rows share a value) and names the constraint.
func newUnique(r *rand.Rand, s *Schema, prefix string) (*Table, *Column, string, bool) {
	t, c, ok := target(r, s, func(t *Table, c *Column) bool { return !t.Partitioned && !c.Unique && !c.Shared })
	if !ok {
		return nil, nil, "", false
	}
	c.Unique = true
	name := s.fresh(prefix)
	t.Uniques = append(t.Uniques, Named{name, c})
	return t, c, name, true
}

// newCheck picks a column, names a check over it and gives its expression.
func newCheck(r *rand.Rand, s *Schema, prefix string) (*Table, *Column, string, string, bool) {
	t, c, ok := target(r, s, nil)
	if !ok {
		return nil, nil, "", "", false
	}
	name := s.fresh(prefix)
	t.Checks = append(t.Checks, Named{name, c})
	return t, c, name, checkExpr(c, c.Name), true
}

func genAddColumn(r *rand.Rand, s *Schema) (Op, bool) {
	t := aTable(r, s)
	if t == nil {
		return Op{}, false
	}
	c := &Column{Name: s.fresh("n"), Type: pick(r, []string{"int", "text"})}
	col := map[string]any{"name": c.Name, "type": c.Type}
	switch r.IntN(3) {
	case 0:
		col["nullable"] = true
	case 1:
		c.NotNull, c.Shared = true, true
		c.Default = "5"
		if !c.numeric() {
			c.Default = "'15'"
		}
		col["default"] = c.Default
	case 2:
		if t.Created {
			col["nullable"] = true
			break
		}
		// Filled from the key by up: NOT NULL, no default.
		c.NotNull, c.Up = true, true
		key := t.Key()
		up := pg.Ident(key.Name)
		if !c.numeric() {
			up = "CAST(" + up + " AS text)"
		}
		t.Columns = append(t.Columns, c)
		return Op{Kind: "add_column(up)", File: map[string]any{"add_column": map[string]any{"table": t.Name, "column": col, "up": up}},
			Plain: []string{
				fmt.Sprintf("%s ADD COLUMN %s %s", alterTable(t), pg.Ident(c.Name), c.Type),
				fmt.Sprintf("UPDATE %s SET %s = %s", pg.Ident(t.Name), pg.Ident(c.Name), up),
				fmt.Sprintf("%s ALTER COLUMN %s SET NOT NULL", alterTable(t), pg.Ident(c.Name)),
			}}, true
	}
	def := pg.Ident(c.Name) + " " + c.Type
	if c.Default != "" {
		def += " DEFAULT " + c.Default
	}
	if c.NotNull {
		def += " NOT NULL"
	}
	t.Columns = append(t.Columns, c)
	return Op{Kind: "add_column", File: map[string]any{"add_column": map[string]any{"table": t.Name, "column": col}},
		Plain: []string{fmt.Sprintf("%s ADD COLUMN %s", alterTable(t), def)}}, true
}

func genDropColumn(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, ok := target(r, s, nil)
	if !ok {
		return Op{}, false
	}
	t.Columns = removeCol(t.Columns, c)
	// Constraints and indexes over the column go with it.
	drop := func(list []Named) []Named {
		var out []Named
		for _, n := range list {
			if n.Col != c {
				out = append(out, n)
			}
		}
		return out
	}
	t.Checks, t.Uniques, t.Indexes = drop(t.Checks), drop(t.Uniques), drop(t.Indexes)
	file := map[string]any{"table": t.Name, "column": c.Name}
	phys := c
	if c.Orig != nil {
		phys = c.Orig
	}
	if phys.NotNull && phys.Default == "" && c.Default == "" && !t.Created {
		// The old version's inserts need a value for it.
		file["down"] = Value(c, 99)
	}
	return Op{Kind: "drop_column", File: map[string]any{"drop_column": file},
		Plain: []string{fmt.Sprintf("%s DROP COLUMN %s", alterTable(t), pg.Ident(c.Name))}}, true
}

func removeCol(cs []*Column, c *Column) []*Column {
	var out []*Column
	for _, x := range cs {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

// genAlterName renames a column through alter_column's name field, with a
// default in the same step.
func genAlterName(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, ok := target(r, s, nil)
	if !ok {
		return Op{}, false
	}
	from := c.Name
	c.Name = s.fresh("a")
	c.Default = "3"
	if !c.numeric() {
		c.Default = "'13'"
	}
	return Op{Kind: "alter_column(name, default)", File: map[string]any{"alter_column": map[string]any{"table": t.Name, "column": from, "name": c.Name, "default": c.Default}},
		Plain: []string{
			fmt.Sprintf("%s ALTER COLUMN %s SET DEFAULT %s", alterTable(t), pg.Ident(from), c.Default),
			fmt.Sprintf("%s RENAME COLUMN %s TO %s", alterTable(t), pg.Ident(from), pg.Ident(c.Name)),
		}}, true
}

func genRenameColumn(r *rand.Rand, s *Schema) (Op, bool) {
	t := aTable(r, s)
	if t == nil {
		return Op{}, false
	}
	var c *Column
	if r.IntN(4) == 0 {
		c = t.Key()
	} else {
		c = aColumn(r, t, nil)
	}
	if c == nil {
		return Op{}, false
	}
	from := c.Name
	c.Name = s.fresh("r")
	return Op{Kind: "rename_column", File: map[string]any{"rename_column": map[string]any{"table": t.Name, "from": from, "to": c.Name}},
		Plain: []string{fmt.Sprintf("%s RENAME COLUMN %s TO %s", alterTable(t), pg.Ident(from), pg.Ident(c.Name))}}, true
}

func genRenameTable(r *rand.Rand, s *Schema) (Op, bool) {
	t := aTable(r, s)
	if t == nil {
		return Op{}, false
	}
	from := t.Name
	delete(s.Tables, from)
	t.Name = s.fresh("tr")
	s.Tables[t.Name] = t
	return Op{Kind: "rename_table", File: map[string]any{"rename_table": map[string]any{"from": from, "to": t.Name}},
		Plain: []string{fmt.Sprintf("ALTER TABLE %s RENAME TO %s", pg.Ident(from), pg.Ident(t.Name))}}, true
}

// genAlterType widens a column's type: int to bigint, text to varchar(200)
// and back. Values, defaults and checks fit both types.
func genAlterType(r *rand.Rand, s *Schema) (Op, bool) {
	t := aTable(r, s)
	if t == nil {
		return Op{}, false
	}
	c := aColumn(r, t, func(c *Column) bool { return c.Type != "bigint" })
	if c == nil {
		return Op{}, false
	}
	to := map[string]string{"int": "bigint", "integer": "bigint", "text": "varchar(200)", "varchar(200)": "text"}[c.Type]
	c.Type = to
	name := pg.Ident(c.Name)
	return Op{Kind: "alter_column(type)", File: map[string]any{"alter_column": map[string]any{"table": t.Name, "column": c.Name, "type": to, "up": name, "down": name}},
		Plain: []string{fmt.Sprintf("%s ALTER COLUMN %s TYPE %s", alterTable(t), name, to)}}, true
}

// fill is an up that replaces NULL by a value distinct per row (from the
// key), so that a unique constraint over the column still holds.
func fill(t *Table, c *Column) string {
	key := pg.Ident(t.Key().Name)
	if c.numeric() {
		return fmt.Sprintf("COALESCE(%s, %s + 500)", pg.Ident(c.Name), key)
	}
	return fmt.Sprintf("COALESCE(%s, CAST(%s + 500 AS text))", pg.Ident(c.Name), key)
}

func genSetNotNull(r *rand.Rand, s *Schema) (Op, bool) {
	t := aTable(r, s)
	if t == nil {
		return Op{}, false
	}
	c := aColumn(r, t, func(c *Column) bool { return !c.NotNull })
	if c == nil {
		return Op{}, false
	}
	c.NotNull = true
	up := fill(t, c)
	return Op{Kind: "alter_column(not null)", File: map[string]any{"alter_column": map[string]any{"table": t.Name, "column": c.Name, "nullable": false, "up": up, "down": pg.Ident(c.Name)}},
		Plain: []string{
			fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s IS NULL", pg.Ident(t.Name), pg.Ident(c.Name), up, pg.Ident(c.Name)),
			fmt.Sprintf("%s ALTER COLUMN %s SET NOT NULL", alterTable(t), pg.Ident(c.Name)),
		}}, true
}

func genDropNotNull(r *rand.Rand, s *Schema) (Op, bool) {
	t := aTable(r, s)
	if t == nil {
		return Op{}, false
	}
	c := aColumn(r, t, func(c *Column) bool { return c.NotNull })
	if c == nil {
		return Op{}, false
	}
	c.NotNull = false
	name := pg.Ident(c.Name)
	// The old version's column stays NOT NULL: down gives it a value.
	down := fmt.Sprintf("COALESCE(%s, %s)", name, Value(c, 77))
	return Op{Kind: "alter_column(nullable)", File: map[string]any{"alter_column": map[string]any{"table": t.Name, "column": c.Name, "nullable": true, "up": name, "down": down}},
		Plain: []string{fmt.Sprintf("%s ALTER COLUMN %s DROP NOT NULL", alterTable(t), name)}}, true
}

func genSetDefault(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, ok := target(r, s, nil)
	if !ok {
		return Op{}, false
	}
	c.Default = "9"
	if !c.numeric() {
		c.Default = "'19'"
	}
	return Op{Kind: "alter_column(default)", File: map[string]any{"alter_column": map[string]any{"table": t.Name, "column": c.Name, "default": c.Default}},
		Plain: []string{fmt.Sprintf("%s ALTER COLUMN %s SET DEFAULT %s", alterTable(t), pg.Ident(c.Name), c.Default)}}, true
}

func genComment(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, ok := target(r, s, nil)
	if !ok {
		return Op{}, false
	}
	text := "note " + s.fresh("")
	return Op{Kind: "alter_column(comment)", File: map[string]any{"alter_column": map[string]any{"table": t.Name, "column": c.Name, "comment": text}},
		Plain: []string{fmt.Sprintf("COMMENT ON COLUMN %s.%s IS %s", pg.Ident(t.Name), pg.Ident(c.Name), pg.Literal(text))}}, true
}

func genAlterUnique(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, name, ok := newUnique(r, s, "uq")
	if !ok {
		return Op{}, false
	}
	id := pg.Ident(c.Name)
	return Op{Kind: "alter_column(unique)", File: map[string]any{"alter_column": map[string]any{"table": t.Name, "column": c.Name, "unique": map[string]any{"name": name}, "up": id, "down": id}},
		Plain: []string{fmt.Sprintf("%s ADD CONSTRAINT %s UNIQUE (%s)", alterTable(t), pg.Ident(name), id)}}, true
}

func genAlterCheck(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, name, expr, ok := newCheck(r, s, "ck")
	if !ok {
		return Op{}, false
	}
	id := pg.Ident(c.Name)
	return Op{Kind: "alter_column(check)", File: map[string]any{"alter_column": map[string]any{"table": t.Name, "column": c.Name, "check": map[string]any{"name": name, "constraint": expr}, "up": id, "down": id}},
		Plain: []string{fmt.Sprintf("%s ADD CONSTRAINT %s CHECK (%s)", alterTable(t), pg.Ident(name), expr)}}, true
}

func genCreateCheck(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, name, expr, ok := newCheck(r, s, "cc")
	if !ok {
		return Op{}, false
	}
	id := pg.Ident(c.Name)
	return Op{Kind: "create_constraint(check)", File: map[string]any{"create_constraint": map[string]any{"table": t.Name, "name": name, "type": "check", "columns": []string{c.Name}, "check": expr, "up": map[string]string{c.Name: id}, "down": map[string]string{c.Name: id}}},
		Plain: []string{fmt.Sprintf("%s ADD CONSTRAINT %s CHECK (%s)", alterTable(t), pg.Ident(name), expr)}}, true
}

func genCreateUnique(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, name, ok := newUnique(r, s, "cu")
	if !ok {
		return Op{}, false
	}
	id := pg.Ident(c.Name)
	return Op{Kind: "create_constraint(unique)", File: map[string]any{"create_constraint": map[string]any{"table": t.Name, "name": name, "type": "unique", "columns": []string{c.Name}, "up": map[string]string{c.Name: id}, "down": map[string]string{c.Name: id}}},
		Plain: []string{fmt.Sprintf("%s ADD CONSTRAINT %s UNIQUE (%s)", alterTable(t), pg.Ident(name), id)}}, true
}

func genCreateIndex(r *rand.Rand, s *Schema) (Op, bool) {
	t, c, ok := target(r, s, nil)
	if !ok {
		return Op{}, false
	}
	name := s.fresh("ix")
	t.Indexes = append(t.Indexes, Named{name, c})
	file := map[string]any{"table": t.Name, "name": name, "columns": []any{map[string]any{"column": c.Name}}}
	cols, create, tail := pg.Ident(c.Name), "CREATE INDEX", ""
	switch r.IntN(4) {
	case 0:
		// Over two columns, the second descending.
		if d := aColumn(r, t, func(d *Column) bool { return d != c }); d != nil {
			file["columns"] = []any{map[string]any{"column": c.Name}, map[string]any{"column": d.Name, "sort": "DESC"}}
			cols += ", " + pg.Ident(d.Name) + " DESC"
		}
	case 1:
		// Partial.
		file["predicate"] = pg.Ident(c.Name) + " IS NOT NULL"
		tail = " WHERE " + pg.Ident(c.Name) + " IS NOT NULL"
	case 2:
		// Unique: the values are distinct per row. Not on a partitioned
		// table, whose unique indexes must hold the partition key.
		if !t.Partitioned && !c.Shared {
			file["unique"] = true
			create = "CREATE UNIQUE INDEX"
		}
	}
	return Op{Kind: "create_index", File: map[string]any{"create_index": file},
		Plain: []string{fmt.Sprintf("%s %s ON %s (%s)%s", create, pg.Ident(name), pg.Ident(t.Name), cols, tail)}}, true
}

func genDropIndex(r *rand.Rand, s *Schema) (Op, bool) {
	t := aTable(r, s)
	if t == nil || len(t.Indexes) == 0 {
		return Op{}, false
	}
	i := r.IntN(len(t.Indexes))
	name := t.Indexes[i].Name
	t.Indexes = append(t.Indexes[:i:i], t.Indexes[i+1:]...)
	return Op{Kind: "drop_index", File: map[string]any{"drop_index": map[string]any{"name": name}},
		Plain: []string{"DROP INDEX " + pg.Ident(name)}}, true
}

func genCreateTable(r *rand.Rand, s *Schema) (Op, bool) {
	t := &Table{Name: s.fresh("nt"), Created: true}
	t.Columns = []*Column{{Name: "id", Type: "int", NotNull: true, Key: true}}
	cols := []any{map[string]any{"name": "id", "type": "int", "pk": true}}
	defs := []string{"id int PRIMARY KEY"}
	for j, n := 0, 1+r.IntN(3); j < n; j++ {
		c := &Column{Name: s.fresh("v"), Type: pick(r, []string{"int", "text"}), NotNull: r.IntN(2) == 0}
		t.Columns = append(t.Columns, c)
		col := map[string]any{"name": c.Name, "type": c.Type}
		d := pg.Ident(c.Name) + " " + c.Type
		if c.NotNull {
			d += " NOT NULL"
		} else {
			col["nullable"] = true
		}
		cols = append(cols, col)
		defs = append(defs, d)
	}
	s.Tables[t.Name] = t
	return Op{Kind: "create_table", File: map[string]any{"create_table": map[string]any{"name": t.Name, "columns": cols}},
		Plain: []string{fmt.Sprintf("CREATE TABLE %s (%s)", pg.Ident(t.Name), strings.Join(defs, ", "))}}, true
}

func genDropTable(r *rand.Rand, s *Schema) (Op, bool) {
	t := aTable(r, s)
	if t == nil || t.Referenced {
		return Op{}, false
	}
	delete(s.Tables, t.Name)
	return Op{Kind: "drop_table", File: map[string]any{"drop_table": map[string]any{"name": t.Name}},
		Plain: []string{"DROP TABLE " + pg.Ident(t.Name)}}, true
}
