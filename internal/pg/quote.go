package pg

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Ident quotes a possibly schema-qualified identifier: Ident("public", "users")
// is "public"."users". Empty parts are skipped.
func Ident(parts ...string) string {
	var id pgx.Identifier
	for _, p := range parts {
		if p != "" {
			id = append(id, p)
		}
	}
	return id.Sanitize()
}

// Idents quotes each name and joins them with ", ".
func Idents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = Ident(n)
	}
	return strings.Join(q, ", ")
}

// Literal quotes s as a SQL string literal. Backslashes force the E” form so
// the result means the same whatever standard_conforming_strings says.
func Literal(s string) string {
	s = strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return `E'` + strings.ReplaceAll(s, `\`, `\\`) + `'`
	}
	return "'" + s + "'"
}

// Paren wraps a SQL expression in parentheses. A "--" comment inside it
// would swallow a closing parenthesis on the same line, so then the closing
// one goes on its own line.
func Paren(expr string) string {
	if strings.Contains(expr, "--") {
		return "(" + expr + "\n)"
	}
	return "(" + expr + ")"
}

// DollarQuote quotes body (a function body, a DO block) with a dollar-quote
// tag that does not occur in it: expressions and quoted names in it are
// arbitrary text. Bodies should start and end with a line break, so that no
// tag can form across the joins.
func DollarQuote(body string) string {
	tag := "$online$"
	for i := 1; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$online%d$", i)
	}
	return tag + body + tag
}
