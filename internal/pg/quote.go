package pg

import (
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
