package lint

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"gopkg.in/yaml.v3"

	"github.com/onlinepg/online/internal/sqlsrc"
	"github.com/onlinepg/online/operations"
)

// lintMigration lints an online migration file: the SQL of its sql
// operations (which online runs in a transaction, under lock_timeout) and
// the defaults of add_column, where a volatile one rewrites the table.
// The rest of the format is online's own operations, safe by construction.
func lintMigration(rep *Report, k *knowledge, name string, data []byte) error {
	if _, err := operations.Parse(name, data); err != nil {
		return &InputError{File: name, Err: err}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return &InputError{File: name, Err: err}
	}
	fileLines := strings.Split(string(data), "\n")
	ops := field(root.Content[0], "operations")
	if ops == nil {
		return nil
	}
	for _, item := range ops.Content {
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
			continue
		}
		kind, body := item.Content[0].Value, item.Content[1]
		itemIgnores := ignoresAbove(fileLines, item.Line)
		switch kind {
		case "sql":
			up := field(body, "up")
			if up == nil {
				continue
			}
			f, err := sqlsrc.Parse(name, []byte(up.Value))
			if err != nil {
				return &InputError{File: name, Err: fmt.Errorf("operation at line %d, sql.up: %w", item.Line, err)}
			}
			f.Path = name
			c := newChecker(f, k)
			c.embedded = true
			c.extraIgnores = itemIgnores
			c.place = embeddedPlace(up, fileLines)
			c.run()
			rep.Statements += len(f.Statements)
			c.settle(rep)
		case "add_column":
			def := field(field(body, "column"), "default")
			if def == nil || def.Tag == "!!null" {
				continue
			}
			rep.Statements++
			expr, err := pg_query.Parse("SELECT " + def.Value)
			if err != nil || len(expr.Stmts) != 1 {
				continue // the expression check of fields is not lint's
			}
			target := expr.Stmts[0].Stmt.GetSelectStmt().GetTargetList()
			if len(target) != 1 {
				continue
			}
			fn := volatileCall(target[0].GetResTarget().GetVal())
			if fn == "" {
				continue
			}
			f := &sqlsrc.File{Path: name, Lines: fileLines}
			c := newChecker(f, k)
			c.embedded = true
			c.extraIgnores = itemIgnores
			st := sqlsrc.Statement{Text: "default: " + def.Value, Line: def.Line, Col: def.Column}
			c.flag(st, "volatile-default", "add_column's default calls %s(), which is volatile: PostgreSQL rewrites the table under ACCESS EXCLUSIVE to fill it", fn)
			c.settle(rep)
		}
	}
	return nil
}

func field(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// embeddedPlace maps a position in a YAML scalar's text to the file. A block
// scalar (| or >) starts on the next line at its indentation; a flow scalar
// on its own line and column (past the quote when quoted).
func embeddedPlace(n *yaml.Node, lines []string) func(int, int) (int, int) {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		indent := 0
		if n.Line < len(lines) {
			l := lines[n.Line]
			indent = len(l) - len(strings.TrimLeft(l, " "))
		}
		return func(line, col int) (int, int) { return n.Line + line, col + indent }
	}
	shift := 0
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		shift = 1
	}
	return func(line, col int) (int, int) {
		if line == 1 {
			return n.Line, n.Column + col - 1 + shift
		}
		return n.Line + line - 1, col
	}
}
