package operations

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
)

// Step is one unit of work of a phase. Its statements run in one transaction,
// unless NoTx (CONCURRENTLY statements), when each runs on its own.
type Step struct {
	Op   int      `json:"op"` // 1-based position of the operation that made it; 0 for the engine
	Do   string   `json:"do"` // what it does, for people
	SQL  []string `json:"sql"`
	Undo []string `json:"undo,omitempty"` // idempotent statements that undo it, run on rollback
	// Lock names the strongest table lock the step takes, for plan output.
	Lock string `json:"lock,omitempty"`
	NoTx bool   `json:"no_tx,omitempty"`
	// After holds, for a contract step, what PostgreSQL cannot run inside
	// the contract's transaction (DROP INDEX CONCURRENTLY): it runs once
	// that transaction has committed, and is idempotent. UndoAfter is the
	// same for Undo in the rollback's transaction. A step of an older plan
	// that has neither runs all of its NoTx statements after the commit.
	After     []string `json:"after,omitempty"`
	UndoAfter []string `json:"undo_after,omitempty"`
	// Irreversible says why rollback cannot undo this step (a sql
	// operation without down); rollback leaves what it did in place.
	Irreversible string `json:"irreversible,omitempty"`
}

// DropIndexLater returns the two halves of dropping index name of schema
// without blocking, for a transaction that must stay atomic: inTx renames
// the index out of the way (SHARE UPDATE EXCLUSIVE, instant; nothing can
// use or collide with its name afterwards), after drops it CONCURRENTLY
// once the transaction committed. salt tells apart the tombstones of
// different migrations.
func DropIndexLater(schema, name, salt string) (inTx, after string) {
	sum := sha256.Sum256([]byte(schema + "\x00" + name + "\x00" + salt))
	tomb := "_online_drop_" + hex.EncodeToString(sum[:])[:20]
	return fmt.Sprintf("ALTER INDEX IF EXISTS %s RENAME TO %s", pg.Ident(schema, name), pg.Ident(tomb)),
		"DROP INDEX CONCURRENTLY IF EXISTS " + pg.Ident(schema, tomb)
}

// KeyColumn is a column of the key a backfill walks.
type KeyColumn struct {
	Name string `json:"name"` // physical
	Type string `json:"type"`
}

// Assignment sets a physical column to an expression over physical columns.
type Assignment struct {
	Column string `json:"column"`
	Expr   string `json:"expr"`
}

// Backfill rewrites every pre-existing row of one table, or of one leaf
// partition of a partitioned table.
type Backfill struct {
	Ops   []int        `json:"ops"`
	Table string       `json:"table"` // physical
	Key   []KeyColumn  `json:"key"`
	Set   []Assignment `json:"set"`
	Where string       `json:"where,omitempty"`
	// Schema is the schema of Table when it is not the plan's: a leaf
	// partition may live elsewhere.
	Schema string `json:"schema,omitempty"`
	// Parent is set when Table is a leaf partition: the physical name of
	// the partitioned table (in the plan's schema) the migration changes.
	Parent string `json:"parent,omitempty"`
	// Insert, when set, makes the backfill insert into another table
	// instead of updating this one (data moved to a new table): each
	// batch inserts one row per walked row that Where keeps.
	Insert *Insert `json:"insert,omitempty"`
	// Data is set for a data migration (update_rows): Set and Where are
	// the user's, and the rows it changes are the ones both versions read.
	Data *DataMigration `json:"data,omitempty"`
}

// Insert is the target of a backfill that fills another table: Columns of
// table Into (in the plan's schema) get Exprs, over the walked row.
type Insert struct {
	Into    string   `json:"into"`
	Columns []string `json:"columns"`
	Exprs   []string `json:"exprs"`
}

// Qualified is the backfilled table's schema-qualified, quoted name.
func (b Backfill) Qualified(planSchema string) string {
	if b.Schema != "" {
		return pg.Ident(b.Schema, b.Table)
	}
	return pg.Ident(planSchema, b.Table)
}

// ViewColumn is one column of a version view.
type ViewColumn struct {
	Name     string  `json:"name"`     // visible
	Physical string  `json:"physical"` // column of the table
	Default  *string `json:"default,omitempty"`
}

// View serves one table in a version schema.
type View struct {
	Name    string       `json:"name"`
	Table   string       `json:"table"` // physical table
	Columns []ViewColumn `json:"columns"`
}

// Plan is a compiled migration.
type Plan struct {
	Name          string `json:"name"`
	Schema        string `json:"schema"`
	VersionSchema string `json:"version_schema"`
	// Parent is the version schema the previous migration published; the
	// old version. Empty when the old version is the tables themselves.
	Parent   string     `json:"parent,omitempty"`
	Expand   []Step     `json:"expand"`
	Backfill []Backfill `json:"backfill,omitempty"`
	// Finish runs after the backfill and before publishing: constraints
	// and indexes over the rewritten columns, validated without blocking.
	Finish []Step `json:"finish,omitempty"`
	// Views are those of the new version schema. For a migration of raw SQL
	// (RawSQL), they are read from the catalog after expand instead.
	Views    []View `json:"views"`
	RawSQL   bool   `json:"raw_sql,omitempty"`
	Contract []Step `json:"contract"`
}

// PublishSQL returns the statements that create the version schema and its
// views. securityInvoker makes the views check privileges and row-level
// security as the querying role (PostgreSQL 15 and later).
func (p *Plan) PublishSQL(securityInvoker bool) []string {
	return PublishViews(p.Schema, p.VersionSchema, p.Views, securityInvoker)
}

// PublishViews returns the statements creating version schema vs with views.
func PublishViews(schema, vs string, views []View, securityInvoker bool) []string {
	stmts := []string{"CREATE SCHEMA " + pg.Ident(vs)}
	opts := ""
	if securityInvoker {
		opts = " WITH (security_invoker = true)"
	}
	for _, v := range views {
		cols := make([]string, len(v.Columns))
		for i, c := range v.Columns {
			if c.Physical == c.Name {
				cols[i] = pg.Ident(c.Physical)
			} else {
				cols[i] = pg.Ident(c.Physical) + " AS " + pg.Ident(c.Name)
			}
		}
		sel := strings.Join(cols, ", ")
		if len(cols) == 0 {
			sel = "" // a table with no columns left still gets a view
		}
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s%s AS SELECT %s FROM %s",
			pg.Ident(vs, v.Name), opts, sel, pg.Ident(schema, v.Table)))
		for _, c := range v.Columns {
			if c.Default != nil {
				stmts = append(stmts, fmt.Sprintf("ALTER VIEW %s ALTER COLUMN %s SET DEFAULT %s",
					pg.Ident(vs, v.Name), pg.Ident(c.Name), *c.Default))
			}
		}
	}
	return stmts
}

// DropVersionSchemaSQL is the statement that stands for dropping version
// schema vs in a plan. It has no CASCADE: the phase runner drops online's
// views first, and an object anybody else made in the schema or on its
// views makes the drop fail rather than vanish (phases/dependents.go).
func DropVersionSchemaSQL(vs string) string {
	return "DROP SCHEMA IF EXISTS " + pg.Ident(vs)
}

// IrreversibleData lists the data migrations (update_rows) that rollback
// cannot undo: those without down.
func (p *Plan) IrreversibleData() []Backfill {
	var out []Backfill
	for _, bf := range p.Backfill {
		if bf.Data != nil && !bf.Data.Reversible() {
			out = append(out, bf)
		}
	}
	return out
}

// String renders the plan as annotated SQL, phase by phase.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- migration %s: new version schema %s", p.Name, p.VersionSchema)
	if p.Parent != "" {
		fmt.Fprintf(&b, " (old version: %s)", p.Parent)
	} else {
		fmt.Fprintf(&b, " (old version: the tables of %s)", p.Schema)
	}
	b.WriteString("\n")
	writeSteps := func(title string, steps []Step) {
		fmt.Fprintf(&b, "\n-- == %s ==\n", title)
		if len(steps) == 0 {
			b.WriteString("-- (nothing)\n")
		}
		for _, s := range steps {
			fmt.Fprintf(&b, "-- %s", s.Do)
			if s.Lock != "" {
				fmt.Fprintf(&b, " [lock: %s]", s.Lock)
			}
			if s.NoTx {
				b.WriteString(" [outside a transaction]")
			}
			b.WriteString("\n")
			for _, q := range s.SQL {
				b.WriteString(q)
				b.WriteString(";\n")
			}
			if len(s.After) > 0 {
				b.WriteString("-- after the transaction commits:\n")
				for _, q := range s.After {
					b.WriteString(q)
					b.WriteString(";\n")
				}
			}
			if s.Irreversible != "" {
				fmt.Fprintf(&b, "-- IRREVERSIBLE: %s\n", s.Irreversible)
			}
		}
	}
	writeSteps("expand", p.Expand)
	fmt.Fprintf(&b, "\n-- == backfill ==\n")
	if len(p.Backfill) == 0 {
		b.WriteString("-- (nothing: no row is rewritten)\n")
	}
	for _, bf := range p.Backfill {
		var sets []string
		for _, a := range bf.Set {
			sets = append(sets, pg.Ident(a.Column)+" = "+a.Expr)
		}
		keys := make([]string, len(bf.Key))
		for i, k := range bf.Key {
			keys[i] = k.Name
		}
		if bf.Data != nil {
			fmt.Fprintf(&b, "-- data migration (update_rows, operation %d): the new values are in the table's own columns, which both versions read\n", bf.Ops[0])
		}
		if in := bf.Insert; in != nil {
			fmt.Fprintf(&b, "-- in batches by (%s), each its own transaction:\nINSERT INTO %s (%s) SELECT %s FROM %s", pg.Idents(keys), pg.Ident(p.Schema, in.Into), pg.Idents(in.Columns), strings.Join(in.Exprs, ", "), bf.Qualified(p.Schema))
		} else {
			fmt.Fprintf(&b, "-- in batches by (%s), each its own transaction:\nUPDATE %s SET %s", pg.Idents(keys), bf.Qualified(p.Schema), strings.Join(sets, ", "))
		}
		if bf.Where != "" {
			fmt.Fprintf(&b, " WHERE %s", bf.Where)
		}
		b.WriteString(";\n")
	}
	writeSteps("finish (after backfill)", p.Finish)
	fmt.Fprintf(&b, "\n-- == publish ==\n")
	if p.RawSQL {
		b.WriteString("-- views are generated from the catalog after the SQL has run\n")
	} else {
		for _, q := range p.PublishSQL(false) {
			b.WriteString(q)
			b.WriteString(";\n")
		}
	}
	writeSteps("contract (online complete), one transaction", p.Contract)
	var undo []Step
	for _, steps := range [][]Step{p.Expand, p.Finish} {
		undo = append(undo, steps...)
	}
	b.WriteString("\n-- == rollback (online rollback): the data migrations' down first, then one transaction ==\n")
	said := map[int]bool{} // one line per operation, not per leaf partition
	for _, bf := range p.Backfill {
		d := bf.Data
		switch {
		case d == nil, d.NewColumns:
		case !d.Reversible() && said[bf.Ops[0]]:
		case d.Reversible():
			keys := make([]string, len(bf.Key))
			for i, k := range bf.Key {
				keys[i] = k.Name
			}
			var sets []string
			for _, a := range d.Down {
				sets = append(sets, pg.Ident(a.Column)+" = "+a.Expr)
			}
			fmt.Fprintf(&b, "-- first, before anything else, operation %d's down, in batches by (%s), each its own transaction:\nUPDATE %s SET %s", bf.Ops[0], pg.Idents(keys), bf.Qualified(p.Schema), strings.Join(sets, ", "))
			if d.DownWhere != "" {
				fmt.Fprintf(&b, " WHERE %s", d.DownWhere)
			}
			b.WriteString(";\n")
		default:
			said[bf.Ops[0]] = true
			fmt.Fprintf(&b, "-- IRREVERSIBLE: operation %d (update_rows on %s) has no down: once one of its batches has committed, rollback refuses; online rollback --force rolls the rest back and keeps the values it set\n", bf.Ops[0], bf.Qualified(p.Schema))
		}
	}
	fmt.Fprintf(&b, "%s; -- after its views one by one; refused when anything else is in it or uses its views, unless --drop-dependents\n", DropVersionSchemaSQL(p.VersionSchema))
	var later []string
	for i := len(undo) - 1; i >= 0; i-- {
		if undo[i].Irreversible != "" {
			fmt.Fprintf(&b, "-- left in place: %s\n", undo[i].Irreversible)
		}
		if undo[i].NoTx && len(undo[i].UndoAfter) == 0 {
			later = append(later, undo[i].Undo...)
			continue
		}
		for _, q := range undo[i].Undo {
			b.WriteString(q)
			b.WriteString(";\n")
		}
		later = append(later, undo[i].UndoAfter...)
	}
	if len(later) > 0 {
		b.WriteString("-- after the transaction commits:\n")
		for _, q := range later {
			b.WriteString(q)
			b.WriteString(";\n")
		}
	}
	return b.String()
}
