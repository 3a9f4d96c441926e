package operations

import (
	"fmt"
	"maps"
	"slices"
	"strings"

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

func sqlFields(op Operation) []sqlField {
	switch op := op.(type) {
	case *AddColumn:
		return append(columnSQL("column", &op.Column), sqlField{"up", op.Up, sqlcheck.Expr})
	case *CreateTable:
		var fs []sqlField
		for i := range op.Columns {
			fs = append(fs, columnSQL(fmt.Sprintf("columns[%d]", i), &op.Columns[i])...)
		}
		for i, con := range op.Constraints {
			field := fmt.Sprintf("constraints[%d]", i)
			fs = append(fs, sqlField{field + ".check", con.Check, sqlcheck.Check})
			if x := con.Exclude; x != nil {
				fs = append(fs,
					sqlField{field + ".exclude.elements", x.Elements, sqlcheck.ExclusionElements},
					sqlField{field + ".exclude.predicate", x.Predicate, sqlcheck.Predicate})
			}
			fs = append(fs, indexParamsSQL(field, con.IndexParameters)...)
		}
		return fs
	case *AlterColumn:
		fs := []sqlField{
			{"type", op.Type, sqlcheck.TypeName},
			{"up", op.Up, sqlcheck.Expr},
			{"down", op.Down, sqlcheck.Expr},
		}
		if set, def := nodeValue(op.Default); set && def != nil {
			fs = append(fs, sqlField{"default", *def, sqlcheck.SetDefault})
		}
		if op.Check != nil {
			fs = append(fs, sqlField{"check.constraint", op.Check.Constraint, sqlcheck.Check})
		}
		return fs
	case *DropColumn:
		return []sqlField{{"down", op.Down, sqlcheck.Expr}}
	case *CreateConstraint:
		fs := []sqlField{{"check", op.Check, sqlcheck.Check}}
		if x := op.Exclude; x != nil {
			fs = append(fs,
				sqlField{"exclude.elements", x.Elements, sqlcheck.ExclusionElements},
				sqlField{"exclude.predicate", x.Predicate, sqlcheck.Predicate})
		}
		fs = append(fs, indexParamsSQL("", op.IndexParameters)...)
		return append(fs, conversionsSQL(op.Up, op.Down)...)
	case *DropConstraint:
		return []sqlField{{"up", op.Up, sqlcheck.Expr}, {"down", op.Down, sqlcheck.Expr}}
	case *DropMultiColumnConstraint:
		return conversionsSQL(op.Up, op.Down)
	case *CreateIndex:
		fs := []sqlField{
			{"predicate", op.Predicate, sqlcheck.Predicate},
			{"storage_parameters", op.StorageParameters, sqlcheck.StorageParameters},
		}
		for i, col := range op.Columns {
			field := fmt.Sprintf("columns[%d]", i)
			fs = append(fs, sqlField{field + ".expression", col.Expression, sqlcheck.Expr})
			if col.Opclass != nil {
				// Each item is "name=value": the name is quoted as an
				// identifier, the value embedded as written.
				for j, item := range col.Opclass.Params {
					if _, value, ok := strings.Cut(item, "="); ok {
						fs = append(fs, sqlField{fmt.Sprintf("%s.opclass.params[%d]", field, j), strings.TrimSpace(value), sqlcheck.OpclassParam})
					}
				}
			}
		}
		return fs
	case *UpdateRows:
		fs := []sqlField{{"where", op.Where, sqlcheck.Predicate}, {"down_where", op.DownWhere, sqlcheck.Predicate}}
		for _, name := range slices.Sorted(maps.Keys(op.Set)) {
			fs = append(fs, sqlField{"set." + name, op.Set[name], sqlcheck.Expr})
		}
		return append(fs, conversionsSQL(nil, op.Down)...)
	case *RawSQL:
		// Raw SQL is the author's by design; it must still stay inside the
		// transaction online runs it in.
		return []sqlField{{"up", op.Up, sqlcheck.Script}, {"down", op.Down, sqlcheck.Script}}
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
