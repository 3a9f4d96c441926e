package operations

import (
	"errors"
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
)

// A stored generated column added to a table that has rows cannot be added
// as one: PostgreSQL's ADD COLUMN ... GENERATED ALWAYS AS (...) STORED
// rewrites the whole table under an ACCESS EXCLUSIVE lock, and no later
// ALTER turns a plain column into a generated one (ALTER COLUMN ... SET
// EXPRESSION, PostgreSQL 17, only changes the expression of a column that is
// already generated, and rewrites the table too). So the column is added
// plain, which is instant, and made to behave like a generated one:
//
//   - a BEFORE INSERT OR UPDATE OF <inputs>, <column> trigger sets it to the
//     expression, installed in the same transaction as the column so that no
//     write ever sees the column without it;
//   - the batched backfill fills the rows that already exist;
//   - after the backfill, CHECK (column IS NOT DISTINCT FROM expression) is
//     added NOT VALID and validated without blocking writes, so from then on
//     the catalog itself guarantees every value;
//   - complete leaves all three in place: they are the column's definition.
//
// The trigger overwrites a value a write gives the column instead of
// refusing it, as a generated column would. A trigger cannot tell an INSERT
// that named the column from one that did not (an omitted column arrives
// NULL, and so does an explicit NULL), nor an UPDATE that set it to its
// current value from one that left it alone, so a refusal would only catch
// some of those writes; and while two versions of the application run side
// by side, a write the database can correct should not fail. What a
// generated column guarantees, that the stored value is the expression's,
// holds either way.

// genObjects names what maintains one trigger-maintained generated column.
type genObjects struct {
	schema   string // the migrated schema, where the function lives too
	table    string // quoted, schema-qualified physical table
	fn       string // quoted, schema-qualified trigger function
	trigger  string // quoted trigger name
	check    string // check constraint name (unquoted)
	notNull  string // check constraint proving NOT NULL; "" when nullable
	phys     string // the column's physical name until complete
	expr     string // the expression over visible names, as written
	physExpr string // the expression over physical names
	typ      string
	inputs   []*schema.Column // columns the expression reads
}

// genName is ShortName("_online_gen_" + suffix): short enough for
// PostgreSQL's 63-byte limit, and recognisable in \d output.
func genName(suffix string) string { return ShortName("_online_gen_" + suffix) }

// addGeneratedOnline plans add_column of a stored generated column on a
// table that already exists, as described at the top of this file.
func (c *Compiler) addGeneratedOnline(t *schema.Table, mc *schema.Column, col *Column, hidden bool) error {
	const field = "column.generated.expression"
	expr := col.Generated.Expression
	ot := c.oldTable(t)
	if ot == nil {
		return errField("table", "table %q has no old version", t.Name)
	}
	if len(ot.KeyColumns()) == 0 {
		return errField("table", "table %q has no primary key and no unique NOT NULL column: the backfill that fills the generated column for existing rows needs one to walk the table in batches", t.Name)
	}
	if len(exprColumns(expr, []string{col.Name})) > 0 {
		return errField(field, "the expression reads the column %q it defines", col.Name)
	}
	var names []string
	for _, other := range t.Columns {
		if other != mc {
			names = append(names, other.Name)
		}
	}
	g := &genObjects{
		schema: c.Opts.Schema,
		table:  c.Qualified(t.Physical),
		// The function stays with the table after complete, so it lives
		// in the table's schema, not in online's state schema: a dump
		// of the schema restores the column with what maintains it.
		fn: pg.Ident(c.Opts.Schema, genName(t.Physical+"_"+col.Name)),
		// Trigger and constraint names are per table.
		trigger: pg.Ident(genName(col.Name)),
		check:   genName(col.Name),
		phys:    mc.Physical,
		expr:    expr,
		typ:     col.Type,
	}
	rename := map[string]string{}
	for _, n := range exprColumns(expr, names) {
		in := t.Column(n)
		if in.Generated {
			// Generated columns are computed after every BEFORE trigger,
			// so the trigger would read the value from before the write.
			return errField(field, "the expression reads %q, a generated column; a generated column added to a table with rows is kept by a trigger, which cannot see another generated column's new value", n)
		}
		if in.Physical != in.Name || c.ColumnNow(t, in.Physical) != in.Physical {
			// The trigger function reads the row's columns by name; a
			// column renamed or swapped for a rewritten one at complete
			// would leave it reading a column that is gone.
			return errField(field, "the expression reads %q, which this migration renames or rewrites; add the generated column in a later migration", n)
		}
		g.inputs = append(g.inputs, in)
		if in.Physical != n {
			rename[n] = in.Physical
		}
	}
	g.physExpr = sqllex.RenameIdentifiers(expr, rename)
	// Later operations must leave the column and its inputs alone (see
	// refuseMaintained), and a drop of the column drops the trigger first.
	mc.Maintained = &schema.Maintained{Trigger: genName(col.Name), Function: g.fn, Computed: true}
	for _, in := range g.inputs {
		if in.Maintained == nil {
			in.Maintained = &schema.Maintained{Trigger: genName(col.Name), Function: g.fn}
		}
	}
	if !col.nullable() {
		g.notNull = genName(col.Name + "_nn")
	}
	// Later operations of this migration see a generated column: a rewrite
	// of a column it reads is refused (see alterRewrite).
	mc.GeneratedExpr = g.physExpr

	pin := "SET LOCAL search_path = " + pg.Ident(c.Opts.Schema) + ", pg_temp"
	expand := []string{
		// Names in the expression resolve as in the trigger function,
		// the check and the backfill: in the migrated schema.
		pin,
		c.genProbe(g),
		fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", g.table, pg.Ident(g.phys), g.typ),
	}
	if col.Comment != nil {
		expand = append(expand, commentSQL("COLUMN", g.table+"."+pg.Ident(g.phys), col.Comment))
	}
	expand = append(expand, g.function(g.phys, "CREATE"), g.createTrigger())
	drop := g.drop()
	c.Expand(Step{
		Do:   fmt.Sprintf("add column %s.%s and the trigger that computes it", t.Name, col.Name),
		SQL:  expand,
		Undo: append(drop, fmt.Sprintf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", g.table, pg.Ident(g.phys))),
		Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
	})
	// A drop_column of this column later in the migration removes the
	// trigger first: it lists the column, so the column cannot go before it.
	c.dropTriggers[t.Physical+"\x00"+g.phys] = drop

	bf := Backfill{Ops: []int{c.op}, Table: t.Physical, Where: pg.Ident(g.phys) + " IS NULL"}
	for _, k := range physicalKey(ot) {
		bf.Key = append(bf.Key, KeyColumn{Name: k, Type: ot.ColumnByPhysical(k).Type})
	}
	bf.Set = []Assignment{{Column: g.phys, Expr: pg.Paren(g.physExpr)}}
	c.plan.Backfill = append(c.plan.Backfill, leafBackfills(ot, bf)...)

	// The check can only come after the backfill: PostgreSQL checks a
	// constraint, even NOT VALID, on every row an UPDATE writes, and a
	// row the backfill has not reached would fail it.
	c.names[g.check] = true
	c.genCheck(t, g.check, fmt.Sprintf("%s IS NOT DISTINCT FROM %s", pg.Ident(g.phys), g.cast(g.physExpr)), pin)
	if g.notNull != "" {
		c.names[g.notNull] = true
		c.genCheck(t, g.notNull, pg.Ident(g.phys)+" IS NOT NULL", pin)
	}

	var contract []string
	now := c.ColumnNow(t, g.phys)
	if hidden {
		// The physical table still had a column of this name, which an
		// earlier operation drops at complete. The function names the
		// column, so it is replaced in the transaction of the rename.
		contract = append(contract,
			fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", c.Qualified(c.TableNow(t)), pg.Ident(now), pg.Ident(col.Name)),
			g.function(col.Name, "CREATE OR REPLACE"))
		c.SetColumnNow(t, g.phys, col.Name)
		now = col.Name
	}
	if g.notNull != "" {
		// The validated check proves there is no NULL, so SET NOT NULL
		// does not scan the table under its exclusive lock.
		table := c.Qualified(c.TableNow(t))
		contract = append(contract,
			fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", table, pg.Ident(now)),
			fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, pg.Ident(g.notNull)))
		delete(t.Constraints, g.notNull)
	}
	if len(contract) > 0 {
		c.Contract(Step{
			Do:   fmt.Sprintf("put generated column %s.%s in its final shape", t.Name, col.Name),
			SQL:  contract,
			Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
		})
	}
	return nil
}

// genCheck adds a check constraint NOT VALID after the backfill and
// validates it, as addCheck does, with the expression's names resolved in
// the migrated schema (pin sets the search_path in its transaction).
func (c *Compiler) genCheck(t *schema.Table, name, expr, pin string) {
	c.addCheck(t, name, expr, false, pin)
	t.Constraints[name].Definition = "CHECK (" + expr + ")"
}

// cast converts the expression's value to the column's type, as storing
// it in the column does; without it, a numeric expression stored in an
// integer column would be compared unrounded and fail the check.
func (g *genObjects) cast(expr string) string {
	return fmt.Sprintf("CAST(%s AS %s)", pg.Paren(expr), g.typ)
}

// genProbe returns a statement that makes PostgreSQL itself judge the
// expression as a generated column's, before anything is changed: it
// creates, and drops, a temporary table whose columns are the expression's
// inputs under the names and types the trigger function gives them, and a
// generated column of the expression. PostgreSQL refuses an expression that
// is not immutable (PostgreSQL's own rule, which no list kept here could
// match: casts and operators count, not only functions), a subquery, an
// aggregate, an unknown name, or a value it cannot store in the column's
// type; the probe's check fails when the type has no equality for the
// guarding check. Errors are re-raised naming the file, the operation and
// the field.
func (c *Compiler) genProbe(g *genObjects) string {
	value := "_online_gen_value"
	for taken := true; taken; {
		taken = false
		for _, in := range g.inputs {
			if in.Name == value {
				value += "_"
				taken = true
			}
		}
	}
	var cols []string
	for _, in := range g.inputs {
		cols = append(cols, pg.Ident(in.Name)+" "+in.Type)
	}
	v := pg.Ident(value)
	cols = append(cols,
		fmt.Sprintf("%s %s GENERATED ALWAYS AS %s STORED", v, g.typ, pg.Paren(g.expr)),
		fmt.Sprintf("CHECK (%s IS NOT DISTINCT FROM %s)", v, g.cast(g.expr)))
	create := fmt.Sprintf("CREATE TEMP TABLE %s (%s) ON COMMIT DROP", pg.Ident("_online_gen_probe"), strings.Join(cols, ", "))
	prefix := (&Error{File: c.file, Op: c.op, Kind: c.kind, Field: "column.generated.expression", Err: errors.New("")}).Error()
	hint := "a generated column may use only immutable functions, operators and casts, as PostgreSQL recomputes it from the row alone at any time " +
		"(now(), random(), nextval() and casts or functions that depend on settings such as TimeZone are not); " +
		"to fill a column once from such an expression, use add_column with up"
	// EXECUTE, not the statements themselves, so that even a syntax error
	// in the expression reaches the handler.
	body := fmt.Sprintf(`
DECLARE
    _hint text;
BEGIN
    EXECUTE %s;
    EXECUTE %s;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS _hint = PG_EXCEPTION_HINT;
    IF SQLSTATE = '42P17' THEN
        _hint := %s;
    END IF;
    RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = %s || SQLERRM, HINT = _hint;
END
`, pg.Literal(create), pg.Literal("DROP TABLE pg_temp."+pg.Ident("_online_gen_probe")), pg.Literal(hint), pg.Literal(prefix))
	return "DO " + pg.DollarQuote(body)
}

// function returns the statement creating the trigger function that sets
// the column, named target, to the expression. It binds each input to a
// variable of the name the expression uses, so the expression runs as
// written. verb is CREATE, or CREATE OR REPLACE to re-point it at a renamed
// column.
func (g *genObjects) function(target, verb string) string {
	// The row is reached through an alias declared before the inputs, so
	// an input called "new" cannot shadow it.
	row := "_online_row"
	for taken := true; taken; {
		taken = false
		for _, in := range g.inputs {
			if in.Name == row {
				row += "_"
				taken = true
			}
		}
	}
	r := pg.Ident(row)
	var b strings.Builder
	fmt.Fprintf(&b, "\nDECLARE\n    %s ALIAS FOR NEW;\n", r)
	for _, in := range g.inputs {
		fmt.Fprintf(&b, "    %s %s := %s.%s;\n", pg.Ident(in.Name), in.Type, r, pg.Ident(in.Physical))
	}
	fmt.Fprintf(&b, "BEGIN\n    %s.%s := %s;\n    RETURN %s;\nEND\n", r, pg.Ident(target), pg.Paren(g.expr), r)
	// The search_path is pinned: names in the expression must resolve as
	// they did when the check was created, whatever the writing session's
	// path. plpgsql, unlike a generated column, resolves them at run time.
	return fmt.Sprintf("%s FUNCTION %s() RETURNS trigger LANGUAGE plpgsql\nSET search_path = %s, pg_temp\nAS %s",
		verb, g.fn, pg.Ident(g.schema), pg.DollarQuote(b.String()))
}

// createTrigger fires on every INSERT and on an UPDATE that names an input
// or the column itself (so an explicit value is overwritten); other updates
// do not pay for it. Listing the column also makes PostgreSQL refuse to
// drop it while the trigger, which writes it by name, is there.
func (g *genObjects) createTrigger() string {
	cols := []string{g.phys}
	for _, in := range g.inputs {
		cols = append(cols, in.Physical)
	}
	return fmt.Sprintf("CREATE TRIGGER %s\n  BEFORE INSERT OR UPDATE OF %s ON %s\n  FOR EACH ROW\n  EXECUTE FUNCTION %s()",
		g.trigger, pg.Idents(cols), g.table, g.fn)
}

// drop removes the trigger and its function; idempotent.
func (g *genObjects) drop() []string {
	return []string{
		fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", g.trigger, g.table),
		fmt.Sprintf("DROP FUNCTION IF EXISTS %s()", g.fn),
	}
}
