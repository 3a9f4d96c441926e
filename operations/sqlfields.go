package operations

import (
	"maps"
	"slices"

	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/internal/sqllex"
)

// sqlField is one field of an operation that carries SQL text, and the
// proof that the text is exactly one thing of the field's kind as online
// embeds it.
type sqlField struct {
	field string
	value string
	check func(string) error
}

// checkSQLFields proves every field of op that carries SQL before anything
// is compiled or run: a field that held a second statement or an extra
// clause would otherwise be spliced into DDL, trigger code or the backfill
// as written. Empty fields are left to the operations' own validation.
func checkSQLFields(op Operation) error {
	for _, f := range sqlFields(op) {
		if f.value == "" {
			continue
		}
		if err := f.check(f.value); err != nil {
			return errField(f.field, "%w", err)
		}
	}
	return nil
}

// sqlFielder is an operation with fields that carry SQL text. Each lists
// them, with the proof each must pass, in its own file.
type sqlFielder interface {
	sqlFields() []sqlField
}

// sqlFields lists the SQL fields of op; an operation without any has none.
func sqlFields(op Operation) []sqlField {
	if f, ok := op.(sqlFielder); ok {
		return f.sqlFields()
	}
	return nil
}

// columnSQL lists the SQL fields of a column definition. Collations and
// operator classes are not here: online quotes them as identifiers.
func columnSQL(field string, col *Column) []sqlField {
	fs := []sqlField{{field + ".type", col.Type, sqlcheck.TypeName}}
	if col.Default != nil {
		fs = append(fs, sqlField{field + ".default", *col.Default, sqlcheck.Default})
	}
	if col.Check != nil {
		fs = append(fs, sqlField{field + ".check.constraint", col.Check.Constraint, sqlcheck.Check})
	}
	if g := col.Generated; g != nil {
		fs = append(fs, sqlField{field + ".generated.expression", g.Expression, sqlcheck.Generated})
		if g.Identity != nil {
			fs = append(fs, sqlField{field + ".generated.identity.sequence_options", g.Identity.SequenceOptions, sqlcheck.SequenceOptions})
		}
	}
	return fs
}

func indexParamsSQL(prefix string, p *IndexParameters) []sqlField {
	if p == nil {
		return nil
	}
	field := "index_parameters.storage_parameters"
	if prefix != "" {
		field = prefix + "." + field
	}
	return []sqlField{{field, p.StorageParameters, sqlcheck.StorageParameters}}
}

func conversionsSQL(up, down map[string]string) []sqlField {
	var fs []sqlField
	for _, name := range slices.Sorted(maps.Keys(up)) {
		fs = append(fs, sqlField{"up." + name, up[name], sqlcheck.Expr})
	}
	for _, name := range slices.Sorted(maps.Keys(down)) {
		fs = append(fs, sqlField{"down." + name, down[name], sqlcheck.Expr})
	}
	return fs
}

// exprColumns returns which of names the expression reads as a column,
// from PostgreSQL's parse tree: exact where the lexer of ReferencedColumns
// guesses (a keyword, a function name, a named argument is never a column).
// Text that does not parse as one expression falls back to the lexer.
func exprColumns(expr string, names []string) []string {
	cols, err := sqlcheck.Columns(expr)
	if err != nil {
		return sqllex.ReferencedColumns(expr, names)
	}
	var out []string
	for _, n := range names {
		if slices.Contains(cols, n) {
			out = append(out, n)
		}
	}
	return out
}
