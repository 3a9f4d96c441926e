package sqlsrc

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Expr renders an expression node back to SQL text with pg_query's
// deparser, by deparsing "SELECT <expr>" and cutting the keyword off: the
// deparser works on whole statements only.
func Expr(n *pg_query.Node) (string, error) {
	sel := &pg_query.SelectStmt{TargetList: []*pg_query.Node{pg_query.MakeResTargetNodeWithVal(n, 0)}}
	out, err := deparse(&pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}})
	if err != nil {
		return "", fmt.Errorf("deparse expression: %w", err)
	}
	return strings.TrimPrefix(out, "SELECT "), nil
}

// Type renders a type name ("varchar(20)", "timestamptz", "text[]").
func Type(tn *pg_query.TypeName) (string, error) {
	cast := &pg_query.TypeCast{Arg: &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true}}}, TypeName: tn}
	s, err := Expr(&pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: cast}})
	if err != nil {
		return "", fmt.Errorf("deparse type: %w", err)
	}
	return strings.TrimPrefix(s, "NULL::"), nil
}

// Stmt renders a statement back to SQL text.
func Stmt(n *pg_query.Node) (string, error) {
	return deparse(n)
}

// treeVersion is the parse tree version the deparser checks; trees built
// here by hand must carry it.
var treeVersion = func() int32 {
	r, _ := pg_query.Parse("SELECT")
	return r.GetVersion()
}()

func deparse(n *pg_query.Node) (string, error) {
	return pg_query.Deparse(&pg_query.ParseResult{Version: treeVersion, Stmts: []*pg_query.RawStmt{{Stmt: n}}})
}

// TypeBase is the last part of a type's name, lower case ("int4",
// "varchar", "timestamptz"), for rules that look at the kind of type.
func TypeBase(tn *pg_query.TypeName) string {
	if tn == nil || len(tn.Names) == 0 {
		return ""
	}
	return strings.ToLower(tn.Names[len(tn.Names)-1].GetString_().GetSval())
}

// Names joins a list of String nodes ("public.users" from a qualified name).
func Names(list []*pg_query.Node) string {
	parts := make([]string, 0, len(list))
	for _, n := range list {
		parts = append(parts, n.GetString_().GetSval())
	}
	return strings.Join(parts, ".")
}

// Last is the last of a list of String nodes: an object's own name without
// its schema.
func Last(list []*pg_query.Node) string {
	if len(list) == 0 {
		return ""
	}
	return list[len(list)-1].GetString_().GetSval()
}

// ColumnRefs lists the distinct column names an expression reads, in order.
func ColumnRefs(n *pg_query.Node) []string {
	var out []string
	seen := map[string]bool{}
	walk(n, func(x *pg_query.Node) {
		if cr := x.GetColumnRef(); cr != nil && len(cr.Fields) > 0 {
			if name := cr.Fields[len(cr.Fields)-1].GetString_(); name != nil && !seen[name.Sval] {
				seen[name.Sval] = true
				out = append(out, name.Sval)
			}
		}
	})
	return out
}

// FuncNames lists the (unqualified, lower-case) names of the functions an
// expression calls, and reports whether it holds anything else that is
// evaluated per row at run time (a subquery, nextval through a sequence
// default, a SQL value function such as CURRENT_TIMESTAMP).
func FuncNames(n *pg_query.Node) (names []string, sqlValueFunc bool) {
	walk(n, func(x *pg_query.Node) {
		if fc := x.GetFuncCall(); fc != nil {
			names = append(names, strings.ToLower(Last(fc.Funcname)))
		}
		if x.GetSqlvalueFunction() != nil {
			sqlValueFunc = true
		}
	})
	return names, sqlValueFunc
}

// walk visits every node of an expression tree through its protobuf
// reflection, so no node kind is missed.
func walk(n *pg_query.Node, visit func(*pg_query.Node)) {
	if n == nil {
		return
	}
	visit(n)
	msg := n.ProtoReflect()
	inner := msg.WhichOneof(msg.Descriptor().Oneofs().Get(0))
	if inner == nil {
		return
	}
	walkMessage(msg.Get(inner).Message(), visit)
}

func walkMessage(m protoreflect.Message, visit func(*pg_query.Node)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		visitOne := func(sub protoreflect.Message) {
			if node, ok := sub.Interface().(*pg_query.Node); ok {
				walk(node, visit)
				return
			}
			walkMessage(sub, visit)
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visitOne(l.Get(i).Message())
			}
		case fd.IsMap():
		default:
			visitOne(v.Message())
		}
		return true
	})
}
