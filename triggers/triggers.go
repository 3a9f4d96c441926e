package triggers

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/onlinepg/online/internal/pg"
)

// BackfillSetting is the custom setting the backfill sets transaction-locally
// (set_config(name,'on',true)) in its own batch transactions; UPDATE triggers
// do not fire while it is 'on', so the backfill never runs the reverse
// conversion.
const BackfillSetting = "online.backfill"

// Var is a variable visible to expressions: Name as the expression's author
// sees the column, Type its SQL type (format_type text), Physical the table
// column it is read from (NEW."Physical").
type Var struct{ Name, Type, Physical string }

// Step is one expression of a conversion. Expr is evaluated seeing the
// current variables; its result is then bound as variable Name of type Type
// for later steps (shadowing a variable of that name). Name and Type of the
// last step are not used: its result is assigned to the target column.
type Step struct{ Expr, Name, Type string }

// Conversion computes one column's value from other columns of the same row.
type Conversion struct {
	Inputs []Var
	Steps  []Step // at least one; the value of the conversion is the result of the last step
}

// Table names the physical table a rewrite works on.
type Table struct {
	Schema, Name string   // the physical table
	FuncSchema   string   // schema that holds the trigger functions; "" means Schema
	Key          []string // physical primary-key (or unique not-null) columns
	// CallerPath leaves the search_path of the trigger functions to the
	// writing session instead of pinning it to Schema. A function with a
	// SET clause saves and restores the setting on every call, which costs
	// each written row about a microsecond and each application transaction
	// a few percent. Only set it when every name the conversions use means
	// the same under any search_path (pg_catalog objects only, no relation):
	// the caller proves that, this package cannot.
	CallerPath bool
}

// Rewrite is one pair of physical columns kept in sync.
type Rewrite struct {
	ID        string      // short unique part of trigger/function names, [a-z0-9_], <= 24 bytes
	OldColumn string      // physical column the old version reads and writes; "" when the old version has none (add_column)
	NewColumn string      // physical column the new version reads and writes; "" when the new version has none (drop_column)
	Up        *Conversion // value of NewColumn for a row written by the old version (nil: none)
	Down      *Conversion // value of OldColumn for a row written by the new version (nil: none)
	UpWatch   []string    // more physical columns whose update by an old-version write must recompute NewColumn (those its Up reads)
	DownWatch []string    // likewise for Down (unused without NewColumn)
	// OldNotNull says that every row the old version inserts has a value
	// in OldColumn (NOT NULL, no default): an inserted row whose NewColumn
	// and OldColumn are both NULL then comes from the new version, which
	// wrote NULL on purpose, and gets Down.
	OldNotNull bool
}

// Trigger name suffixes. PostgreSQL fires the BEFORE ROW triggers of one
// event in byte order of their names, and the down triggers must fire first
// (see the package documentation), hence "1_down" < "2_up".
//
// A rewrite that converts both ways on INSERT gets one trigger (sufIns,
// function _ins) instead of the two direction triggers: each BEFORE trigger
// with a WHEN clause costs every INSERT statement a parse and plan of that
// clause and a trigger dispatch, so one unconditional trigger that picks the
// direction inside its function is the cheaper way to run one conversion.
const (
	sufIns     = "_0_ins"
	sufDownIns = "_1_down_ins"
	sufDownUpd = "_1_down_upd"
	sufUpIns   = "_2_up_ins"
	sufUpUpd   = "_2_up_upd"
)

var idPattern = regexp.MustCompile(`^[a-z0-9_]{1,24}$`)

// Validate reports whether r describes something Create can install.
func Validate(r Rewrite) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !idPattern.MatchString(r.ID) {
		bad("rewrite ID %q must be 1 to 24 characters of [a-z0-9_]", r.ID)
	}
	switch {
	case r.OldColumn == "" && r.NewColumn == "":
		bad("rewrite %s: neither OldColumn nor NewColumn is set", r.ID)
	case r.OldColumn == r.NewColumn:
		bad("rewrite %s: OldColumn and NewColumn are both %q; a rewrite needs two physical columns", r.ID, r.OldColumn)
	}
	if r.Up != nil && r.NewColumn == "" {
		bad("rewrite %s: Up is set but NewColumn is not (nothing to write the up value to)", r.ID)
	}
	if r.Down != nil && r.OldColumn == "" {
		bad("rewrite %s: Down is set but OldColumn is not (nothing to write the down value to)", r.ID)
	}
	if r.Up == nil && r.Down == nil {
		bad("rewrite %s: neither Up nor Down is set; there is nothing to keep in sync", r.ID)
	}
	for _, c := range r.UpWatch {
		if c == "" {
			bad("rewrite %s: empty column name in UpWatch", r.ID)
		}
	}
	for _, c := range r.DownWatch {
		if c == "" {
			bad("rewrite %s: empty column name in DownWatch", r.ID)
		}
	}
	if r.Up != nil {
		if err := validateConversion(*r.Up); err != nil {
			bad("rewrite %s: Up: %w", r.ID, err)
		} else {
			// An input the UPDATE trigger does not list would leave the new
			// column stale when an old-version write changes it.
			watched := append([]string{r.OldColumn}, r.UpWatch...)
			for _, in := range r.Up.Inputs {
				if !contains(watched, in.Physical) {
					bad("rewrite %s: Up reads column %q, which neither OldColumn nor UpWatch lists; an update of it would leave %q stale", r.ID, in.Physical, r.NewColumn)
				}
			}
		}
	}
	if r.Down != nil {
		if err := validateConversion(*r.Down); err != nil {
			bad("rewrite %s: Down: %w", r.ID, err)
		} else if r.NewColumn != "" {
			watched := append([]string{r.NewColumn}, r.DownWatch...)
			for _, in := range r.Down.Inputs {
				if !contains(watched, in.Physical) {
					bad("rewrite %s: Down reads column %q, which neither NewColumn nor DownWatch lists; an update of it would leave %q stale", r.ID, in.Physical, r.OldColumn)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func validateConversion(c Conversion) error {
	var errs []error
	seen := map[string]bool{}
	for i, in := range c.Inputs {
		if in.Name == "" || in.Type == "" || in.Physical == "" {
			errs = append(errs, fmt.Errorf("input %d (%q) needs Name, Type and Physical", i, in.Name))
		}
		// Two inputs of one name would be two declarations of one plpgsql
		// variable in the same block.
		if seen[in.Name] {
			errs = append(errs, fmt.Errorf("input name %q appears twice", in.Name))
		}
		seen[in.Name] = true
	}
	if len(c.Steps) == 0 {
		errs = append(errs, errors.New("a conversion needs at least one step"))
	}
	for i, s := range c.Steps {
		if strings.TrimSpace(s.Expr) == "" {
			errs = append(errs, fmt.Errorf("step %d has no expression", i))
		}
		if i < len(c.Steps)-1 && (s.Name == "" || s.Type == "") {
			errs = append(errs, fmt.Errorf("step %d is not the last, so it needs Name and Type to bind its result", i))
		}
	}
	return errors.Join(errs...)
}

func validateTable(t Table) error {
	if t.Schema == "" || t.Name == "" {
		// An unqualified name would resolve through whatever search_path
		// the engine's session has, and the functions' search_path needs it.
		return fmt.Errorf("table %q: Schema and Name are required", t.Name)
	}
	for _, k := range t.Key {
		if k == "" {
			return fmt.Errorf("table %s: empty key column name", pg.Ident(t.Schema, t.Name))
		}
	}
	return nil
}

// mustValid panics on a table or rewrite Validate rejects: Create and Drop
// return statements only, and SQL generated from a malformed rewrite could
// install triggers that silently do the wrong thing. The engine validates
// first; reaching this is a programming error.
func mustValid(t Table, r Rewrite) {
	if err := validateTable(t); err != nil {
		panic("triggers: " + err.Error())
	}
	if err := Validate(r); err != nil {
		panic("triggers: " + err.Error())
	}
}

// names are the quoted object names of one rewrite.
type names struct {
	table, upFn, downFn, insFn, checkFn string
	trigger                             func(suffix string) string
}

func nameRewrite(t Table, r Rewrite) names {
	fs := t.FuncSchema
	if fs == "" {
		fs = t.Schema
	}
	base := "_online_" + r.ID
	return names{
		table:   pg.Ident(t.Schema, t.Name),
		upFn:    pg.Ident(fs, base+"_up"),
		downFn:  pg.Ident(fs, base+"_down"),
		insFn:   pg.Ident(fs, base+"_ins"),
		checkFn: pg.Ident(fs, base+"_check"),
		trigger: func(suffix string) string { return pg.Ident(base + suffix) },
	}
}

// Create returns the statements that install the triggers of r on t. Run them
// in ONE transaction, after adding NewColumn (the triggers name it) and
// before that transaction commits, so no write ever sees the new column
// without its triggers. Create panics if Validate(r) fails or t lacks Schema
// or Name.
func Create(t Table, r Rewrite) []string {
	mustValid(t, r)
	n := nameRewrite(t, r)
	path := "SET search_path = " + pg.Ident(t.Schema) + ", pg_temp"
	// The check function keeps the pinned path: it is run once, and it is
	// what proves the expressions resolve at all.
	fnPath := path
	if t.CallerPath {
		fnPath = ""
	}
	backfillOff := "pg_catalog.current_setting(" + pg.Literal(BackfillSetting) + ", true) IS DISTINCT FROM 'on'"

	up := r.Up != nil && r.NewColumn != ""
	down := r.Down != nil && r.OldColumn != ""

	var stmts []string

	// The check function goes first so that a broken expression fails the
	// transaction before anything else is done.
	var checks []string
	if up {
		checks = append(checks, "UPDATE "+n.table+" SET "+pg.Ident(r.NewColumn)+" = "+BackfillExpr(*r.Up)+" WHERE false;")
	}
	if down {
		checks = append(checks, "UPDATE "+n.table+" SET "+pg.Ident(r.OldColumn)+" = "+BackfillExpr(*r.Down)+" WHERE false;")
	}
	checkBody := "\n" + strings.Join(checks, "\n") + "\n"
	stmts = append(stmts,
		"CREATE OR REPLACE FUNCTION "+n.checkFn+"() RETURNS void LANGUAGE sql\n"+path+"\nAS "+pg.DollarQuote(checkBody),
		"DROP FUNCTION "+n.checkFn+"()",
	)

	if down {
		stmts = append(stmts, function(n.downFn, fnPath, *r.Down, r.OldColumn))
	}
	if up {
		stmts = append(stmts, function(n.upFn, fnPath, *r.Up, r.NewColumn))
	}
	// Both ways on INSERT: one trigger, the direction told in its function
	// by the same test the two WHEN clauses would make.
	both := up && down && r.NewColumn != ""
	if both {
		stmts = append(stmts,
			insFunction(n.insFn, fnPath, r),
			trigger(n.trigger(sufIns), "INSERT", n.table, "", n.insFn))
	}

	if down {
		if r.NewColumn != "" {
			if !both {
				stmts = append(stmts, trigger(n.trigger(sufDownIns), "INSERT", n.table,
					"NEW."+pg.Ident(r.NewColumn)+" IS NOT NULL", n.downFn))
			}
			watch := dedupe(append([]string{r.NewColumn}, r.DownWatch...))
			// The backfill check comes first: it is the cheapest, and for
			// every row the backfill writes it ends the evaluation.
			when := backfillOff + "\n    AND " + sameImage([]string{r.OldColumn}) +
				"\n    AND NOT " + sameImage(watch)
			stmts = append(stmts, trigger(n.trigger(sufDownUpd), "UPDATE OF "+pg.Idents(watch), n.table, when, n.downFn))
		} else {
			stmts = append(stmts, trigger(n.trigger(sufDownIns), "INSERT", n.table,
				"NEW."+pg.Ident(r.OldColumn)+" IS NULL", n.downFn))
		}
	}

	if up {
		nc := pg.Ident(r.NewColumn)
		if !both {
			stmts = append(stmts, trigger(n.trigger(sufUpIns), "INSERT", n.table, "NEW."+nc+" IS NULL", n.upFn))
		}
		var inputs []string
		if r.OldColumn != "" {
			inputs = append(inputs, r.OldColumn)
		}
		inputs = dedupe(append(inputs, r.UpWatch...))
		cols := dedupe(append(append([]string{}, inputs...), t.Key...))
		if len(cols) > 0 {
			// Recompute when an input really changed, or when the row was
			// not converted yet (its new column is still NULL): the latter
			// catches a key change of a row the backfill has not reached,
			// without recomputing (and so overwriting) a value the new
			// version wrote when only the key moved.
			recompute := "NEW." + nc + " IS NULL"
			if len(inputs) > 0 {
				recompute = "(" + recompute + " OR NOT " + sameImage(inputs) + ")"
			}
			when := sameImage([]string{r.NewColumn}) + "\n    AND " + backfillOff + "\n    AND " + recompute
			stmts = append(stmts, trigger(n.trigger(sufUpUpd), "UPDATE OF "+pg.Idents(cols), n.table, when, n.upFn))
		}
	}
	return stmts
}

// Drop returns the statements that remove everything Create may have
// installed for r on t. They are idempotent (IF EXISTS) and name every
// trigger Create could have made, whether or not this r would make it, so
// they also clean up after a Rewrite that has since changed. DROP TRIGGER
// takes an ACCESS EXCLUSIVE lock on the table: run them with a lock_timeout,
// and before dropping either column (the triggers depend on the columns).
func Drop(t Table, r Rewrite) []string {
	if err := validateTable(t); err != nil {
		panic("triggers: " + err.Error())
	}
	if !idPattern.MatchString(r.ID) {
		panic(fmt.Sprintf("triggers: rewrite ID %q must be 1 to 24 characters of [a-z0-9_]", r.ID))
	}
	n := nameRewrite(t, r)
	var stmts []string
	for _, s := range []string{sufIns, sufDownIns, sufDownUpd, sufUpIns, sufUpUpd} {
		stmts = append(stmts, "DROP TRIGGER IF EXISTS "+n.trigger(s)+" ON "+n.table)
	}
	// Functions after triggers: a function a trigger uses cannot be dropped.
	for _, f := range []string{n.insFn, n.downFn, n.upFn, n.checkFn} {
		stmts = append(stmts, "DROP FUNCTION IF EXISTS "+f+"()")
	}
	return stmts
}

// trigger renders one BEFORE ... FOR EACH ROW trigger; when "" means no
// WHEN clause.
func trigger(name, event, table, when, fn string) string {
	if when != "" {
		when = "\n  WHEN (" + when + ")"
	}
	return "CREATE TRIGGER " + name + "\n  BEFORE " + event + " ON " + table +
		"\n  FOR EACH ROW" + when + "\n  EXECUTE FUNCTION " + fn + "()"
}

// sameImage is a WHEN condition that is true when the write left every one
// of cols as it was, byte for byte, NULL counting as equal to NULL. See the
// package documentation for why record_image_eq and not IS NOT DISTINCT FROM
// or *=.
func sameImage(cols []string) string {
	nw := make([]string, len(cols))
	od := make([]string, len(cols))
	for i, c := range cols {
		nw[i] = "NEW." + pg.Ident(c)
		od[i] = "OLD." + pg.Ident(c)
	}
	return "pg_catalog.record_image_eq(ROW(" + strings.Join(nw, ", ") + "), ROW(" + strings.Join(od, ", ") + "))"
}

// function renders the plpgsql trigger function that sets column target of
// the row to the value of c.
func function(name, path string, c Conversion, target string) string {
	// The row is reached through an alias declared before any input, so a
	// variable called "new" (a column may well be called that) cannot
	// shadow the record; the alias name is made distinct from every
	// variable name.
	rowRef := rowAlias(c)

	var b strings.Builder
	b.WriteString("\n#variable_conflict use_variable\nDECLARE\n")
	fmt.Fprintf(&b, "    %s ALIAS FOR NEW;\n", rowRef)
	declareInputs(&b, c, rowRef, 0)
	b.WriteString("BEGIN\n")
	steps(&b, c, rowRef, target, 1)
	fmt.Fprintf(&b, "    RETURN %s;\nEND\n", rowRef)
	return functionHead(name, path) + "AS " + pg.DollarQuote(b.String())
}

// insFunction renders the one INSERT trigger function of a rewrite that
// converts both ways: a row that arrives without NewColumn was written by
// the old version and gets Up, any other gets Down. Each direction runs in
// its own block, so the two conversions may declare the same names with
// different types.
func insFunction(name, path string, r Rewrite) string {
	rowRef := rowAlias(*r.Up, *r.Down)
	var b strings.Builder
	b.WriteString("\n#variable_conflict use_variable\nDECLARE\n")
	fmt.Fprintf(&b, "    %s ALIAS FOR NEW;\n", rowRef)
	b.WriteString("BEGIN\n")
	if r.OldNotNull {
		fmt.Fprintf(&b, "    IF %s.%s IS NULL AND %s.%s IS NOT NULL THEN\n", rowRef, pg.Ident(r.NewColumn), rowRef, pg.Ident(r.OldColumn))
	} else {
		fmt.Fprintf(&b, "    IF %s.%s IS NULL THEN\n", rowRef, pg.Ident(r.NewColumn))
	}
	block(&b, *r.Up, rowRef, r.NewColumn, 2)
	b.WriteString("    ELSE\n")
	block(&b, *r.Down, rowRef, r.OldColumn, 2)
	b.WriteString("    END IF;\n")
	fmt.Fprintf(&b, "    RETURN %s;\nEND\n", rowRef)
	return functionHead(name, path) + "AS " + pg.DollarQuote(b.String())
}

// functionHead is the CREATE FUNCTION line of a trigger function, with its
// SET search_path clause when path is not "".
func functionHead(name, path string) string {
	// Plain CREATE, not CREATE OR REPLACE: the name is made from the ID
	// alone, and replacing a function of the same name would silently
	// re-point another table's triggers (an ID reused in one FuncSchema, or
	// a migration that was never dropped) at this body.
	head := "CREATE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql\n"
	if path != "" {
		head += path + "\n"
	}
	return head
}

// rowAlias is the quoted name of the alias for NEW, distinct from every
// variable name of the conversions.
func rowAlias(cs ...Conversion) string {
	row := "_online_row"
	for {
		clash := false
		for _, c := range cs {
			clash = clash || taken(c, row)
		}
		if !clash {
			return pg.Ident(row)
		}
		row += "_"
	}
}

// declareInputs writes the declarations of c's inputs, read from the row, at
// the indentation of depth.
func declareInputs(b *strings.Builder, c Conversion, rowRef string, depth int) {
	ind := strings.Repeat("    ", depth)
	for _, in := range c.Inputs {
		fmt.Fprintf(b, "%s    %s %s := %s.%s;\n", ind, pg.Ident(in.Name), in.Type, rowRef, pg.Ident(in.Physical))
	}
}

// block writes a nested block at depth that declares c's inputs and sets
// rowRef.target to the value of c.
func block(b *strings.Builder, c Conversion, rowRef, target string, depth int) {
	ind := strings.Repeat("    ", depth)
	if len(c.Inputs) > 0 {
		b.WriteString(ind + "DECLARE\n")
		declareInputs(b, c, rowRef, depth)
	}
	b.WriteString(ind + "BEGIN\n")
	steps(b, c, rowRef, target, depth+1)
	b.WriteString(ind + "END;\n")
}

// steps writes c's steps at depth: each step but the last opens a nested
// block that binds its result, so that a name may be re-bound with another
// type (one block cannot declare a name twice), and the last step's result
// is assigned to rowRef.target.
func steps(b *strings.Builder, c Conversion, rowRef, target string, depth int) {
	last := len(c.Steps) - 1
	for i, s := range c.Steps[:last] {
		ind := strings.Repeat("    ", depth+i)
		fmt.Fprintf(b, "%sDECLARE\n%s    %s %s := %s;\n%sBEGIN\n", ind, ind, pg.Ident(s.Name), s.Type, pg.Paren(s.Expr), ind)
	}
	ind := strings.Repeat("    ", depth+last)
	fmt.Fprintf(b, "%s%s.%s := %s;\n", ind, rowRef, pg.Ident(target), pg.Paren(c.Steps[last].Expr))
	for i := last - 1; i >= 0; i-- {
		fmt.Fprintf(b, "%sEND;\n", strings.Repeat("    ", depth+i))
	}
}

func taken(c Conversion, name string) bool {
	for _, in := range c.Inputs {
		if in.Name == name {
			return true
		}
	}
	for _, s := range c.Steps {
		if s.Name == name {
			return true
		}
	}
	return false
}

// BackfillExpr returns one SQL expression computing c for a row, usable as
// UPDATE tbl SET col = <expr> with columns referenced unqualified (physical
// names). For one step whose inputs all have Name == Physical it is the
// parenthesized expression; otherwise nested scalar subselects bind each
// input and each step's result under its Name, so a later step sees the
// earlier one's result by name, shadowing a column or input of that name, as
// in the trigger function. It panics on a conversion Validate would reject.
func BackfillExpr(c Conversion) string {
	if err := validateConversion(c); err != nil {
		panic("triggers: " + err.Error())
	}
	last := len(c.Steps) - 1
	expr := pg.Paren(c.Steps[last].Expr)
	// Build from the inside out: each layer is a scalar subselect whose
	// FROM binds one step's result. A subselect in FROM may refer to
	// columns of enclosing query levels, so step i sees the bindings of the
	// layers around it and, unqualified names resolving innermost first,
	// the latest binding of a name wins. Nesting (not one FROM list with
	// LATERAL) is what makes a re-bound name shadow instead of being
	// ambiguous.
	for i := last - 1; i >= 0; i-- {
		s := c.Steps[i]
		expr = fmt.Sprintf("(SELECT %s FROM (SELECT CAST(%s AS %s) AS %s) AS %s)",
			expr, pg.Paren(s.Expr), s.Type, pg.Ident(s.Name), pg.Ident(fmt.Sprintf("_online_s%d", i+1)))
	}
	rename := false
	for _, in := range c.Inputs {
		if in.Name != in.Physical {
			rename = true
		}
	}
	if rename {
		// All inputs are bound in one layer, reading the physical columns
		// of the row being updated (the enclosing query level), so that
		// inputs swapping names (a->b, b->a) still read the right column.
		binds := make([]string, len(c.Inputs))
		for i, in := range c.Inputs {
			binds[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", pg.Ident(in.Physical), in.Type, pg.Ident(in.Name))
		}
		expr = fmt.Sprintf("(SELECT %s FROM (SELECT %s) AS %s)", expr, strings.Join(binds, ", "), pg.Ident("_online_in"))
	}
	return expr
}

func dedupe(cols []string) []string {
	var out []string
	for _, c := range cols {
		if c != "" && !contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
