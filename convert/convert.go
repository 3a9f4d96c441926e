package convert

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/onlinepg/online/internal/sqlsrc"
)

// Output is one migration file made from SQL.
type Output struct {
	Name string // the migration's name: the file name without ".yaml"
	YAML []byte
	// Raw is true for a migration of statements that could not be
	// converted (one sql operation).
	Raw bool
	// Skipped lists, for a raw migration, each statement's reason.
	Skipped []string
}

// reviewPrefix starts every comment that asks a person to check a value.
const reviewPrefix = "REVIEW: "

// File converts one SQL file. The migrations are named after the file
// (without its extension); when the file is split, "_01", "_02"... follow.
func File(path string, src []byte) ([]Output, error) {
	f, err := sqlsrc.Parse(path, src)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(path)
	stem := strings.TrimSuffix(strings.TrimSuffix(base, ".sql"), ".up")
	return convertFile(f, stem)
}

var (
	migrateFile = regexp.MustCompile(`^(\d+)_(.+)\.up\.sql$`)
	flywayFile  = regexp.MustCompile(`^V(\d+(?:[._]\d+)*)__(.+)\.sql$`)
	gooseFile   = regexp.MustCompile(`^(\d+)_(.+)\.sql$`)
)

// Dir converts the migrations of another tool in dir, in the order that
// tool applies them: golang-migrate's *.up.sql, goose's NNN_name.sql with a
// "-- +goose Up" section, or Flyway's V<version>__name.sql. Other files are
// ignored; a directory with none of them is an error.
func Dir(dir string) ([]Output, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	type mig struct {
		path    string
		version []int
		stem    string
	}
	var migs []mig
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		var ver, stem string
		switch {
		case migrateFile.MatchString(name):
			m := migrateFile.FindStringSubmatch(name)
			ver, stem = m[1], m[1]+"_"+m[2]
		case flywayFile.MatchString(name):
			m := flywayFile.FindStringSubmatch(name)
			ver, stem = m[1], "V"+m[1]+"_"+m[2]
		case gooseFile.MatchString(name) && !strings.HasSuffix(name, ".down.sql"):
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			if sqlsrc.DetectTool(name, data) != sqlsrc.Goose {
				continue
			}
			m := gooseFile.FindStringSubmatch(name)
			ver, stem = m[1], m[1]+"_"+m[2]
		default:
			continue
		}
		var v []int
		for _, p := range regexp.MustCompile(`[._]`).Split(ver, -1) {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, fmt.Errorf("%s: version %q is not a number", name, ver)
			}
			v = append(v, n)
		}
		migs = append(migs, mig{path: filepath.Join(dir, name), version: v, stem: stem})
	}
	if len(migs) == 0 {
		return nil, fmt.Errorf("%s: no golang-migrate (*.up.sql), goose (-- +goose Up) or Flyway (V1__name.sql) migrations found", dir)
	}
	sort.Slice(migs, func(i, j int) bool {
		a, b := migs[i].version, migs[j].version
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return len(a) < len(b)
	})
	var out []Output
	for _, m := range migs {
		src, err := os.ReadFile(m.path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", m.path, err)
		}
		f, err := sqlsrc.Parse(m.path, src)
		if err != nil {
			return nil, err
		}
		o, err := convertFile(f, m.stem)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	return out, nil
}

// skip says why a statement stays SQL.
type skip struct{ why string }

func (s *skip) Error() string { return s.why }

func skipf(format string, args ...any) error { return &skip{why: fmt.Sprintf(format, args...)} }

// part is one output migration under construction.
type part struct {
	raw    bool
	ops    []*obj // each a map with one key, the operation
	sqls   []string
	whys   []string
	tables map[string]*obj // create_table bodies of this part
	alters map[string]int  // table\x00column (current name) -> index in ops
	lastOp map[string]int  // table -> index of the last op that names it
}

type converter struct {
	file  string
	parts []*part
	// types are the column types the file itself declares, for the
	// placeholders of NOT NULL conversions.
	types map[string]string
	// dropped lists statements left out on purpose, for the header.
	dropped []string
	// added are the constraints create_constraint adds (table.name): online
	// validates them, so their VALIDATE CONSTRAINT is left out.
	added map[string]bool
}

var timeoutSettings = map[string]bool{"lock_timeout": true, "statement_timeout": true, "idle_in_transaction_session_timeout": true}

func convertFile(f *sqlsrc.File, stem string) ([]Output, error) {
	c := &converter{file: f.Path, types: map[string]string{}, added: map[string]bool{}}
	for _, st := range f.Statements {
		if isTxControl(st.Node) {
			// online runs each migration in its own transactions.
			continue
		}
		if vs := st.Node.GetVariableSetStmt(); vs != nil && timeoutSettings[vs.Name] {
			// online sets its own lock_timeout on every statement and
			// retries; a sql migration holding only this would do nothing.
			c.dropped = append(c.dropped, fmt.Sprintf("line %d: SET %s (online sets its own timeouts)", st.Line, vs.Name))
			continue
		}
		p := c.current(false)
		err := p.statement(c, st)
		if err == nil {
			continue
		}
		sk, ok := err.(*skip)
		if !ok {
			// A statement the deparser cannot render back (a form the
			// mapping does not expect) is kept as it was written.
			sk = &skip{why: fmt.Sprintf("could not be converted (%v)", err)}
		}
		if len(p.ops) == 0 {
			// Statements check everything before they change a part, so
			// an empty part is one made for this statement alone.
			c.parts = c.parts[:len(c.parts)-1]
		}
		rp := c.current(true)
		rp.sqls = append(rp.sqls, strings.TrimSuffix(st.Text, ";"))
		why := fmt.Sprintf("line %d: %s", st.Line, sk.why)
		if noTransaction(st.Node) {
			why += "; it cannot run inside a transaction and online runs a sql operation in one: run it outside online"
		}
		rp.whys = append(rp.whys, why)
	}
	var out []Output
	var live []*part
	for _, p := range c.parts {
		if p.raw || len(p.ops) > 0 {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil, fmt.Errorf("%s: no statements to convert", f.Path)
	}
	for i, p := range live {
		name := stem
		if len(live) > 1 {
			name = fmt.Sprintf("%s_%02d", stem, i+1)
		}
		header := fmt.Sprintf("converted by online convert from %s", filepath.Base(f.Path))
		if len(live) > 1 {
			header += fmt.Sprintf(" (part %d of %d: online runs a sql operation alone in its migration)", i+1, len(live))
		}
		if i == 0 {
			for _, d := range c.dropped {
				header += "\nleft out, " + d
			}
		}
		doc := newObj()
		var ops []any
		if p.raw {
			body := newObj("up", strings.Join(p.sqls, ";\n")+";")
			for _, w := range p.whys {
				body.note("up", "not converted, %s", w)
			}
			body.note("up", "no down: rollback cannot undo these statements; add one if it should")
			ops = append(ops, newObj("sql", body))
		} else {
			for _, op := range p.ops {
				ops = append(ops, finishOp(op))
			}
		}
		doc.set("operations", ops)
		data, err := render(doc, header)
		if err != nil {
			return nil, err
		}
		out = append(out, Output{Name: name, YAML: data, Raw: p.raw, Skipped: p.whys})
	}
	return out, nil
}

func (c *converter) current(raw bool) *part {
	if n := len(c.parts); n > 0 && c.parts[n-1].raw == raw {
		return c.parts[n-1]
	}
	p := &part{raw: raw, tables: map[string]*obj{}, alters: map[string]int{}, lastOp: map[string]int{}}
	c.parts = append(c.parts, p)
	return p
}

// finishOp renders an alter_column that only renames as rename_column,
// pgroll's operation for it.
func finishOp(op *obj) *obj {
	if !op.has("alter_column") {
		return op
	}
	body := op.get("alter_column").(*obj)
	if len(body.keys) == 3 && body.has("name") {
		return newObj("rename_column", newObj("table", body.str("table"), "from", body.str("column"), "to", body.str("name")))
	}
	return op
}

// noTransaction reports statements PostgreSQL refuses inside a transaction
// block.
func noTransaction(n *pg_query.Node) bool {
	switch {
	case n.GetVacuumStmt() != nil, n.GetCreatedbStmt() != nil, n.GetDropdbStmt() != nil, n.GetAlterSystemStmt() != nil,
		n.GetCreateTableSpaceStmt() != nil, n.GetDropTableSpaceStmt() != nil:
		return true
	case n.GetReindexStmt() != nil:
		for _, o := range n.GetReindexStmt().Params {
			if strings.EqualFold(o.GetDefElem().GetDefname(), "concurrently") {
				return true
			}
		}
	}
	return false
}

func isTxControl(n *pg_query.Node) bool {
	ts := n.GetTransactionStmt()
	if ts == nil {
		return false
	}
	switch ts.Kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START,
		pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return true
	}
	return false
}

// add appends an operation that names table.
func (p *part) add(table, kind string, body *obj) {
	p.ops = append(p.ops, newObj(kind, body))
	p.lastOp[table] = len(p.ops) - 1
}

// alter returns the alter_column body for table.column to add a change to.
// A change joins the previous alter_column of the column only when no other
// operation on the table came between (the compiler runs operations in
// order, and one between could name the column by its old name), and when
// it does not need the column's old name after that alter_column renamed it.
//
// replacesUp is true for a change whose up replaces any earlier one (a
// USING expression reads the column as it is before the statement, not as
// an earlier up made it): it starts a new alter_column when there is one,
// and online's compiler chains the two.
func (p *part) alter(table, column string, readsColumn, replacesUp bool) *obj {
	key := table + "\x00" + column
	if i, ok := p.alters[key]; ok && p.lastOp[table] == i {
		body := p.ops[i].get("alter_column").(*obj)
		if !(readsColumn && body.has("name")) && !(replacesUp && body.has("up")) {
			return body
		}
	}
	body := newObj("table", table, "column", column)
	p.add(table, "alter_column", body)
	p.alters[key] = len(p.ops) - 1
	return body
}

func (p *part) statement(c *converter, st sqlsrc.Statement) error {
	n := st.Node
	switch {
	case n.GetAlterTableStmt() != nil:
		return p.alterTable(c, n.GetAlterTableStmt())
	case n.GetRenameStmt() != nil:
		return p.rename(n.GetRenameStmt())
	case n.GetIndexStmt() != nil:
		return p.createIndex(n.GetIndexStmt())
	case n.GetDropStmt() != nil:
		return p.drop(n.GetDropStmt())
	case n.GetCreateStmt() != nil:
		return p.createTable(c, n.GetCreateStmt())
	case n.GetCreateEnumStmt() != nil:
		s := n.GetCreateEnumStmt()
		var vals []string
		for _, v := range s.Vals {
			vals = append(vals, v.GetString_().GetSval())
		}
		name := sqlsrc.Last(s.TypeName)
		p.add("", "create_enum", newObj("name", name, "values", vals))
		return nil
	case n.GetAlterEnumStmt() != nil:
		s := n.GetAlterEnumStmt()
		if s.OldVal != "" {
			return skipf("renaming an enum value has no online operation (old code that writes %q fails at once)", s.OldVal)
		}
		body := newObj("enum", sqlsrc.Last(s.TypeName), "value", s.NewVal)
		if s.NewValNeighbor != "" {
			if s.NewValIsAfter {
				body.set("after", s.NewValNeighbor)
			} else {
				body.set("before", s.NewValNeighbor)
			}
		}
		p.add("", "add_enum_value", body)
		return nil
	case n.GetCommentStmt() != nil:
		return p.comment(c, n.GetCommentStmt())
	}
	if movesData(n) {
		return skipf("%s copies rows from another table once: moving data between tables is beyond what convert infers, and as a sql operation later writes are not carried over while both versions run; write add_column or create_table with \"from\" instead (docs/guides/moving-data-between-tables.md)", leadingWords(st.Text))
	}
	return skipf("%s has no online operation", leadingWords(st.Text))
}

// leadingWords names a statement by its first keywords ("VACUUM FULL").
func leadingWords(text string) string {
	words := strings.Fields(text)
	if len(words) > 2 {
		words = words[:2]
	}
	return strings.ToUpper(strings.TrimSuffix(strings.Join(words, " "), ";"))
}

func relName(rv *pg_query.RangeVar) (string, error) {
	if rv == nil {
		return "", skipf("no table named")
	}
	// A schema qualifier is dropped: online changes the one schema given
	// with --schema.
	return rv.Relname, nil
}

// movesData reports whether a statement writes one table from another: an
// INSERT ... SELECT that reads a table, or an UPDATE ... FROM.
func movesData(n *pg_query.Node) bool {
	if ins := n.GetInsertStmt(); ins != nil {
		sel := ins.GetSelectStmt().GetSelectStmt()
		return sel != nil && len(sel.GetFromClause()) > 0
	}
	if up := n.GetUpdateStmt(); up != nil {
		return len(up.GetFromClause()) > 0
	}
	return false
}
