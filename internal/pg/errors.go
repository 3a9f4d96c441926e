package pg

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// StatementError wraps a server error with the SQL that caused it, so that the
// one renderer (Explain) can point at the failing position.
type StatementError struct {
	SQL string
	Err error
}

func (e *StatementError) Error() string { return e.Err.Error() }
func (e *StatementError) Unwrap() error { return e.Err }

// WithSQL attaches sql to err (nil stays nil).
func WithSQL(err error, sql string) error {
	if err == nil {
		return nil
	}
	var se *StatementError
	if errors.As(err, &se) {
		return err
	}
	return &StatementError{SQL: sql, Err: err}
}

// Explain renders err for a person: for a PostgreSQL error its SQLSTATE,
// message, DETAIL, HINT and, when the statement is known, the line with a
// caret under the failing position. Other errors come back as their text.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		// The server's error, if any, is in the message already, with its
		// SQLSTATE; what a person needs next is the likely fix.
		if h := ce.Hint(); h != "" {
			return err.Error() + "\n  HINT: " + h
		}
		return err.Error()
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString(err.Error())
	fmt.Fprintf(&b, "\n  SQLSTATE %s", pgErr.Code)
	if pgErr.Detail != "" {
		fmt.Fprintf(&b, "\n  DETAIL: %s", pgErr.Detail)
	}
	if pgErr.Hint != "" {
		fmt.Fprintf(&b, "\n  HINT: %s", pgErr.Hint)
	}
	var se *StatementError
	if errors.As(err, &se) && se.SQL != "" {
		b.WriteString("\n")
		b.WriteString(caret(se.SQL, int(pgErr.Position)))
	}
	return b.String()
}

// caret shows the line of sql holding the 1-based character position pos,
// with a caret under it; without a position, the statement's first line.
func caret(sql string, pos int) string {
	runes := []rune(sql)
	if pos <= 0 || pos > len(runes) {
		line, _, _ := strings.Cut(sql, "\n")
		return "  SQL: " + line
	}
	lineNo, start := 1, 0
	for i := 0; i < pos-1; i++ {
		if runes[i] == '\n' {
			lineNo++
			start = i + 1
		}
	}
	end := start
	for end < len(runes) && runes[end] != '\n' {
		end++
	}
	prefix := fmt.Sprintf("  LINE %d: ", lineNo)
	return prefix + string(runes[start:end]) + "\n" + strings.Repeat(" ", len(prefix)+pos-1-start) + "^"
}
