package triggers

import (
	"errors"
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
)

// MovingSetting is the custom setting a move's triggers set
// transaction-locally while they delete the target rows of a source row
// being deleted: the target's delete trigger then leaves the source row
// alone (PostgreSQL refuses to update a row inside its own BEFORE DELETE
// trigger, and the row is going anyway).
const MovingSetting = "online.moving"

// MoveTable is one side of a move: a physical table and the name (Alias)
// the move's expressions call it by.
type MoveTable struct {
	Schema, Name, Alias string
	Key                 []string // physical key columns
}

// Assign is one column set to an expression.
type Assign struct{ Column, Expr string }

// Move keeps data that a migration moves from one table to another equal on
// both sides while both versions run. Source is the old place, Target the
// new one; Where joins a Source row to its Target rows, naming both by
// their aliases.
//
// A column move (Column set) gives every Target row Column = Value, Value
// read from its Source partner; several partners are equal by the start's
// check, and during the migration the last write wins and is spread to
// every partner by Down. A table move (Values set) gives every Source row
// one Target row made of Values, as long as the row holds something to
// move: with Down, a Source row whose Down columns are all NULL has no
// Target row.
//
// Down, optional, carries a write through the new version back to the old
// place: Source column = expression over the Target row. Without it the
// old version does not see what the new version writes.
type Move struct {
	ID     string // [a-z0-9_], at most 24 bytes, unique among the migration's triggers
	Source MoveTable
	Target MoveTable
	Where  string
	// FuncSchema holds the trigger functions; "" means Target.Schema.
	FuncSchema string

	Column string // column move: the Target column
	Value  string // column move: its value, over the Source row

	Values []Assign // table move: Target columns, over the Source row

	Down []Assign
	// RefuseMissing makes a write through the new version that has no
	// Source partner to carry it to fail instead of staying in the new
	// place only.
	RefuseMissing bool
}

// ValidateMove reports whether m describes something CreateMove can install.
func ValidateMove(m Move) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !idPattern.MatchString(m.ID) {
		bad("move ID %q must be 1 to 24 characters of [a-z0-9_]", m.ID)
	}
	for _, t := range []MoveTable{m.Source, m.Target} {
		if t.Schema == "" || t.Name == "" || t.Alias == "" {
			bad("move %s: a table needs Schema, Name and Alias", m.ID)
		}
	}
	if m.Column != "" && len(m.Target.Key) == 0 {
		bad("move %s: the target of a column move needs a key", m.ID)
	}
	if m.Source.Alias == m.Target.Alias {
		bad("move %s: source and target are both called %q", m.ID, m.Source.Alias)
	}
	if strings.TrimSpace(m.Where) == "" {
		bad("move %s: Where is required", m.ID)
	}
	switch {
	case (m.Column == "") == (len(m.Values) == 0):
		bad("move %s: exactly one of Column and Values is set", m.ID)
	case m.Column != "" && strings.TrimSpace(m.Value) == "":
		bad("move %s: Column needs Value", m.ID)
	}
	for _, a := range append(append([]Assign{}, m.Values...), m.Down...) {
		if a.Column == "" || strings.TrimSpace(a.Expr) == "" {
			bad("move %s: an assignment needs a column and an expression", m.ID)
		}
	}
	return errors.Join(errs...)
}

type moveNames struct {
	source, target               string // qualified, quoted, with AS alias
	sourceRel, targetRel         string // qualified, quoted
	srcAlias, tgtAlias           string
	srcFn, srcDelFn, srcInsFn    string
	tgtFn, tgtInsFn, tgtDelFn    string
	trigger                      func(suffix string) string
	backfillOff, movingOff, path string
}

func nameMove(m Move) moveNames {
	fs := m.FuncSchema
	if fs == "" {
		fs = m.Target.Schema
	}
	base := "_online_" + m.ID
	n := moveNames{
		sourceRel: pg.Ident(m.Source.Schema, m.Source.Name),
		targetRel: pg.Ident(m.Target.Schema, m.Target.Name),
		srcAlias:  pg.Ident(m.Source.Alias),
		tgtAlias:  pg.Ident(m.Target.Alias),
		srcFn:     pg.Ident(fs, base+"_src"),
		srcDelFn:  pg.Ident(fs, base+"_src_del"),
		srcInsFn:  pg.Ident(fs, base+"_src_ins"),
		tgtFn:     pg.Ident(fs, base+"_tgt"),
		tgtInsFn:  pg.Ident(fs, base+"_tgt_ins"),
		tgtDelFn:  pg.Ident(fs, base+"_tgt_del"),
		trigger:   func(suffix string) string { return pg.Ident(base + suffix) },
		// The functions see the migrated schema first, as the backfill
		// and the check at start evaluate the same expressions.
		path:        "SET search_path = " + pg.Ident(m.Target.Schema) + ", pg_temp",
		backfillOff: "pg_catalog.current_setting(" + pg.Literal(BackfillSetting) + ", true) IS DISTINCT FROM 'on'",
		movingOff:   "pg_catalog.current_setting(" + pg.Literal(MovingSetting) + ", true) IS DISTINCT FROM 'on'",
	}
	n.source = n.sourceRel + " AS " + n.srcAlias
	n.target = n.targetRel + " AS " + n.tgtAlias
	return n
}

// Trigger name suffixes: one set on each table.
const (
	sufMoveSrcIns = "_m1_src_ins" // BEFORE INSERT on the source (fill from the target)
	sufMoveSrc    = "_m2_src"     // AFTER INSERT OR UPDATE on the source
	sufMoveSrcDel = "_m3_src_del" // BEFORE (table move) or AFTER (column move) DELETE on the source
	sufMoveTgtIns = "_m4_tgt_ins" // BEFORE INSERT on the target (column move: fill from the source)
	sufMoveTgt    = "_m5_tgt"     // AFTER INSERT OR UPDATE on the target
	sufMoveTgtUpd = "_m6_tgt_upd" // AFTER UPDATE on the target (column move)
	sufMoveTgtDel = "_m7_tgt_del" // AFTER DELETE on the target (table move)
)

// row is a FROM item holding the trigger's row rec (NEW or OLD) under alias.
func row(rec, alias string) string { return "(SELECT " + rec + ".*) AS " + alias }

func assignList(as []Assign) (set, cols, exprs string) {
	var s, c, e []string
	for _, a := range as {
		s = append(s, pg.Ident(a.Column)+" = "+pg.Paren(a.Expr))
		c = append(c, pg.Ident(a.Column))
		e = append(e, pg.Paren(a.Expr))
	}
	return strings.Join(s, ", "), strings.Join(c, ", "), strings.Join(e, ", ")
}

// distinct is "ROW(alias.cols) IS DISTINCT FROM ROW(exprs)": the guard that
// makes every write of a move change something, so that the triggers of
// the two tables, each carrying the other's writes, stop once both agree.
func distinct(alias string, as []Assign) string {
	var l, r []string
	for _, a := range as {
		l = append(l, alias+"."+pg.Ident(a.Column))
		r = append(r, pg.Paren(a.Expr))
	}
	return "ROW(" + strings.Join(l, ", ") + ") IS DISTINCT FROM ROW(" + strings.Join(r, ", ") + ")"
}

func moveFunction(name, path, body string) string {
	return "CREATE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql\n" + path + "\nAS " + pg.DollarQuote(body)
}

func moveTrigger(name, timing, event, table, when, fn string) string {
	s := "CREATE TRIGGER " + name + " " + timing + " " + event + " ON " + table + " FOR EACH ROW"
	if when != "" {
		s += " WHEN (" + when + ")"
	}
	return s + " EXECUTE FUNCTION " + fn + "()"
}

// downMissing is the statement that refuses a new-version value with no
// source partner, when the move says so.
func downMissing(m Move, n moveNames, rec string) string {
	if !m.RefuseMissing {
		return ""
	}
	return fmt.Sprintf(`    IF NOT EXISTS (SELECT 1 FROM %s, %s WHERE %s) THEN
        RAISE EXCEPTION 'online: no row of %%s matches this row of %%s, and the migration refuses a value the old version cannot see (missing: refuse)', %s, %s
            USING ERRCODE = 'foreign_key_violation';
    END IF;
`, n.source, row(rec, n.tgtAlias), pg.Paren(m.Where), pg.Literal(m.Source.Alias), pg.Literal(m.Target.Alias))
}

// CreateMove returns the statements that install m's triggers on both
// tables. Run them in one transaction with whatever adds the target column
// or table, so that no write sees one side without the other.
func CreateMove(m Move) []string {
	if err := ValidateMove(m); err != nil {
		panic("triggers: " + err.Error())
	}
	n := nameMove(m)
	var stmts []string
	// Source: BEFORE INSERT fills the Down columns from the target when
	// the row leaves them all NULL, as a new-version insert (which cannot
	// name them) does.
	if len(m.Down) > 0 {
		var nulls, into, sel []string
		for _, a := range m.Down {
			nulls = append(nulls, "NEW."+pg.Ident(a.Column)+" IS NULL")
			into = append(into, "NEW."+pg.Ident(a.Column))
			sel = append(sel, pg.Paren(a.Expr))
		}
		body := fmt.Sprintf(`
BEGIN
    IF %s THEN
        SELECT %s INTO %s FROM %s, %s WHERE %s LIMIT 1;
    END IF;
    RETURN NEW;
END
`, strings.Join(nulls, " AND "), strings.Join(sel, ", "), strings.Join(into, ", "), n.target, row("NEW", n.srcAlias), pg.Paren(m.Where))
		stmts = append(stmts, moveFunction(n.srcInsFn, n.path, body),
			moveTrigger(n.trigger(sufMoveSrcIns), "BEFORE", "INSERT", n.sourceRel, n.backfillOff, n.srcInsFn))
	}
	if m.Column != "" {
		stmts = append(stmts, createColumnMove(m, n)...)
	} else {
		stmts = append(stmts, createTableMove(m, n)...)
	}
	return stmts
}

// recompute is the target's value computed from its source partners (the
// first of them: the start's check proved several agree).
func recompute(m Move, n moveNames) string {
	return fmt.Sprintf("(SELECT %s FROM %s WHERE %s LIMIT 1)", pg.Paren(m.Value), n.source, pg.Paren(m.Where))
}

func createColumnMove(m Move, n moveNames) []string {
	col := pg.Ident(m.Column)
	self := n.tgtAlias + "." + col
	// Source written: its new row's value reaches the targets it joins;
	// targets its old row joined and the new one does not are computed
	// again from the partners they have left.
	lost := func(rec string, alsoNew bool) string {
		cond := fmt.Sprintf("EXISTS (SELECT 1 FROM %s WHERE %s)", row(rec, n.srcAlias), pg.Paren(m.Where))
		if alsoNew {
			cond += fmt.Sprintf(" AND NOT EXISTS (SELECT 1 FROM %s WHERE %s)", row("NEW", n.srcAlias), pg.Paren(m.Where))
		}
		return fmt.Sprintf("        UPDATE %s SET %s = %s WHERE %s AND %s IS DISTINCT FROM %s;\n", n.target, col, recompute(m, n), cond, self, recompute(m, n))
	}
	// The targets are locked before they are compared: a target changed
	// by a transaction that has not committed yet would otherwise look
	// equal here while that transaction, which cannot see this row yet,
	// spreads its own value to every source row but this one.
	lock := func(rec string) string {
		var keys []string
		for _, k := range m.Target.Key {
			keys = append(keys, n.tgtAlias+"."+pg.Ident(k))
		}
		return fmt.Sprintf("    PERFORM 1 FROM %s, %s WHERE %s ORDER BY %s FOR NO KEY UPDATE OF %s;\n",
			n.target, row(rec, n.srcAlias), pg.Paren(m.Where), strings.Join(keys, ", "), n.tgtAlias)
	}
	srcBody := fmt.Sprintf(`
BEGIN
    IF TG_OP = 'UPDATE' THEN
    %s%s    END IF;
%s    UPDATE %s SET %s = %s FROM %s WHERE %s AND %s IS DISTINCT FROM %s;
    RETURN NULL;
END
`, lock("OLD"), lost("OLD", true), lock("NEW"), n.target, col, pg.Paren(m.Value), row("NEW", n.srcAlias), pg.Paren(m.Where), self, pg.Paren(m.Value))
	delBody := fmt.Sprintf(`
BEGIN
%s%s    RETURN NULL;
END
`, lock("OLD"), lost("OLD", false))
	stmts := []string{
		moveFunction(n.srcFn, n.path, srcBody),
		moveTrigger(n.trigger(sufMoveSrc), "AFTER", "INSERT OR UPDATE", n.sourceRel, n.backfillOff, n.srcFn),
		moveFunction(n.srcDelFn, n.path, delBody),
		moveTrigger(n.trigger(sufMoveSrcDel), "AFTER", "DELETE", n.sourceRel, n.backfillOff, n.srcDelFn),
	}
	// Target inserted without a value (the old version cannot name the
	// column): it takes its partners'.
	insBody := fmt.Sprintf(`
BEGIN
    NEW.%s := (SELECT %s FROM %s, %s WHERE %s LIMIT 1);
    RETURN NEW;
END
`, col, pg.Paren(m.Value), n.source, row("NEW", n.tgtAlias), pg.Paren(m.Where))
	stmts = append(stmts,
		moveFunction(n.tgtInsFn, n.path, insBody),
		moveTrigger(n.trigger(sufMoveTgtIns), "BEFORE", "INSERT", n.targetRel, "NEW."+col+" IS NULL AND "+n.backfillOff, n.tgtInsFn))
	if len(m.Down) > 0 {
		set, _, _ := assignList(m.Down)
		missing := ""
		if m.RefuseMissing {
			missing = "    IF NEW." + col + " IS NOT NULL THEN\n" + downMissing(m, n, "NEW") + "    END IF;\n"
		}
		body := fmt.Sprintf(`
BEGIN
%s    UPDATE %s SET %s FROM %s WHERE %s AND %s;
    RETURN NULL;
END
`, missing, n.source, set, row("NEW", n.tgtAlias), pg.Paren(m.Where), distinct(n.srcAlias, m.Down))
		stmts = append(stmts,
			moveFunction(n.tgtFn, n.path, body),
			moveTrigger(n.trigger(sufMoveTgt), "AFTER", "INSERT", n.targetRel, "NEW."+col+" IS NOT NULL AND "+n.backfillOff, n.tgtFn),
			moveTrigger(n.trigger(sufMoveTgtUpd), "AFTER", "UPDATE", n.targetRel, "OLD."+col+" IS DISTINCT FROM NEW."+col+" AND "+n.backfillOff, n.tgtFn))
	}
	return stmts
}

// present is the test that a source row has something to move: one of the
// Down columns holds a value (every row, without Down).
func present(m Move, rec string) string {
	if len(m.Down) == 0 {
		return "true"
	}
	var parts []string
	for _, a := range m.Down {
		parts = append(parts, rec+"."+pg.Ident(a.Column)+" IS NOT NULL")
	}
	return strings.Join(parts, " OR ")
}

func createTableMove(m Move, n moveNames) []string {
	set, cols, exprs := assignList(m.Values)
	srcBody := fmt.Sprintf(`
BEGIN
    IF %s THEN
        UPDATE %s SET %s FROM %s WHERE %s AND %s;
        INSERT INTO %s (%s) SELECT %s FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s WHERE %s);
    ELSE
        DELETE FROM %s USING %s WHERE %s;
    END IF;
    RETURN NULL;
END
`, present(m, "NEW"),
		n.target, set, row("NEW", n.srcAlias), pg.Paren(m.Where), distinct(n.tgtAlias, m.Values),
		n.targetRel, cols, exprs, row("NEW", n.srcAlias), n.target, pg.Paren(m.Where),
		n.target, row("NEW", n.srcAlias), pg.Paren(m.Where))
	// BEFORE DELETE: the target rows go first, so that a foreign key from
	// the target to the source (checked before any AFTER trigger of the
	// statement runs) sees them gone.
	delBody := fmt.Sprintf(`
DECLARE
    was text := pg_catalog.current_setting(%[1]s, true);
BEGIN
    PERFORM pg_catalog.set_config(%[1]s, 'on', true);
    DELETE FROM %[2]s USING %[3]s WHERE %[4]s;
    PERFORM pg_catalog.set_config(%[1]s, coalesce(was, ''), true);
    RETURN OLD;
END
`, pg.Literal(MovingSetting), n.target, row("OLD", n.srcAlias), pg.Paren(m.Where))
	stmts := []string{
		moveFunction(n.srcFn, n.path, srcBody),
		moveTrigger(n.trigger(sufMoveSrc), "AFTER", "INSERT OR UPDATE", n.sourceRel, n.backfillOff, n.srcFn),
		moveFunction(n.srcDelFn, n.path, delBody),
		moveTrigger(n.trigger(sufMoveSrcDel), "BEFORE", "DELETE", n.sourceRel, n.backfillOff, n.srcDelFn),
	}
	if len(m.Down) == 0 {
		return stmts
	}
	dset, _, _ := assignList(m.Down)
	var nulls []Assign
	for _, a := range m.Down {
		nulls = append(nulls, Assign{Column: a.Column, Expr: "NULL"})
	}
	nset, _, _ := assignList(nulls)
	// Target written through the new version: its values reach the
	// source row it joins; a source row it no longer joins loses them.
	tgtBody := fmt.Sprintf(`
BEGIN
%s    IF TG_OP = 'UPDATE' THEN
        UPDATE %s SET %s FROM %s WHERE %s AND NOT EXISTS (SELECT 1 FROM %s WHERE %s) AND %s;
    END IF;
    UPDATE %s SET %s FROM %s WHERE %s AND %s;
    RETURN NULL;
END
`, downMissing(m, n, "NEW"),
		n.source, nset, row("OLD", n.tgtAlias), pg.Paren(m.Where), row("NEW", n.tgtAlias), pg.Paren(m.Where), distinct(n.srcAlias, nulls),
		n.source, dset, row("NEW", n.tgtAlias), pg.Paren(m.Where), distinct(n.srcAlias, m.Down))
	delBody2 := fmt.Sprintf(`
BEGIN
    UPDATE %s SET %s FROM %s WHERE %s AND %s;
    RETURN NULL;
END
`, n.source, nset, row("OLD", n.tgtAlias), pg.Paren(m.Where), distinct(n.srcAlias, nulls))
	return append(stmts,
		moveFunction(n.tgtFn, n.path, tgtBody),
		moveTrigger(n.trigger(sufMoveTgt), "AFTER", "INSERT OR UPDATE", n.targetRel, n.backfillOff+" AND "+n.movingOff, n.tgtFn),
		moveFunction(n.tgtDelFn, n.path, delBody2),
		moveTrigger(n.trigger(sufMoveTgtDel), "AFTER", "DELETE", n.targetRel, n.backfillOff+" AND "+n.movingOff, n.tgtDelFn))
}

// DropMove returns the idempotent statements that remove everything
// CreateMove may have installed for m. DROP TRIGGER takes an ACCESS
// EXCLUSIVE lock on its table: both tables are locked, briefly.
func DropMove(m Move) []string {
	n := nameMove(m)
	var out []string
	for _, s := range []string{sufMoveSrcIns, sufMoveSrc, sufMoveSrcDel} {
		out = append(out, "DROP TRIGGER IF EXISTS "+n.trigger(s)+" ON "+n.sourceRel)
	}
	for _, s := range []string{sufMoveTgtIns, sufMoveTgt, sufMoveTgtUpd, sufMoveTgtDel} {
		out = append(out, "DROP TRIGGER IF EXISTS "+n.trigger(s)+" ON "+n.targetRel)
	}
	for _, f := range []string{n.srcInsFn, n.srcFn, n.srcDelFn, n.tgtInsFn, n.tgtFn, n.tgtDelFn} {
		out = append(out, "DROP FUNCTION IF EXISTS "+f+"()")
	}
	return out
}
