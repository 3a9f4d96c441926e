package sqlsrc

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// Tool names the migration tool a file was written for.
type Tool string

// Tools recognised.
const (
	Plain         Tool = "sql"
	GolangMigrate Tool = "golang-migrate"
	Goose         Tool = "goose"
	Flyway        Tool = "flyway"
)

// Statement is one top-level statement of a file.
type Statement struct {
	Node *pg_query.Node
	Text string // the statement as written, without the leading comments
	Line int    // 1-based line of its first token
	Col  int    // 1-based column (in bytes) of its first token
}

// File is a parsed SQL file.
type File struct {
	Path string
	Tool Tool
	// InTransaction is true when the tool runs the whole file in one
	// transaction block: goose without "-- +goose NO TRANSACTION", and
	// golang-migrate with more than one statement (it sends the file as one
	// simple query, which PostgreSQL runs as one implicit transaction).
	InTransaction bool
	Statements    []Statement
	// Lines are the file's lines, for rules that read comments.
	Lines []string
}

var (
	migrateName = regexp.MustCompile(`^\d+_.*\.up\.sql$`)
	flywayName  = regexp.MustCompile(`^V\d+([._]\d+)*__.+\.sql$`)
	gooseMarker = regexp.MustCompile(`(?m)^\s*--\s*\+goose\s+(Up|Down|NO TRANSACTION|StatementBegin|StatementEnd|ENVSUB ON|ENVSUB OFF)\b.*$`)
)

// DetectTool tells which tool a file belongs to from its name and content.
func DetectTool(path string, src []byte) Tool {
	base := filepath.Base(path)
	switch {
	case gooseMarker.Match(src):
		return Goose
	case migrateName.MatchString(base):
		return GolangMigrate
	case flywayName.MatchString(base):
		return Flyway
	}
	return Plain
}

// Parse reads src, named path, as a migration file of the tool it was
// written for and parses the statements that migrate up.
func Parse(path string, src []byte) (*File, error) {
	f := &File{Path: path, Tool: DetectTool(path, src)}
	text := string(src)
	if i := strings.IndexByte(text, 0); i >= 0 {
		// PostgreSQL ends a query string at a NUL byte; pg_query does not.
		line, col := position(text, i)
		return nil, fmt.Errorf("parse %s: line %d, column %d: a NUL byte, which PostgreSQL cannot read in SQL", path, line, col)
	}
	if f.Tool == Goose {
		text, f.InTransaction = gooseUp(text)
	}
	f.Lines = strings.Split(text, "\n")
	tree, err := pg_query.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, describeParseError(text, err))
	}
	for _, raw := range tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(text)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		first := skipSpaceAndComments(text, start, end)
		line, col := position(text, first)
		f.Statements = append(f.Statements, Statement{
			Node: raw.Stmt,
			Text: strings.TrimSpace(text[first:end]),
			Line: line,
			Col:  col,
		})
	}
	if f.Tool == GolangMigrate {
		f.InTransaction = len(f.Statements) > 1
	}
	return f, nil
}

// describeParseError adds the line and column to pg_query's message, which
// gives only a byte offset.
func describeParseError(text string, err error) error {
	var pe *parser.Error
	if !errors.As(err, &pe) || pe.Cursorpos <= 0 {
		return err
	}
	line, col := position(text, pe.Cursorpos-1)
	return fmt.Errorf("line %d, column %d: %s", line, col, pe.Message)
}

// gooseUp keeps the "-- +goose Up" sections of a goose file and blanks the
// rest, line breaks kept. It reports whether goose runs the file in a
// transaction (its default).
func gooseUp(text string) (string, bool) {
	lines := strings.Split(text, "\n")
	inTx := true
	up := false
	for i, l := range lines {
		m := gooseMarker.FindStringSubmatch(l)
		if m != nil {
			switch m[1] {
			case "Up":
				up = true
			case "Down":
				up = false
			case "NO TRANSACTION":
				inTx = false
			}
			lines[i] = ""
			continue
		}
		if !up {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n"), inTx
}

// skipSpaceAndComments returns the offset of the first token at or after
// start: pg_query's statement location starts right after the previous
// semicolon, comments included.
func skipSpaceAndComments(s string, i, end int) int {
	for i < end {
		switch {
		case s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f':
			i++
		case strings.HasPrefix(s[i:], "--"):
			nl := strings.IndexByte(s[i:], '\n')
			if nl < 0 {
				return end
			}
			i += nl + 1
		case strings.HasPrefix(s[i:], "/*"):
			// PostgreSQL's block comments nest.
			depth := 0
			for i < end {
				if strings.HasPrefix(s[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(s[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		default:
			return i
		}
	}
	return i
}

func position(s string, off int) (line, col int) {
	if off > len(s) {
		off = len(s)
	}
	line = 1 + strings.Count(s[:off], "\n")
	col = off - strings.LastIndexByte(s[:off], '\n')
	return line, col
}
