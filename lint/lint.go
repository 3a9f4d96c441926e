package lint

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"gopkg.in/yaml.v3"

	"github.com/onlinepg/online/internal/sqlsrc"
)

// Finding is one rule's hit on one statement.
type Finding struct {
	Rule      string `json:"rule"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Col       int    `json:"column"`
	Statement string `json:"statement"` // its first line
	Message   string `json:"message"`   // what this statement does
	Why       string `json:"why"`
	Instead   string `json:"instead"`
	// Reason is the reason an ignore comment gave (ignored findings only).
	Reason string `json:"reason,omitempty"`
}

// Report is the result of linting some files.
type Report struct {
	Files      int       `json:"files"`
	Statements int       `json:"statements"`
	Findings   []Finding `json:"findings"`
	Ignored    []Finding `json:"ignored"`
}

// InputError is returned when a file cannot be read or parsed: lint has
// nothing to say about it.
type InputError struct {
	File string
	Err  error
}

// Error reads "lint: " and the cause, which names the file (parse and os
// errors do).
func (e *InputError) Error() string { return "lint: " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Paths lints files and directories (recursively: *.sql, *.yaml, *.yml,
// *.json). Findings are sorted by file, line and column.
func Paths(paths []string) (*Report, error) {
	var files []string
	// found are files met in a directory: a YAML or JSON file there that is
	// not a migration file (a CI config, package.json) is skipped, not an
	// error.
	found := map[string]bool{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, &InputError{File: p, Err: err}
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".sql", ".yaml", ".yml", ".json":
				if !d.IsDir() {
					files = append(files, path)
					found[path] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, &InputError{File: p, Err: err}
		}
	}
	rep := &Report{Findings: []Finding{}, Ignored: []Finding{}}
	k := newKnowledge()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, &InputError{File: f, Err: err}
		}
		if found[f] && !isSQL(f) && !looksLikeMigration(data) {
			continue
		}
		if err := lintFile(rep, k, f, data); err != nil {
			return nil, err
		}
	}
	sortFindings(rep.Findings)
	sortFindings(rep.Ignored)
	return rep, nil
}

// Source lints the content of one file; its extension picks SQL or a
// migration file.
func Source(name string, data []byte) (*Report, error) {
	rep := &Report{Findings: []Finding{}, Ignored: []Finding{}}
	if err := lintFile(rep, newKnowledge(), name, data); err != nil {
		return nil, err
	}
	sortFindings(rep.Findings)
	sortFindings(rep.Ignored)
	return rep, nil
}

func lintFile(rep *Report, k *knowledge, name string, data []byte) error {
	rep.Files++
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return lintMigration(rep, k, name, data)
	}
	f, err := sqlsrc.Parse(name, data)
	if err != nil {
		return &InputError{File: name, Err: err}
	}
	c := newChecker(f, k)
	c.run()
	rep.Statements += len(f.Statements)
	c.settle(rep)
	return nil
}

func isSQL(name string) bool { return strings.EqualFold(filepath.Ext(name), ".sql") }

// looksLikeMigration reports whether a YAML or JSON document is a map with
// an "operations" key.
func looksLikeMigration(data []byte) bool {
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return false
	}
	_, ok := top["operations"]
	return ok
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// ignoreComment is "-- online-lint-ignore RULE[, RULE]: reason" (or "#"
// in a migration file).
var ignoreComment = regexp.MustCompile(`^\s*(?:--|#)\s*online-lint-ignore\s+([A-Za-z0-9_,\s-]+?)\s*(?::\s*(.*?))?\s*$`)

type ignore struct {
	rules  map[string]bool
	reason string
	line   int
}

// ignoresAbove reads the comment lines directly above line (1-based).
func ignoresAbove(lines []string, line int) []ignore {
	var out []ignore
	for i := line - 2; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "--") && !strings.HasPrefix(l, "#") {
			break
		}
		m := ignoreComment.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ig := ignore{rules: map[string]bool{}, reason: m[2], line: i + 1}
		for _, r := range strings.Split(m[1], ",") {
			ig.rules[strings.TrimSpace(r)] = true
		}
		out = append(out, ig)
	}
	return out
}

// checker walks one file's statements in order, keeping what earlier
// statements established (tables created here, an open transaction,
// lock_timeout, validated NOT NULL checks).
type checker struct {
	f *sqlsrc.File
	// place maps a statement's position in f to the position in the file
	// the user edits (different for SQL inside a migration file).
	place func(line, col int) (int, int)
	// extraIgnores are ignore comments that apply to every statement (a
	// "# online-lint-ignore" above a migration file's operation).
	extraIgnores []ignore
	// embedded is true for the SQL of a migration file's sql operation:
	// online runs it in a transaction, under lock_timeout.
	embedded bool

	created     map[string]bool
	txDepth     int
	lockTimeout bool
	warnedLock  bool
	types       map[string]string
	notNull     map[string]bool
	pending     map[string]string
	hits        []hit
}

type hit struct {
	rule, msg string
	st        sqlsrc.Statement
}

// knowledge is what statements establish about the database that later
// files of the same run may rely on: column types and validated NOT NULL
// checks. (Tables created by an earlier file are not carried over: by the
// time a later file runs they may hold rows and be in use.)
type knowledge struct {
	types   map[string]string // table.col -> type
	notNull map[string]bool   // table.col proven NOT NULL by a validated check
	pending map[string]string // check name -> table.col, NOT VALID "col IS NOT NULL"
}

func newKnowledge() *knowledge {
	return &knowledge{types: map[string]string{}, notNull: map[string]bool{}, pending: map[string]string{}}
}

func newChecker(f *sqlsrc.File, k *knowledge) *checker {
	return &checker{
		f: f, place: func(l, c int) (int, int) { return l, c },
		created: map[string]bool{}, types: k.types, notNull: k.notNull, pending: k.pending,
	}
}

func (c *checker) flag(st sqlsrc.Statement, rule, format string, args ...any) {
	c.hits = append(c.hits, hit{rule: rule, msg: fmt.Sprintf(format, args...), st: st})
}

// settle turns hits into findings, applying ignore comments.
func (c *checker) settle(rep *Report) {
	for _, h := range c.hits {
		r := ruleByID(h.rule)
		line, col := c.place(h.st.Line, h.st.Col)
		first, _, _ := strings.Cut(h.st.Text, "\n")
		fd := Finding{Rule: h.rule, File: c.f.Path, Line: line, Col: col, Statement: first, Message: h.msg, Why: r.Why, Instead: r.Instead}
		igs := append(ignoresAbove(c.f.Lines, h.st.Line), c.extraIgnores...)
		ignored := false
		for _, ig := range igs {
			if !ig.rules[h.rule] {
				continue
			}
			if strings.TrimSpace(ig.reason) == "" {
				rr := ruleByID("ignore-without-reason")
				rep.Findings = append(rep.Findings, Finding{Rule: rr.ID, File: c.f.Path, Line: line, Col: col, Statement: first,
					Message: fmt.Sprintf("the ignore of %s gives no reason, so it is not applied", h.rule), Why: rr.Why, Instead: rr.Instead})
				continue
			}
			fd.Reason = ig.reason
			rep.Ignored = append(rep.Ignored, fd)
			ignored = true
			break
		}
		if !ignored {
			rep.Findings = append(rep.Findings, fd)
		}
	}
}

func (c *checker) inTx() bool { return c.txDepth > 0 || c.f.InTransaction || c.embedded }

func (c *checker) run() {
	for _, st := range c.f.Statements {
		c.statement(st)
	}
}

// exclusive notes a statement that takes ACCESS EXCLUSIVE on an existing
// table, for missing-lock-timeout (once per file).
func (c *checker) exclusive(st sqlsrc.Statement) {
	if c.lockTimeout || c.warnedLock || c.embedded {
		return
	}
	c.warnedLock = true
	c.flag(st, "missing-lock-timeout", "takes ACCESS EXCLUSIVE and no SET lock_timeout comes before it in this file")
}

func (c *checker) statement(st sqlsrc.Statement) {
	n := st.Node
	switch {
	case n.GetTransactionStmt() != nil:
		switch n.GetTransactionStmt().Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
			c.txDepth++
		case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
			c.txDepth = 0
		}
	case n.GetVariableSetStmt() != nil:
		vs := n.GetVariableSetStmt()
		if vs.Name == "lock_timeout" {
			c.lockTimeout = true
			for _, a := range vs.Args {
				if v, _ := sqlsrc.Expr(a); v == "0" || v == "'0'" {
					c.lockTimeout = false
				}
			}
		}
	case n.GetCreateStmt() != nil:
		s := n.GetCreateStmt()
		c.created[s.Relation.Relname] = true
		for _, e := range s.TableElts {
			if cd := e.GetColumnDef(); cd != nil {
				c.types[s.Relation.Relname+"."+cd.Colname] = typeText(cd.TypeName)
			}
		}
	case n.GetCreateTableAsStmt() != nil:
		// CREATE TABLE AS and CREATE MATERIALIZED VIEW: new, unknown to
		// running code.
		if into := n.GetCreateTableAsStmt().Into; into != nil && into.Rel != nil {
			c.created[into.Rel.Relname] = true
		}
	case n.GetIndexStmt() != nil:
		s := n.GetIndexStmt()
		if s.Concurrent {
			c.concurrently(st, "CREATE INDEX CONCURRENTLY")
		} else if !c.created[s.Relation.Relname] {
			c.flag(st, "require-concurrent-index-creation", "builds index %s on %s while blocking writes", s.Idxname, s.Relation.Relname)
		}
	case n.GetDropStmt() != nil:
		s := n.GetDropStmt()
		switch s.RemoveType {
		case pg_query.ObjectType_OBJECT_INDEX:
			if s.Concurrent {
				c.concurrently(st, "DROP INDEX CONCURRENTLY")
			} else {
				c.flag(st, "require-concurrent-index-deletion", "drops an index under ACCESS EXCLUSIVE on its table")
				c.exclusive(st)
			}
		case pg_query.ObjectType_OBJECT_TABLE:
			for _, o := range s.Objects {
				name := sqlsrc.Last(o.GetList().GetItems())
				if !c.created[name] {
					c.flag(st, "dropping-table", "drops table %s", name)
					c.exclusive(st)
				}
			}
		}
	case n.GetReindexStmt() != nil:
		s := n.GetReindexStmt()
		if hasOption(s.Params, "concurrently") {
			c.concurrently(st, "REINDEX CONCURRENTLY")
		} else {
			c.flag(st, "reindex-without-concurrently", "rebuilds without CONCURRENTLY")
		}
	case n.GetVacuumStmt() != nil:
		s := n.GetVacuumStmt()
		if s.IsVacuumcmd && hasOption(s.Options, "full") {
			c.flag(st, "table-rewrite", "VACUUM FULL rewrites the table")
			c.exclusive(st)
		}
	case n.GetClusterStmt() != nil:
		c.flag(st, "table-rewrite", "CLUSTER rewrites the table")
		c.exclusive(st)
	case n.GetLockStmt() != nil:
		c.flag(st, "explicit-lock", "locks %s explicitly", lockedNames(n.GetLockStmt()))
		c.exclusive(st)
	case n.GetAlterEnumStmt() != nil:
		s := n.GetAlterEnumStmt()
		if s.OldVal != "" {
			c.flag(st, "enum-value-rename", "renames label %q of %s to %q", s.OldVal, sqlsrc.Names(s.TypeName), s.NewVal)
		}
	case n.GetRenameStmt() != nil:
		s := n.GetRenameStmt()
		if s.Relation == nil || c.created[s.Relation.Relname] {
			return
		}
		switch s.RenameType {
		case pg_query.ObjectType_OBJECT_COLUMN:
			c.flag(st, "renaming-column", "renames %s.%s to %s", s.Relation.Relname, s.Subname, s.Newname)
			c.exclusive(st)
		case pg_query.ObjectType_OBJECT_TABLE:
			c.flag(st, "renaming-table", "renames %s to %s", s.Relation.Relname, s.Newname)
			c.exclusive(st)
		}
	case n.GetAlterTableStmt() != nil:
		c.alterTable(st, n.GetAlterTableStmt())
	}
}

func (c *checker) concurrently(st sqlsrc.Statement, what string) {
	if !c.inTx() {
		return
	}
	where := "inside BEGIN ... COMMIT"
	switch {
	case c.embedded:
		where = "in a sql operation, which online runs in a transaction"
	case c.txDepth == 0 && c.f.Tool == sqlsrc.Goose:
		where = "in a goose file, which goose runs in a transaction (no -- +goose NO TRANSACTION)"
	case c.txDepth == 0 && c.f.Tool == sqlsrc.GolangMigrate:
		where = "in a golang-migrate file with several statements, which PostgreSQL runs as one implicit transaction"
	}
	c.flag(st, "concurrently-in-transaction", "%s %s", what, where)
}

func hasOption(opts []*pg_query.Node, name string) bool {
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, name) {
			if d.Arg != nil {
				if v, _ := sqlsrc.Expr(d.Arg); strings.EqualFold(v, "false") || v == "0" {
					return false
				}
			}
			return true
		}
	}
	return false
}

func lockedNames(s *pg_query.LockStmt) string {
	var names []string
	for _, r := range s.Relations {
		names = append(names, r.GetRangeVar().GetRelname())
	}
	return strings.Join(names, ", ")
}

func typeText(tn *pg_query.TypeName) string {
	t, err := sqlsrc.Type(tn)
	if err != nil {
		return ""
	}
	return strings.ToLower(t)
}
