package operations

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
)

// UpdateRows (ext, beyond pgroll) is a data migration: it sets columns of
// the rows of a table that already exist to expressions over the row, in
// batches by key, run by the backfill engine. The new values land in the
// table's own columns, which both versions read: it is a change of data,
// not of shape, and there is no old copy to go back to. Down, when given,
// computes the old values back at rollback, also in batches; without it
// the operation is irreversible once a batch has committed.
//
// Expressions name the table's columns as the new version sees them at this
// point of the migration (after the operations before it). The table may
// not be one that another operation of the migration rewrites (a column
// with sync triggers, or a generated column filled by a backfill): the
// backfill turns the sync triggers' update work off, and which of the two
// copies of a column the expressions mean would be unclear.
type UpdateRows struct {
	Table string            `yaml:"table"`
	Set   map[string]string `yaml:"set"`
	Where string            `yaml:"where"`
	Down  map[string]string `yaml:"down"`
	// DownWhere selects the rows Down is applied to at rollback. It is
	// required when both Where and Down are given: after Set, the rows
	// Where chose may no longer match it, so online does not guess.
	DownWhere string `yaml:"down_where"`
}

var _ Operation = (*UpdateRows)(nil)

// DataMigration marks a Backfill that is an update_rows: the user's
// assignments rather than a copy into a hidden column.
type DataMigration struct {
	// Down, empty when the operation gave none, sets the columns back at
	// rollback; over the physical columns, as Backfill.Set.
	Down      []Assignment `json:"down,omitempty"`
	DownWhere string       `json:"down_where,omitempty"`
	// NewColumns is set when every column it sets is one this migration
	// adds: rollback drops them, so there is nothing to compute back.
	NewColumns bool `json:"new_columns,omitempty"`
}

// Reversible reports whether a rollback leaves the rows as they were:
// through Down, or because the columns set go with the rollback.
func (d *DataMigration) Reversible() bool { return len(d.Down) > 0 || d.NewColumns }

// pendingData is an update_rows compiled so far, checked against the
// rewrites once every operation is known.
type pendingData struct {
	op    int
	table *schema.Table
}

func (op *UpdateRows) Compile(c *Compiler) error {
	t, err := c.Table("table", op.Table)
	if err != nil {
		return err
	}
	if len(op.Set) == 0 {
		return errField("set", "is required: a map of column name to the SQL expression it is set to")
	}
	if t.Created {
		return errField("table", "table %q is created by this migration and has no rows to update", t.Name)
	}
	ot := c.oldTable(t)
	if ot == nil {
		return errField("table", "table %q has no rows from before the migration to update", t.Name)
	}
	key := physicalKey(ot)
	if len(key) == 0 {
		return errField("table", "table %q has no primary key and no unique NOT NULL column: the data migration needs one to walk the table in batches", t.Name)
	}
	if op.Where != "" && len(op.Down) > 0 && strings.TrimSpace(op.DownWhere) == "" {
		return errField("down_where", "is required when both where and down are given: after set, the rows where chose may no longer match it; give the predicate that selects the rows down must change (\"true\" for every row)")
	}
	if op.DownWhere != "" && len(op.Down) == 0 {
		return errField("down_where", "is only meaningful with down")
	}
	set, err := c.dataAssignments(t, "set", op.Set, key)
	if err != nil {
		return err
	}
	// A column the old table lacks is one this migration adds; rollback
	// drops it with whatever was set in it.
	newCols := true
	for _, a := range set {
		newCols = newCols && ot.ColumnByPhysical(a.Column) == nil
	}
	if newCols && len(op.Down) > 0 {
		return errField("down", "every column set is added by this migration, and rollback drops it: there is nothing for down to compute back; remove down")
	}
	down, err := c.dataAssignments(t, "down", op.Down, key)
	if err != nil {
		return err
	}
	for _, f := range []struct{ field, expr string }{{"where", op.Where}, {"down_where", op.DownWhere}} {
		if err := c.checkDataColumns(t, f.field, f.expr); err != nil {
			return err
		}
	}
	bf := Backfill{Table: t.Physical, Set: set, Where: c.bindColumns(t, op.Where), Data: &DataMigration{Down: down, DownWhere: c.bindColumns(t, op.DownWhere), NewColumns: newCols}}
	for _, k := range key {
		bf.Key = append(bf.Key, KeyColumn{Name: k, Type: ot.ColumnByPhysical(k).Type})
	}
	for _, b := range leafBackfills(ot, bf) {
		b.Ops = []int{c.op}
		c.plan.Backfill = append(c.plan.Backfill, b)
	}
	c.data = append(c.data, pendingData{op: c.op, table: t})
	return nil
}

// dataAssignments checks a set or down map and turns it into assignments
// of physical columns, in column-name order (a map has none of its own).
func (c *Compiler) dataAssignments(t *schema.Table, field string, m map[string]string, key []string) ([]Assignment, error) {
	var out []Assignment
	for _, name := range slices.Sorted(maps.Keys(m)) {
		f := field + "." + name
		col, err := c.Column(f, t, name)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(m[name]) == "" {
			return nil, errField(f, "is empty: give the SQL expression the column is set to")
		}
		if slices.Contains(key, col.Physical) {
			return nil, errField(f, "column %q is part of the key the data migration walks the table by; changing it would move rows under the walk", name)
		}
		if col.Generated {
			return nil, errField(f, "column %q is a generated column: PostgreSQL computes its values", name)
		}
		if err := c.checkDataColumns(t, f, m[name]); err != nil {
			return nil, err
		}
		out = append(out, Assignment{Column: col.Physical, Expr: c.bindColumns(t, m[name])})
	}
	return out, nil
}

// checkDataColumns refuses an expression that names a column the table
// does not have in the new version at this point of the migration.
func (c *Compiler) checkDataColumns(t *schema.Table, field, expr string) error {
	if strings.TrimSpace(expr) == "" {
		return nil
	}
	names, ok := sqllex.UnqualifiedColumns(expr)
	if !ok {
		return nil // a subquery: PostgreSQL judges it at the first batch
	}
	for _, n := range names {
		if t.Column(n) != nil {
			continue
		}
		var cols []string
		for _, col := range t.Columns {
			cols = append(cols, col.Name)
		}
		return errField(field, "column %q does not exist in table %q (update_rows names the new version's columns as the operations before it left them; it may name: %s)", n, t.Name, strings.Join(cols, ", "))
	}
	return nil
}

// bindColumns makes expr, written over the new version's column names,
// read the physical columns: unchanged when every name it uses is its
// column's physical name, otherwise wrapped in a scalar subselect that
// binds each name to its physical column of the row being updated (the
// same binding the backfill of a rewrite uses), so that a renamed column
// or two columns that swapped names read the right data.
func (c *Compiler) bindColumns(t *schema.Table, expr string) string {
	if strings.TrimSpace(expr) == "" {
		return ""
	}
	names := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		names[i] = col.Name
	}
	used := exprColumns(expr, names)
	var binds []string
	renamed := false
	for _, n := range used {
		col := t.Column(n)
		binds = append(binds, fmt.Sprintf("%s AS %s", pg.Ident(col.Physical), pg.Ident(n)))
		renamed = renamed || col.Physical != n
	}
	if !renamed {
		return pg.Paren(expr)
	}
	return fmt.Sprintf("(SELECT %s FROM (SELECT %s) AS %s)", pg.Paren(expr), strings.Join(binds, ", "), pg.Ident("_online_in"))
}

// checkDataMigrations refuses an update_rows on a table that the same
// migration also rewrites. The backfill runs with the sync triggers' update
// work turned off, so a value it sets would not reach the other copy of a
// rewritten column (or of a column whose up reads it), and the walks of
// the two tasks would interleave with the triggers in ways no one can read
// off the file. Split the migration: change the data in one, the shape in
// the other.
func (c *Compiler) checkDataMigrations() error {
	for _, d := range c.data {
		for _, bf := range c.plan.Backfill {
			if bf.Data == nil && (bf.Table == d.table.Physical || bf.Parent == d.table.Physical) {
				return &Error{File: c.file, Op: d.op, Kind: "update_rows", Field: "table",
					Err: fmt.Errorf("table %q is also rewritten by another operation of this migration (a column with up/down, a type change or a generated column); put the data migration in a migration of its own, before or after", d.table.Name)}
			}
		}
	}
	return nil
}

func (op *UpdateRows) table() string { return op.Table }

func (op *UpdateRows) sqlFields() []sqlField {
	fs := []sqlField{{"where", op.Where, sqlcheck.Predicate}, {"down_where", op.DownWhere, sqlcheck.Predicate}}
	for _, name := range slices.Sorted(maps.Keys(op.Set)) {
		fs = append(fs, sqlField{"set." + name, op.Set[name], sqlcheck.Expr})
	}
	return append(fs, conversionsSQL(nil, op.Down)...)
}

// exprFields are evaluated in the migrated schema: the backfill runs them
// there, as the triggers do up and down.
func (op *UpdateRows) exprFields() []exprField {
	fs := []exprField{{field: "where", value: op.Where, boolean: true}, {field: "down_where", value: op.DownWhere, boolean: true}}
	for _, name := range slices.Sorted(maps.Keys(op.Set)) {
		fs = append(fs, exprField{field: "set." + name, value: op.Set[name], castColumn: name})
	}
	for _, name := range slices.Sorted(maps.Keys(op.Down)) {
		fs = append(fs, exprField{field: "down." + name, value: op.Down[name], castColumn: name})
	}
	for i := range fs {
		fs[i].inSchema = true
	}
	return fs
}

func (op *UpdateRows) invert(*schema.Schema) (map[string]any, string) {
	if len(op.Down) == 0 {
		return nil, "update_rows without down: the values it replaced are gone"
	}
	// The inverse sets down over the rows down_where selects, and
	// gives the original back as its own down.
	body := map[string]any{"table": op.Table, "set": op.Down, "down": op.Set}
	if op.DownWhere != "" {
		body["where"] = op.DownWhere
	}
	switch {
	case op.Where != "":
		body["down_where"] = op.Where
	case op.DownWhere != "":
		body["down_where"] = "true"
	}
	return op1("update_rows", body), ""
}
