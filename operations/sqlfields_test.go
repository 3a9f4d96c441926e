package operations

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	pgq "github.com/pganalyze/pg_query_go/v6"

	"github.com/onlinepg/online/internal/sqlcheck"
	"github.com/onlinepg/online/schema"
)

// fieldTemplate is a one-operation migration with one SQL field left open
// (%s, a JSON string), and a value that fits the field.
type fieldTemplate struct {
	kind, field string
	op          string
	benign      string
}

var fieldTemplates = []fieldTemplate{
	{"add_column", "column.type", `{"add_column":{"table":"t","column":{"name":"z","type":%s}}}`, "int"},
	{"add_column", "column.default", `{"add_column":{"table":"t","column":{"name":"z","type":"int","default":%s}}}`, "0"},
	{"add_column", "up", `{"add_column":{"table":"t","column":{"name":"z","type":"int"},"up":%s}}`, "b + 1"},
	{"add_column", "column.check.constraint", `{"add_column":{"table":"t","column":{"name":"z","type":"int","check":{"name":"cz","constraint":%s}}}}`, "z > 0"},
	{"add_column", "column.generated.expression", `{"add_column":{"table":"t","column":{"name":"z","type":"int","generated":{"expression":%s}}}}`, "b * 2"},
	{"add_column", "column.generated.identity.sequence_options", `{"add_column":{"table":"t","column":{"name":"z","type":"int","nullable":false,"generated":{"identity":{"sequence_options":%s}}}}}`, "START WITH 10"},
	{"alter_column", "type", `{"alter_column":{"table":"t","column":"b","type":%s}}`, "bigint"},
	{"alter_column", "up", `{"alter_column":{"table":"t","column":"a","up":%s,"down":"a"}}`, "lower(a)"},
	{"alter_column", "down", `{"alter_column":{"table":"t","column":"a","up":"lower(a)","down":%s}}`, "a"},
	{"alter_column", "default", `{"alter_column":{"table":"t","column":"b","default":%s}}`, "5"},
	{"alter_column", "check.constraint", `{"alter_column":{"table":"t","column":"b","check":{"name":"cb","constraint":%s}}}`, "b > 0"},
	{"drop_column", "down", `{"drop_column":{"table":"t","column":"keepme","down":%s}}`, "'x'"},
	{"create_index", "predicate", `{"create_index":{"table":"t","name":"i","columns":["a"],"predicate":%s}}`, "b > 0"},
	{"create_index", "storage_parameters", `{"create_index":{"table":"t","name":"i","columns":["a"],"storage_parameters":%s}}`, "fillfactor = 70"},
	{"create_index", "columns[0].expression", `{"create_index":{"table":"t","name":"i","columns":[{"expression":%s}]}}`, "lower(a)"},
	{"create_table", "constraints[0].check", `{"create_table":{"name":"n","columns":[{"name":"id","type":"int"},{"name":"r","type":"int"}],"constraints":[{"name":"x","type":"check","check":%s}]}}`, "r > 0"},
	{"create_table", "constraints[0].exclude.elements", `{"create_table":{"name":"n","columns":[{"name":"id","type":"int"},{"name":"r","type":"int"}],"constraints":[{"name":"x","type":"exclude","exclude":{"index_method":"btree","elements":%s}}]}}`, "r WITH ="},
	{"create_table", "constraints[0].exclude.predicate", `{"create_table":{"name":"n","columns":[{"name":"id","type":"int"},{"name":"r","type":"int"}],"constraints":[{"name":"x","type":"exclude","exclude":{"index_method":"btree","elements":"r WITH =","predicate":%s}}]}}`, "r > 0"},
	{"create_table", "constraints[0].index_parameters.storage_parameters", `{"create_table":{"name":"n","columns":[{"name":"id","type":"int"}],"constraints":[{"name":"x","type":"unique","columns":["id"],"index_parameters":{"storage_parameters":%s}}]}}`, "fillfactor = 70"},
	{"create_constraint", "check", `{"create_constraint":{"table":"t","name":"c","type":"check","columns":["b"],"check":%s}}`, "b > 0"},
	{"create_constraint", "up.b", `{"create_constraint":{"table":"t","name":"c","type":"check","columns":["b"],"check":"b > 0","up":{"b":%s},"down":{"b":"b"}}}`, "greatest(b, 1)"},
	{"create_constraint", "exclude.elements", `{"create_constraint":{"table":"t","name":"c","type":"exclude","exclude":{"index_method":"btree","elements":%s}}}`, "b WITH ="},
	{"create_constraint", "exclude.predicate", `{"create_constraint":{"table":"t","name":"c","type":"exclude","exclude":{"index_method":"btree","elements":"b WITH =","predicate":%s}}}`, "b > 0"},
	{"update_rows", "set.b", `{"update_rows":{"table":"t","set":{"b":%s}}}`, "b + 1"},
	{"update_rows", "where", `{"update_rows":{"table":"t","set":{"b":"b + 1"},"where":%s}}`, "b > 0"},
	{"update_rows", "down.b", `{"update_rows":{"table":"t","set":{"b":"b + 1"},"down":{"b":%s}}}`, "b - 1"},
	{"update_rows", "down_where", `{"update_rows":{"table":"t","set":{"b":"b + 1"},"down":{"b":"b - 1"},"down_where":%s}}`, "b > 0"},
	{"create_index", "columns[0].opclass.params[0]", `{"create_index":{"table":"t","name":"i","method":"gist","columns":[{"column":"a","opclass":{"name":"gist_trgm_ops","params":[%s]}}]}}`, "siglen=32"},
}

func (ft fieldTemplate) doc(v string) []byte {
	q, _ := json.Marshal(v)
	return []byte(`{"operations":[` + fmt.Sprintf(ft.op, q) + `]}`)
}

const fieldSetup = "CREATE TABLE t (id int PRIMARY KEY, a text, b int, keepme text); CREATE TABLE other (id int)"

// TestSQLFieldsRefused: every field that carries SQL refuses a second
// statement and an extra clause before compiling, naming operation and field.
func TestSQLFieldsRefused(t *testing.T) {
	t.Parallel()
	attacks := []string{"%s; drop table other", "%s, drop column keepme", "%s) ; select (1", "%s -- hide"}
	for _, ft := range fieldTemplates {
		if _, err := Parse("m.json", ft.doc(ft.benign)); err != nil {
			t.Errorf("%s %s: the benign value %q is refused: %v", ft.kind, ft.field, ft.benign, err)
		}
		for _, a := range attacks {
			v := fmt.Sprintf(a, ft.benign)
			_, err := Parse("m.json", ft.doc(v))
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("%s %s: %q accepted: %v", ft.kind, ft.field, v, err)
				continue
			}
			var se *sqlcheck.Error
			if e.Op != 1 || e.Kind != ft.kind || e.Field != ft.field || !errors.As(err, &se) {
				t.Errorf("%s %s: %q: error names operation %d (%s), field %q: %v", ft.kind, ft.field, v, e.Op, e.Kind, e.Field, err)
			}
		}
	}
	// The sql operation's raw SQL may not leave its transaction.
	_, err := Parse("m.json", []byte(`{"operations":[{"sql":{"up":"CREATE TABLE x (a int); COMMIT; DROP TABLE other"}}]}`))
	var e *Error
	if !errors.As(err, &e) || e.Field != "up" {
		t.Errorf("sql up with COMMIT: %v", err)
	}
}

var (
	fieldSchemaOnce sync.Once
	fieldSchema     *schema.Schema
)

// planShape is what a plan's statements are, not what they say: per phase,
// the kind of each statement, and the number of PL/pgSQL statements in each
// function body and of statements in each backfill expression.
func planShape(p *Plan) ([]string, error) {
	var out []string
	add := func(phase, sql string) error {
		tree, err := pgq.Parse(sql)
		if err != nil {
			return fmt.Errorf("%s: %q does not parse: %w", phase, sql, err)
		}
		for _, st := range tree.Stmts {
			kind := reflect.TypeOf(st.GetStmt().GetNode()).Elem().Name()
			if fn := st.GetStmt().GetCreateFunctionStmt(); fn != nil {
				body, err := pgq.ParsePlPgSqlToJSON(sql)
				if err == nil {
					kind += fmt.Sprintf("(%d plpgsql statements)", strings.Count(body, `"PLpgSQL_stmt_`))
				}
			}
			out = append(out, phase+":"+kind)
		}
		return nil
	}
	for _, ph := range []struct {
		name  string
		steps []Step
	}{{"expand", p.Expand}, {"finish", p.Finish}, {"contract", p.Contract}} {
		for _, s := range ph.steps {
			for _, q := range s.SQL {
				if err := add(ph.name, q); err != nil {
					return nil, err
				}
			}
			for _, q := range s.Undo {
				if err := add(ph.name+" undo", q); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, b := range p.Backfill {
		for _, a := range b.Set {
			if err := add("backfill", "SELECT "+a.Expr); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// FuzzFieldSmuggling fills one SQL field of a migration with a mutated
// value. Either the value is refused, or the compiled plan has exactly the
// statements (count and kinds, and PL/pgSQL statements in trigger bodies)
// that the operation makes with a benign value: nothing was smuggled in.
func FuzzFieldSmuggling(f *testing.F) {
	seeds := []string{"int; drop table other", "int, drop column keepme", "int, alter column keepme type int using length(keepme)",
		"1); drop table other; select (1", "1 -- x", "$$x$$", "(select 1)", "a /* ; */", "1\n--c\n", "CASE WHEN a > 0 THEN 1 END",
		"numeric(10,2)", "fillfactor=10) WHERE (true", "x WITH =) WHERE (1=1"}
	for i, ft := range fieldTemplates {
		f.Add(uint8(i), ft.benign)
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, v string) {
		fieldSchemaOnce.Do(func() { fieldSchema, _ = catalog(t, "public", fieldSetup) })
		if fieldSchema == nil {
			t.Fatal("no schema")
		}
		ft := fieldTemplates[int(which)%len(fieldTemplates)]
		if v == "" {
			return // an empty field is an absent one, with a plan of its own
		}
		compile := func(v string) (*Plan, error) {
			m, err := Parse("m.json", ft.doc(v))
			if err != nil {
				return nil, err
			}
			p, _, err := Compile(m, fieldSchema, publicOpts)
			return p, err
		}
		p, err := compile(v)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%q refused without an *Error: %v", v, err)
			}
			return
		}
		want, err := compile(ft.benign)
		if err != nil {
			t.Fatalf("benign %q: %v", ft.benign, err)
		}
		gotShape, err := planShape(p)
		if err != nil {
			t.Fatalf("%s %s = %q: %v", ft.kind, ft.field, v, err)
		}
		wantShape, err := planShape(want)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(gotShape, "\n") != strings.Join(wantShape, "\n") {
			t.Fatalf("%s %s = %q: the plan's statements differ from the benign value's:\n got: %q\nwant: %q", ft.kind, ft.field, v, gotShape, wantShape)
		}
	})
}
