package sqlcheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	pgq "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Error says why a fragment is not the one thing its field asks for.
type Error struct {
	// Expected names what the field must hold: "a single type name".
	Expected string
	// Pos is the 1-based character position in the fragment that the
	// problem is at, or 0 when it is not at one place.
	Pos    int
	Reason string
}

func (e *Error) Error() string {
	msg := "want " + e.Expected + ": " + e.Reason
	if e.Pos > 0 {
		msg += fmt.Sprintf(" (at character %d of the field)", e.Pos)
	}
	return msg
}

// probe describes how one kind of fragment is embedded: the statement
// prefix+fragment+suffix, a benign fragment that fits, and how to cut the
// fragment's subtree out of the parsed statement.
type probe struct {
	expected       string
	prefix, suffix string
	benign         string
	// cut returns the fragment's part of the tree and removes it from the
	// tree, or false when the tree does not have the probe's shape.
	cut func(r *pgq.ParseResult) ([]proto.Message, bool)
	// slot checks what fills the slot, beyond containing no write.
	slot func(parts []proto.Message) string
}

func selectTarget(r *pgq.ParseResult) *pgq.ResTarget {
	if len(r.Stmts) != 1 {
		return nil
	}
	sel := r.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		return nil
	}
	return sel.TargetList[0].GetResTarget()
}

func alterCmd(r *pgq.ParseResult) *pgq.AlterTableCmd {
	if len(r.Stmts) != 1 {
		return nil
	}
	alt := r.Stmts[0].GetStmt().GetAlterTableStmt()
	if alt == nil || len(alt.Cmds) != 1 {
		return nil
	}
	return alt.Cmds[0].GetAlterTableCmd()
}

func columnConstraint(r *pgq.ParseResult) *pgq.Constraint {
	if len(r.Stmts) != 1 {
		return nil
	}
	cs := r.Stmts[0].GetStmt().GetCreateStmt()
	if cs == nil || len(cs.TableElts) != 1 {
		return nil
	}
	cd := cs.TableElts[0].GetColumnDef()
	if cd == nil || len(cd.Constraints) != 1 {
		return nil
	}
	return cd.Constraints[0].GetConstraint()
}

func indexStmt(r *pgq.ParseResult) *pgq.IndexStmt {
	if len(r.Stmts) != 1 {
		return nil
	}
	return r.Stmts[0].GetStmt().GetIndexStmt()
}

func nodes(ns []*pgq.Node) []proto.Message {
	out := make([]proto.Message, len(ns))
	for i, n := range ns {
		out[i] = n
	}
	return out
}

func one(n *pgq.Node) ([]proto.Message, bool) {
	if n == nil {
		return nil, false
	}
	return []proto.Message{n}, true
}

// exprSlot refuses what parses as an expression but is a list: "(a, b)"
// is an implicit ROW, which in a field would be a second value.
func exprSlot(parts []proto.Message) string {
	if len(parts) != 1 {
		return "more than one expression"
	}
	if n, ok := parts[0].(*pgq.Node); ok {
		if row := n.GetRowExpr(); row != nil && row.RowFormat == pgq.CoercionForm_COERCE_IMPLICIT_CAST {
			return "a list of values separated by commas, not one expression"
		}
	}
	return ""
}

var (
	typeProbe = &probe{
		expected: "a single type name",
		prefix:   "SELECT NULL::", benign: "int",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			tc := selectTarget(r).GetVal().GetTypeCast()
			if tc == nil || tc.TypeName == nil || tc.GetArg().GetAConst() == nil || !tc.GetArg().GetAConst().Isnull {
				return nil, false
			}
			tn := tc.TypeName
			tc.TypeName = nil
			return []proto.Message{tn}, true
		},
		slot: func(parts []proto.Message) string {
			tn := parts[0].(*pgq.TypeName)
			if tn.Setof || tn.PctType {
				return "SETOF and %TYPE are not column types"
			}
			return ""
		},
	}
	exprProbe = &probe{
		expected: "a single SQL expression",
		prefix:   "SELECT (", suffix: ")", benign: "1",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			rt := selectTarget(r)
			if rt == nil || rt.Name != "" {
				return nil, false
			}
			v := rt.Val
			rt.Val = nil
			return one(v)
		},
		slot: exprSlot,
	}
	predicateProbe = &probe{
		expected: "a single boolean expression",
		prefix:   "CREATE INDEX i ON t (c) WHERE ", benign: "true",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			ix := indexStmt(r)
			if ix == nil {
				return nil, false
			}
			w := ix.WhereClause
			ix.WhereClause = nil
			return one(w)
		},
		slot: exprSlot,
	}
	defaultProbe = &probe{
		expected: "a single default expression",
		prefix:   "CREATE TABLE t (c int DEFAULT ", suffix: ")", benign: "1",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			con := columnConstraint(r)
			if con == nil || con.Contype != pgq.ConstrType_CONSTR_DEFAULT {
				return nil, false
			}
			e := con.RawExpr
			con.RawExpr = nil
			return one(e)
		},
		slot: exprSlot,
	}
	setDefaultProbe = &probe{
		expected: "a single default expression",
		prefix:   "ALTER TABLE t ALTER COLUMN c SET DEFAULT ", benign: "1",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			cmd := alterCmd(r)
			if cmd == nil || cmd.Subtype != pgq.AlterTableType_AT_ColumnDefault {
				return nil, false
			}
			e := cmd.Def
			cmd.Def = nil
			return one(e)
		},
		slot: exprSlot,
	}
	checkProbe = &probe{
		expected: "a single boolean expression (the body of CHECK (...))",
		prefix:   "ALTER TABLE t ADD CONSTRAINT c CHECK (", suffix: ")", benign: "true",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			con := alterCmd(r).GetDef().GetConstraint()
			if con == nil || con.Contype != pgq.ConstrType_CONSTR_CHECK {
				return nil, false
			}
			e := con.RawExpr
			con.RawExpr = nil
			return one(e)
		},
		slot: exprSlot,
	}
	generatedProbe = &probe{
		expected: "a single generation expression",
		prefix:   "CREATE TABLE t (c int GENERATED ALWAYS AS (", suffix: ") STORED)", benign: "1",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			con := columnConstraint(r)
			if con == nil || con.Contype != pgq.ConstrType_CONSTR_GENERATED {
				return nil, false
			}
			e := con.RawExpr
			con.RawExpr = nil
			return one(e)
		},
		slot: exprSlot,
	}
	sequenceProbe = &probe{
		expected: "identity sequence options (such as START WITH 10 INCREMENT BY 5)",
		prefix:   "CREATE TABLE t (c int GENERATED BY DEFAULT AS IDENTITY (", suffix: "))", benign: "START WITH 1",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			con := columnConstraint(r)
			if con == nil || con.Contype != pgq.ConstrType_CONSTR_IDENTITY || len(con.Options) == 0 {
				return nil, false
			}
			o := con.Options
			con.Options = nil
			return nodes(o), true
		},
	}
	storageProbe = &probe{
		expected: "storage parameters (name = value, separated by commas)",
		prefix:   "CREATE INDEX i ON t (c) WITH (", suffix: ")", benign: "fillfactor = 70",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			ix := indexStmt(r)
			if ix == nil || len(ix.Options) == 0 {
				return nil, false
			}
			o := ix.Options
			ix.Options = nil
			return nodes(o), true
		},
	}
	opclassParamProbe = &probe{
		expected: "a single operator class parameter value",
		prefix:   "CREATE INDEX i ON t (c o (p = ", suffix: "))", benign: "1",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			ix := indexStmt(r)
			if ix == nil || len(ix.IndexParams) != 1 {
				return nil, false
			}
			el := ix.IndexParams[0].GetIndexElem()
			if el == nil || len(el.Opclassopts) != 1 {
				return nil, false
			}
			de := el.Opclassopts[0].GetDefElem()
			if de == nil {
				return nil, false
			}
			a := de.Arg
			de.Arg = nil
			return one(a)
		},
	}
	exclusionProbe = &probe{
		expected: "exclusion constraint elements (such as: during WITH &&, room WITH =)",
		prefix:   "ALTER TABLE t ADD CONSTRAINT c EXCLUDE USING gist (", suffix: ")", benign: "c WITH =",
		cut: func(r *pgq.ParseResult) ([]proto.Message, bool) {
			con := alterCmd(r).GetDef().GetConstraint()
			if con == nil || con.Contype != pgq.ConstrType_CONSTR_EXCLUSION || len(con.Exclusions) == 0 {
				return nil, false
			}
			x := con.Exclusions
			con.Exclusions = nil
			return nodes(x), true
		},
	}
)

// TypeName proves s is exactly one type name, with its modifiers and array
// bounds ("numeric(10,2)", "timestamp with time zone", "text[]").
func TypeName(s string) error { return typeProbe.check(s) }

// Expr proves s is exactly one scalar expression, embedded in parentheses:
// up, down, and an index's expression column.
func Expr(s string) error { return exprProbe.check(s) }

// Predicate proves s is exactly one expression, as embedded after WHERE at
// the end of CREATE INDEX (and so also inside WHERE (...)).
func Predicate(s string) error { return predicateProbe.check(s) }

// Default proves s is exactly one expression as a column definition's
// DEFAULT takes it: unparenthesized, followed by the column's other
// constraints.
func Default(s string) error { return defaultProbe.check(s) }

// SetDefault proves s is exactly one expression as ALTER COLUMN ... SET
// DEFAULT takes it, at the end of the statement.
func SetDefault(s string) error { return setDefaultProbe.check(s) }

// Check proves s is exactly one expression, the body of CHECK (...).
func Check(s string) error { return checkProbe.check(s) }

// Generated proves s is exactly one expression, the body of GENERATED
// ALWAYS AS (...) STORED.
func Generated(s string) error { return generatedProbe.check(s) }

// SequenceOptions proves s is a list of sequence options, as embedded in
// GENERATED ... AS IDENTITY (...).
func SequenceOptions(s string) error { return sequenceProbe.check(s) }

// StorageParameters proves s is a list of name = value storage parameters,
// as embedded in WITH (...).
func StorageParameters(s string) error { return storageProbe.check(s) }

// OpclassParam proves s is one value of an operator class parameter, as
// embedded in opclass (name = <s>).
func OpclassParam(s string) error { return opclassParamProbe.check(s) }

// ExclusionElements proves s is a list of exclusion constraint elements,
// as embedded in EXCLUDE USING method (...).
func ExclusionElements(s string) error { return exclusionProbe.check(s) }

// check runs the three proofs described in the package documentation.
func (p *probe) check(s string) error {
	fail := func(pos int, format string, args ...any) error {
		return &Error{Expected: p.expected, Pos: pos, Reason: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(s) == "" {
		return fail(0, "the field is empty")
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fail(utf8.RuneCountInString(s[:i])+1, "it holds a NUL byte")
	}
	if !utf8.ValidString(s) {
		return fail(0, "it is not valid UTF-8")
	}
	if err := tokens(s, fail); err != nil {
		return err
	}
	stmt := p.prefix + s + p.suffix
	tree, err := pgq.Parse(stmt)
	if err != nil {
		var pe *parser.Error
		pos := 0
		if errors.As(err, &pe) {
			pos = pe.Cursorpos - utf8.RuneCountInString(p.prefix)
			if pos < 1 || pos > utf8.RuneCountInString(s)+1 {
				pos = 0
			}
		}
		return fail(pos, "%s", err.Error())
	}
	parts, ok := p.cut(tree)
	if !ok {
		return fail(0, "it does not fit its place in the statement as one %s", strings.TrimPrefix(strings.TrimPrefix(p.expected, "a single "), "a "))
	}
	skeleton, err := p.skeleton()
	if err != nil {
		return err
	}
	clearLocations(tree.ProtoReflect())
	if !proto.Equal(tree, skeleton) {
		return fail(0, "it adds to the statement around it (more than one %s, or a clause of its own)", strings.TrimPrefix(strings.TrimPrefix(p.expected, "a single "), "a "))
	}
	for _, part := range parts {
		if w := writes(part.ProtoReflect()); w != "" {
			return fail(0, "it holds %s, which writes", w)
		}
	}
	if p.slot != nil {
		if why := p.slot(parts); why != "" {
			return fail(0, "%s", why)
		}
	}
	return nil
}

// skeleton is the probe's tree around its benign value, with the slot cut
// out and locations cleared.
func (p *probe) skeleton() (*pgq.ParseResult, error) {
	tree, err := pgq.Parse(p.prefix + p.benign + p.suffix)
	if err != nil {
		return nil, fmt.Errorf("parse the probe for %s: %w", p.expected, err)
	}
	if _, ok := p.cut(tree); !ok {
		return nil, fmt.Errorf("the probe for %s does not have its own shape", p.expected)
	}
	clearLocations(tree.ProtoReflect())
	return tree, nil
}

// tokens scans the fragment alone: whole tokens, no ";", balanced
// brackets, no "--" comment at its very end.
func tokens(s string, fail func(int, string, ...any) error) error {
	res, err := pgq.Scan(s)
	if err != nil {
		return fail(0, "%s", err.Error())
	}
	pos := func(byteOff int32) int { return utf8.RuneCountInString(s[:byteOff]) + 1 }
	var open []pgq.Token
	for _, t := range res.Tokens {
		switch t.Token {
		case pgq.Token_ASCII_59:
			return fail(pos(t.Start), "it holds a \";\", which would end the statement it is embedded in")
		case pgq.Token_ASCII_40, pgq.Token_ASCII_91:
			open = append(open, t.Token)
		case pgq.Token_ASCII_41, pgq.Token_ASCII_93:
			want := pgq.Token_ASCII_40
			if t.Token == pgq.Token_ASCII_93 {
				want = pgq.Token_ASCII_91
			}
			if len(open) == 0 || open[len(open)-1] != want {
				return fail(pos(t.Start), "it closes a bracket it did not open")
			}
			open = open[:len(open)-1]
		case pgq.Token_SCONST:
			// In '...' and N'...' a backslash escapes the quote only when
			// standard_conforming_strings is off (a session, or a function
			// compiled in one, may have it off): then the string would end
			// elsewhere than the parser here sees. E'...' means one thing
			// under both settings.
			text := s[t.Start:t.End]
			if (text[0] == '\'' || (text[0] == 'N' || text[0] == 'n') && len(text) > 1 && text[1] == '\'') && strings.ContainsRune(text, '\\') {
				return fail(pos(t.Start), "a backslash in a '...' string means different things depending on standard_conforming_strings; write the string as E'...' with the backslash doubled")
			}
		case pgq.Token_SQL_COMMENT:
			if int(t.End) >= len(s) {
				return fail(pos(t.Start), "it ends in a -- comment, which would hide what follows it in the statement; end the comment with a line break")
			}
		}
	}
	if len(open) > 0 {
		return fail(0, "it leaves a bracket open")
	}
	// The scanner skips what it does not return; a fragment whose last
	// token ends early has trailing text it ignored (a NUL byte is refused
	// above, so this is white space).
	return nil
}

// clearLocations zeroes the positions in a tree, which differ between a
// fragment and the benign value, so trees compare by structure.
func clearLocations(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				clearLocations(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			clearLocations(v.Message())
		case fd.Kind() == protoreflect.Int32Kind && (fd.Name() == "location" || fd.Name() == "stmt_location" || fd.Name() == "stmt_len"):
			m.Clear(fd)
		}
		return true
	})
}

// writes names the first statement in a tree that writes or locks, or "".
func writes(m protoreflect.Message) string {
	switch n := m.Interface().(type) {
	case *pgq.InsertStmt:
		return "an INSERT"
	case *pgq.UpdateStmt:
		return "an UPDATE"
	case *pgq.DeleteStmt:
		return "a DELETE"
	case *pgq.MergeStmt:
		return "a MERGE"
	case *pgq.SelectStmt:
		if n.IntoClause != nil {
			return "a SELECT INTO"
		}
		if len(n.LockingClause) > 0 {
			return "a SELECT ... FOR UPDATE/SHARE"
		}
	}
	found := ""
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && found == ""; i++ {
				found = writes(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			found = writes(v.Message())
		}
		return found == ""
	})
	return found
}

// Columns returns the names an expression reads as columns, sorted: the
// last part of every column reference, at the top
// level and in subqueries (where a name may be the subquery's own column:
// callers use it to know what an expression may depend on, so over-report
// rather than miss). s must pass Expr.
func Columns(s string) ([]string, error) {
	if err := Expr(s); err != nil {
		return nil, err
	}
	tree, err := pgq.Parse(exprProbe.prefix + s + exprProbe.suffix)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pgq.ColumnRef); ok && len(cr.Fields) > 0 {
			if name := cr.Fields[len(cr.Fields)-1].GetString_(); name != nil && !seen[name.Sval] {
				seen[name.Sval] = true
				out = append(out, name.Sval)
			}
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				walk(v.Message())
			}
			return true
		})
	}
	walk(tree.ProtoReflect())
	slices.Sort(out)
	return out, nil
}

// Script checks the raw SQL of a "sql" operation, which may hold any
// statements (that is what the operation is for), but runs inside the
// transaction of its step: it must parse, and hold no transaction control
// (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION), which would end
// that transaction and split the step from online's record of it.
func Script(s string) error {
	const expected = "SQL statements that run inside online's transaction"
	if i := strings.IndexByte(s, 0); i >= 0 {
		return &Error{Expected: expected, Pos: utf8.RuneCountInString(s[:i]) + 1, Reason: "it holds a NUL byte"}
	}
	tree, err := pgq.Parse(s)
	if err != nil {
		pos := 0
		var pe *parser.Error
		if errors.As(err, &pe) {
			pos = pe.Cursorpos
		}
		return &Error{Expected: expected, Pos: pos, Reason: err.Error()}
	}
	for _, st := range tree.Stmts {
		if st.GetStmt().GetTransactionStmt() != nil {
			return &Error{Expected: expected, Pos: utf8.RuneCountInString(s[:st.StmtLocation]) + 1,
				Reason: "it holds transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT...), which would end the transaction online runs the step in"}
		}
	}
	return nil
}

// TypeNameParts returns the parts of a type's name as PostgreSQL folds them
// ("public.My" is ["public", "my"]; int is ["pg_catalog", "int4"]). s must
// pass TypeName.
func TypeNameParts(s string) ([]string, error) {
	if err := TypeName(s); err != nil {
		return nil, err
	}
	tree, err := pgq.Parse(typeProbe.prefix + s + typeProbe.suffix)
	if err != nil {
		return nil, err
	}
	tn := selectTarget(tree).GetVal().GetTypeCast().GetTypeName()
	var out []string
	for _, n := range tn.GetNames() {
		out = append(out, n.GetString_().GetSval())
	}
	return out, nil
}
