package operations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// validChecks holds, for every operation of the registry, what the file
// testdata/valid/<name>.{yaml,json} must decode to.
var validChecks = map[string]func(t *testing.T, m *Migration){
	"create_table": func(t *testing.T, m *Migration) {
		eq(t, "name", m.Name, "01_create_users")
		eq(t, "version_schema", m.VersionSchema, "v1")
		op := only[*CreateTable](t, m)
		eq(t, "name", op.Name, "users")
		eq(t, "comment", *op.Comment, "people who sign in")
		eq(t, "columns", len(op.Columns), 4)
		id, email, team, handle := op.Columns[0], op.Columns[1], op.Columns[2], op.Columns[3]
		eq(t, "columns[0].pk", id.PK, true)
		eq(t, "columns[0].generated.identity.user_specified_values", id.Generated.Identity.UserSpecifiedValues, "BY DEFAULT")
		eq(t, "columns[0].generated.identity.sequence_options", id.Generated.Identity.SequenceOptions, "START 100")
		eq(t, "columns[1].nullable", *email.Nullable, false)
		eq(t, "columns[1].unique", email.Unique, true)
		eq(t, "columns[1].comment", *email.Comment, "where we write")
		eq(t, "columns[1].check", *email.Check, Check{Name: "email_has_at", Constraint: "email LIKE '%@%'"})
		eq(t, "columns[2].nullable", *team.Nullable, true)
		eq(t, "columns[2].default", *team.Default, "1")
		eq(t, "columns[2].references", *team.References, ForeignKey{Name: "users_team_fk", Table: "teams", Column: "id",
			OnDelete: "CASCADE", OnUpdate: "NO ACTION", MatchType: "SIMPLE", Deferrable: true, InitiallyDeferred: true})
		eq(t, "columns[3].generated.expression", handle.Generated.Expression, "lower(email)")
		eq(t, "columns[3].nullable", handle.Nullable == nil, true)
		eq(t, "constraints", len(op.Constraints), 3)
		u, c, f := op.Constraints[0], op.Constraints[1], op.Constraints[2]
		eq(t, "constraints[0].columns", strings.Join(u.Columns, ","), "email,team_id")
		eq(t, "constraints[0].nulls_not_distinct", u.NullsNotDistinct, true)
		eq(t, "constraints[0].index_parameters.include_columns", strings.Join(u.IndexParameters.IncludeColumns, ","), "id")
		eq(t, "constraints[0].index_parameters.storage_parameters", u.IndexParameters.StorageParameters, "fillfactor=90")
		eq(t, "constraints[1]", c.Type+" "+c.Check, "check team_id > 0")
		eq(t, "constraints[1].no_inherit", c.NoInherit, true)
		eq(t, "constraints[2].references.on_delete_set_columns", strings.Join(f.References.OnDeleteSetColumns, ","), "team_id")
		eq(t, "constraints[2].references.match_type", f.References.MatchType, "FULL")
	},
	"add_column": func(t *testing.T, m *Migration) {
		eq(t, "name", m.Name, "add_column") // the file name without extension
		eq(t, "version_schema", m.VersionSchema, "add_column")
		op := only[*AddColumn](t, m)
		eq(t, "table", op.Table, "users")
		eq(t, "up", op.Up, "''")
		eq(t, "column.name", op.Column.Name, "nickname")
		eq(t, "column.type", op.Column.Type, "varchar(64)")
		eq(t, "column.nullable", *op.Column.Nullable, false)
		eq(t, "column.default", *op.Column.Default, "'anon'")
		eq(t, "column.unique", op.Column.Unique, true)
	},
	"alter_column": func(t *testing.T, m *Migration) {
		op := only[*AlterColumn](t, m)
		eq(t, "table.column", op.Table+"."+op.Column, "users.email")
		eq(t, "name", op.Name, "email_address")
		eq(t, "type", op.Type, "varchar(255)")
		eq(t, "nullable", *op.Nullable, false)
		set, def := nodeValue(op.Default)
		eq(t, "default set", set, true)
		eq(t, "default", *def, "'nobody@example.com'")
		set, com := nodeValue(op.Comment)
		eq(t, "comment set", set, true)
		eq(t, "comment dropped", com == nil, true)
		eq(t, "unique.name", op.Unique.Name, "users_email_key")
		eq(t, "check", *op.Check, Check{Name: "email_len", Constraint: "length(email) < 255"})
		eq(t, "references", *op.References, ForeignKey{Name: "users_email_fk", Table: "emails", Column: "address"})
		eq(t, "up", op.Up, "lower(email)")
		eq(t, "down", op.Down, "email_address")
	},
	"rename_column": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*RenameColumn](t, m), RenameColumn{Table: "users", From: "email", To: "email_address"})
	},
	"drop_column": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*DropColumn](t, m), DropColumn{Table: "users", Column: "nickname", Down: "'anon'"})
	},
	"rename_table": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*RenameTable](t, m), RenameTable{From: "users", To: "accounts"})
	},
	"drop_table": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*DropTable](t, m), DropTable{Name: "sessions"})
	},
	"create_index": func(t *testing.T, m *Migration) {
		op := only[*CreateIndex](t, m)
		eq(t, "table", op.Table, "users")
		eq(t, "name", op.Name, "users_lower_email_idx")
		// The map form keeps the file's order.
		eq(t, "columns", len(op.Columns), 3)
		eq(t, "columns order", op.Columns[0].Name+","+op.Columns[1].Name+","+op.Columns[2].Name, "email,team_id,id")
		email := op.Columns[0]
		eq(t, "columns.email", fmt.Sprint(email.Collate, email.Sort, email.Nulls, email.Opclass.Name), "CDESCLASTtext_pattern_ops")
		eq(t, "columns.team_id", op.Columns[1], IndexColumn{Name: "team_id"})
		eq(t, "columns.id", op.Columns[2], IndexColumn{Name: "id"})
		eq(t, "method", op.Method, "btree")
		eq(t, "unique", op.Unique, true)
		eq(t, "predicate", op.Predicate, "deleted_at IS NULL")
		eq(t, "storage_parameters", op.StorageParameters, "fillfactor=70")
		eq(t, "include", strings.Join(op.Include, ","), "handle")
		eq(t, "nulls_not_distinct", op.NullsNotDistinct, true)
	},
	"drop_index": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*DropIndex](t, m), DropIndex{Name: "users_lower_email_idx"})
	},
	"sql": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*RawSQL](t, m), RawSQL{Up: "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'", Down: "DROP FUNCTION one()"})
	},
	// The rest of the format (docs/reference/file-format.md), checked once registered.
	"create_constraint": func(t *testing.T, m *Migration) {
		op := only[*CreateConstraint](t, m)
		eq(t, "table.name", op.Table+"."+op.Name, "orders.orders_user_fk")
		eq(t, "type", op.Type, "foreign_key")
		eq(t, "columns", strings.Join(op.Columns, ","), "user_id,tenant_id")
		eq(t, "references.table", op.References.Table, "users")
		eq(t, "references.columns", strings.Join(op.References.Columns, ","), "id,tenant_id")
		eq(t, "references.on_delete", op.References.OnDelete, "CASCADE")
		eq(t, "up", len(op.Up), 2)
		eq(t, "up.tenant_id", op.Up["tenant_id"], "tenant_id")
		eq(t, "down.user_id", op.Down["user_id"], "user_id")
	},
	"drop_constraint": func(t *testing.T, m *Migration) {
		op := only[*DropConstraint](t, m)
		eq(t, "table.name", op.Table+"."+op.Name, "users.users_email_check")
		eq(t, "up", op.Up, "email")
		eq(t, "down", op.Down, "CASE WHEN email LIKE '%@%' THEN email ELSE email || '@invalid' END")
	},
	"drop_multicolumn_constraint": func(t *testing.T, m *Migration) {
		op := only[*DropMultiColumnConstraint](t, m)
		eq(t, "table.name", op.Table+"."+op.Name, "orders.orders_user_fk")
		eq(t, "up", len(op.Up), 1)
		eq(t, "down", len(op.Down), 2)
		eq(t, "down.tenant_id", op.Down["tenant_id"], "tenant_id")
	},
	"rename_constraint": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*RenameConstraint](t, m), RenameConstraint{Table: "users", From: "users_email_check", To: "users_email_has_at"})
	},
	"set_replica_identity": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*SetReplicaIdentity](t, m), SetReplicaIdentity{Table: "users", Identity: ReplicaIdentity{Type: "index", Index: "users_email_key"}})
	},
	"create_enum": func(t *testing.T, m *Migration) {
		op := only[*CreateEnum](t, m)
		eq(t, "name", op.Name, "mood")
		eq(t, "values", strings.Join(op.Values, ","), "sad,ok,happy")
	},
	"add_enum_value": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*AddEnumValue](t, m), AddEnumValue{Enum: "mood", Value: "meh", Before: "ok"})
	},
	"drop_enum": func(t *testing.T, m *Migration) {
		eq(t, "op", *only[*DropEnum](t, m), DropEnum{Name: "mood"})
	},
	"update_rows": func(t *testing.T, m *Migration) {
		op := only[*UpdateRows](t, m)
		eq(t, "table", op.Table, "items")
		eq(t, "set", op.Set["unit_cents"], "unit_cents * 100")
		eq(t, "where", op.Where, "currency = 'EUR'")
		eq(t, "down", op.Down["unit_cents"], "unit_cents / 100")
		eq(t, "down_where", op.DownWhere, "currency = 'EUR'")
		eq(t, "fields", len(op.Set)+len(op.Down), 2)
	},
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

// only returns the migration's single operation as a T.
func only[T Operation](t *testing.T, m *Migration) T {
	t.Helper()
	if len(m.Operations) != 1 {
		t.Fatalf("%d operations, want 1", len(m.Operations))
	}
	op, ok := m.Operations[0].(T)
	if !ok {
		var zero T
		t.Fatalf("operation is a %T, want %T", m.Operations[0], zero)
	}
	return op
}

func TestParseValidFiles(t *testing.T) {
	t.Parallel()
	for _, name := range Names() {
		check := validChecks[name]
		if check == nil {
			t.Errorf("operation %q of the registry has no valid example: add testdata/valid/%s.yaml and .json and a check", name, name)
			continue
		}
		for _, ext := range []string{"yaml", "json"} {
			t.Run(name+"."+ext, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join("testdata", "valid", name+"."+ext)
				m, err := ParseFile(path)
				if err != nil {
					t.Fatal(err)
				}
				eq(t, "file", m.File, path)
				if m.Name == "" || m.VersionSchema == "" {
					t.Errorf("name %q, version schema %q: want both set", m.Name, m.VersionSchema)
				}
				eq(t, "kind", kindOf(m.Operations[0]), name)
				check(t, m)
				if !json.Valid(m.Document) {
					t.Fatalf("document is not JSON: %s", m.Document)
				}
				if ext == "json" {
					// The document keeps the file's keys in order.
					data, _ := os.ReadFile(path)
					var want bytes.Buffer
					if err := json.Compact(&want, data); err != nil {
						t.Fatal(err)
					}
					eq(t, "document", string(m.Document), want.String())
				}
			})
		}
	}
	for name := range validChecks {
		if !slices.Contains(Names(), name) {
			// An operation of the file format not registered yet: its example
			// must be rejected as unknown, naming the operation.
			for _, ext := range []string{"yaml", "json"} {
				path := filepath.Join("testdata", "valid", name+"."+ext)
				if _, err := ParseFile(path); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("unknown operation %q", name)) {
					t.Errorf("%s: %v; want unknown operation %q", path, err, name)
				}
			}
		}
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file, src, name, version string
	}{
		{"migrations/03_add_age.yaml", "operations: [{drop_table: {name: a}}]", "03_add_age", "03_add_age"},
		{"03_add_age.json", `{"operations": [{"drop_table": {"name": "a"}}]}`, "03_add_age", "03_add_age"},
		{"x.yaml", "name: given\noperations: [{drop_table: {name: a}}]", "given", "given"},
		{"x.yaml", "version_schema: v7\noperations: [{drop_table: {name: a}}]", "x", "v7"},
		{"x.yml", "name: 2024-01-01\noperations: [{drop_table: {name: a}}]", "2024-01-01", "2024-01-01"},
		{"bom.json", "\ufeff{\"operations\": [{\"drop_table\": {\"name\": \"a\"}}]}", "bom", "bom"},
		{"crlf.yaml", "name: crlf\r\noperations:\r\n  - drop_table:\r\n      name: a\r\n", "crlf", "crlf"},
		{"trailing-separator.yaml", "operations: [{drop_table: {name: a}}]\n---\n", "trailing-separator", "trailing-separator"},
		{"end-marker.yaml", "operations: [{drop_table: {name: a}}]\n...\n", "end-marker", "end-marker"},
	}
	for _, c := range cases {
		m, err := Parse(c.file, []byte(c.src))
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if m.Name != c.name || m.VersionSchema != c.version {
			t.Errorf("%s: name %q version %q, want %q %q", c.file, m.Name, m.VersionSchema, c.name, c.version)
		}
	}
}

// TestParseDocument: the JSON kept in the state schema says what the file
// says: keys in file order, scalars as written.
func TestParseDocument(t *testing.T) {
	t.Parallel()
	src := `name: 2024-01-01
operations:
  - create_index:
      table: t
      name: i
      columns: {zeta: null, alpha: {sort: DESC}}
      unique: true
  - alter_column: {table: t, column: c, default: 0x1F, comment: .nan}
`
	m, err := Parse("doc.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"2024-01-01","operations":[{"create_index":{"table":"t","name":"i","columns":{"zeta":null,"alpha":{"sort":"DESC"}},"unique":true}},` +
		`{"alter_column":{"table":"t","column":"c","default":31,"comment":".nan"}}]}`
	eq(t, "document", string(m.Document), want)
}

// parseErr parses src as file and returns the *Error it must fail with,
// after checking that the message starts with the file name.
func parseErr(t *testing.T, file, src string) *Error {
	t.Helper()
	m, err := Parse(file, []byte(src))
	if err == nil {
		t.Fatalf("parsed without error: %d operations", len(m.Operations))
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is a %T, want *operations.Error", err, err)
	}
	if !strings.HasPrefix(err.Error(), file+": ") {
		t.Errorf("message %q does not start with the file name %q", err.Error(), file)
	}
	if e.File != file {
		t.Errorf("Error.File = %q, want %q", e.File, file)
	}
	return e
}

// checkErr compares an *Error with the expected operation position, kind
// and field, and checks that the rendered message names them.
// checkCompileErr fails unless err is an *Error, then checks it as checkErr.
func checkCompileErr(t *testing.T, err error, op int, kind, field string, msg ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *Error", err)
	}
	checkErr(t, e, op, kind, field, msg...)
}

func checkErr(t *testing.T, e *Error, op int, kind, field string, msg ...string) {
	t.Helper()
	if e.Op != op || e.Kind != kind || e.Field != field {
		t.Errorf("Error{Op: %d, Kind: %q, Field: %q}, want {%d, %q, %q}\n(%v)", e.Op, e.Kind, e.Field, op, kind, field, e)
	}
	s := e.Error()
	var want []string
	switch {
	case op > 0 && kind != "":
		want = append(want, fmt.Sprintf(": operation %d (%s): ", op, kind))
	case op > 0:
		want = append(want, fmt.Sprintf(": operation %d: ", op))
	default:
		if strings.Contains(s, ": operation ") {
			t.Errorf("message %q names an operation; want none", s)
		}
	}
	if field != "" {
		want = append(want, fmt.Sprintf("field %q", field))
	}
	for _, w := range append(want, msg...) {
		if !strings.Contains(s, w) {
			t.Errorf("message %q does not contain %q", s, w)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const ok = "  - drop_table: {name: sessions}\n" // a valid first operation
	cases := []struct {
		name  string
		file  string // default m.yaml
		src   string
		op    int
		kind  string
		field string
		msg   []string
	}{
		// The file as a whole.
		{name: "empty file", src: "", msg: []string{"empty"}},
		{name: "only a comment", src: "# nothing here\n", msg: []string{"empty"}},
		{name: "only white space", src: "\n\n   \n", msg: []string{"empty"}},
		{name: "invalid YAML", src: "operations:\n  - drop_table: {name: [\n", msg: []string{"not valid YAML or JSON"}},
		{name: "invalid YAML indentation", src: "operations:\n  - drop_table:\n      name: a\n     table: b\n", msg: []string{"not valid YAML or JSON"}},
		{name: "invalid JSON", file: "m.json", src: `{"operations": [{"drop_table": {"name": "a"}]}`, msg: []string{"not valid YAML or JSON"}},
		{name: "tab indentation", src: "operations:\n\t- drop_table: {name: a}\n", msg: []string{"not valid YAML or JSON"}},
		{name: "second document", src: "operations:\n" + ok + "---\noperations:\n" + ok, msg: []string{"more than one YAML document"}},
		{name: "invalid second document", src: "operations:\n" + ok + "---\n[\n", msg: []string{"not valid YAML or JSON"}},
		{name: "document is a list", src: "- drop_table: {name: a}\n", msg: []string{`must be a map with an "operations" list, got a list`}},
		{name: "document is a string", src: "hello\n", msg: []string{`"hello"`}},
		{name: "missing operations", src: "name: m\n", field: "operations", msg: []string{"no operations"}},
		{name: "empty operations", src: "operations: []\n", field: "operations", msg: []string{"no operations"}},
		{name: "null operations", src: "operations:\n", field: "operations", msg: []string{"no operations"}},
		{name: "operations is a map", src: "operations: {drop_table: {name: a}}\n", field: "operations", msg: []string{"must be a list, got a map"}},
		{name: "unknown top-level field", src: "nmae: m\noperations:\n" + ok, field: "nmae", msg: []string{"unknown field", "known: name, operations, version_schema"}},
		{name: "duplicate top-level key", src: "name: a\nname: b\noperations:\n" + ok, field: "name", msg: []string{"given twice"}},
		{name: "duplicate operations key", src: "operations:\n" + ok + "operations:\n" + ok, field: "operations", msg: []string{"given twice"}},
		{name: "name is a list", src: "name: [a]\noperations:\n" + ok, field: "name", msg: []string{"must be a string, got a list"}},
		{name: "blank name", file: "m.yaml", src: "name: '  '\noperations:\n" + ok, field: "name", msg: []string{"no name"}},

		// The list of operations.
		{name: "unknown operation", src: "operations:\n" + ok + "  - add_colum: {table: t}\n", op: 2, msg: []string{`unknown operation "add_colum"`, "add_column"}},
		{name: "two keys in one item", src: "operations:\n" + ok + "  - drop_table: {name: a}\n    drop_index: {name: b}\n", op: 2, msg: []string{"exactly one key", "2 keys (drop_table, drop_index)"}},
		{name: "two identical keys in one item", src: "operations:\n  - drop_table: {name: a}\n    drop_table: {name: b}\n", op: 1, msg: []string{"exactly one key"}},
		{name: "empty item", src: "operations:\n" + ok + "  - {}\n", op: 2, msg: []string{"an empty map"}},
		{name: "item is a string", src: "operations:\n  - drop_table\n", op: 1, msg: []string{`"drop_table"`}},
		{name: "item is null", src: "operations:\n  -\n", op: 1, msg: []string{"null"}},
		{name: "body is a string", src: "operations:\n  - drop_table: sessions\n", op: 1, kind: "drop_table", msg: []string{`must be a map, got the value "sessions"`}},
		{name: "body is null", src: "operations:\n  - drop_table:\n", op: 1, kind: "drop_table", msg: []string{"must be a map, got null"}},

		// Fields of an operation.
		{name: "unknown field", src: "operations:\n" + ok + "  - drop_table: {name: a, cascade: true}\n", op: 2, kind: "drop_table", field: "cascade", msg: []string{"unknown field", "known: name"}},
		{name: "unknown nested field", src: "operations:\n" + ok + `  - create_table:
      name: t
      columns:
        - {name: id, type: int}
        - name: team
          type: int
          refrences: {name: fk, table: teams, column: id}
`, op: 2, kind: "create_table", field: "columns[1].refrences", msg: []string{"unknown field in columns[1]", "references"}},
		{name: "unknown field two levels down", src: "operations:\n  - add_column:\n      table: t\n      column: {nullable: true, name: c, type: int, references: {name: f, table: u, column: id, on_delet: CASCADE}}\n",
			op: 1, kind: "add_column", field: "column.references.on_delet", msg: []string{"unknown field in column.references"}},
		{name: "unknown field in a constraint", src: "operations:\n  - create_table: {name: t, columns: [{name: a, type: int}], constraints: [{name: c, type: check, chek: a > 0}]}\n",
			op: 1, kind: "create_table", field: "constraints[0].chek"},
		{name: "duplicate key in operation", src: "operations:\n  - drop_table: {name: a, name: b}\n", op: 1, kind: "drop_table", field: "name", msg: []string{"given twice"}},
		{name: "duplicate key in JSON operation", file: "m.json", src: `{"operations": [{"rename_table": {"from": "a", "to": "b", "from": "c"}}]}`, op: 1, kind: "rename_table", field: "from", msg: []string{"given twice"}},
		{name: "duplicate key in nested map", src: "operations:\n  - add_column: {table: t, column: {nullable: true, name: a, type: int, name: b}}\n", op: 1, kind: "add_column", field: "column.name", msg: []string{"given twice"}},
		{name: "list where a string goes", src: "operations:\n  - drop_table: {name: [a, b]}\n", op: 1, kind: "drop_table", field: "name", msg: []string{"must be a string, got a list"}},
		{name: "map where a string goes", src: "operations:\n  - rename_column: {table: t, from: a, to: {name: b}}\n", op: 1, kind: "rename_column", field: "to", msg: []string{"must be a string, got a map"}},
		{name: "string where a bool goes", src: "operations:\n  - create_index: {table: t, name: i, columns: [a], unique: \"true\"}\n", op: 1, kind: "create_index", field: "unique", msg: []string{`must be true or false, got "true"`}},
		{name: "nullable yes", src: "operations:\n  - add_column: {table: t, column: {name: a, type: int, nullable: \"yes\"}}\n", op: 1, kind: "add_column", field: "column.nullable", msg: []string{`got "yes"`}},
		{name: "nullable bare yes (YAML 1.1 bool)", src: "operations:\n  - add_column: {table: t, column: {name: a, type: int, nullable: yes}}\n", op: 1, kind: "add_column", field: "column.nullable", msg: []string{`got "yes"`}},
		{name: "nullable number", file: "m.json", src: `{"operations": [{"create_table": {"name": "t", "columns": [{"name": "a", "type": "int", "nullable": 0}]}}]}`, op: 1, kind: "create_table", field: "columns[0].nullable", msg: []string{`got "0"`}},
		{name: "bool in a list", src: "operations:\n  - sql: {up: x, onComplete: [true]}\n", op: 1, kind: "sql", field: "onComplete", msg: []string{"must be a boolean, got a list"}},
		{name: "string where a list goes", src: "operations:\n  - create_table: {name: t, columns: id}\n", op: 1, kind: "create_table", field: "columns", msg: []string{`must be a list, got the value "id"`}},
		{name: "string where a map goes", src: "operations:\n  - add_column: {table: t, column: email}\n", op: 1, kind: "add_column", field: "column", msg: []string{"must be a map"}},
		{name: "list item of the wrong type", src: "operations:\n  - create_index: {table: t, name: i, columns: [a], include: [a, [b]]}\n", op: 1, kind: "create_index", field: "include[1]", msg: []string{"must be a string, got a list"}},
		{name: "map values of the wrong type", src: "operations:\n  - create_index: {table: t, name: i, columns: {a: {opclass: {name: o, params: {siglen: [1]}}}}}\n", op: 1, kind: "create_index", field: "columns.a.opclass.params.siglen", msg: []string{"must be a string"}},
		{name: "duplicate key in a map field", src: "operations:\n  - create_index: {table: t, name: i, columns: {a: {opclass: {name: o, params: {p: 1, p: 2}}}}}\n", op: 1, kind: "create_index", field: "columns.a.opclass.params.p", msg: []string{"given twice"}},

		// create_index.columns, which has two forms.
		{name: "index columns is a string", src: "operations:\n  - create_index: {table: t, name: i, columns: email}\n", op: 1, kind: "create_index", field: "columns", msg: []string{"list of column names or index fields, or a map"}},
		{name: "index field without column", src: "operations:\n  - create_index: {table: t, name: i, columns: [{sort: DESC}]}\n", op: 1, kind: "create_index", field: "columns[0]", msg: []string{`exactly one of "column"`}},
		{name: "index field with column and expression", src: "operations:\n  - create_index: {table: t, name: i, columns: [{column: a, expression: lower(a)}]}\n", op: 1, kind: "create_index", field: "columns[0]", msg: []string{`exactly one of "column"`}},
		{name: "column in the map form", src: "operations:\n  - create_index: {table: t, name: i, columns: {a: {column: b}}}\n", op: 1, kind: "create_index", field: "columns.a.column", msg: []string{"names the column by its key"}},
		{name: "opclass param without value", src: "operations:\n  - create_index: {table: t, name: i, columns: [{column: a, opclass: {name: o, params: [siglen]}}]}\n", op: 1, kind: "create_index", field: "columns[0].opclass.params[0]", msg: []string{`"name=value"`}},
		{name: "unknown key in an index field", src: "operations:\n  - create_index: {table: t, name: i, columns: [{column: a, order: DESC}]}\n", op: 1, kind: "create_index", field: "columns[0].order", msg: []string{"unknown field"}},
		{name: "index column is a list", src: "operations:\n  - create_index: {table: t, name: i, columns: [a, [b]]}\n", op: 1, kind: "create_index", field: "columns[1]", msg: []string{"column name or a map"}},
		{name: "unknown field of a list-form index column", src: "operations:\n  - create_index: {table: t, name: i, columns: [a, {expresion: lower(b)}]}\n", op: 1, kind: "create_index", field: "columns[1].expresion", msg: []string{"expression"}},
		{name: "unknown field of a map-form index column", src: "operations:\n  - create_index: {table: t, name: i, columns: {email: {srot: DESC}}}\n", op: 1, kind: "create_index", field: "columns.email.srot", msg: []string{"sort"}},
		{name: "unknown field of an opclass", src: "operations:\n  - create_index: {table: t, name: i, columns: {email: {opclass: {name: o, parms: {}}}}}\n", op: 1, kind: "create_index", field: "columns.email.opclass.parms"},
		{name: "map-form index column is a string", src: "operations:\n  - create_index: {table: t, name: i, columns: {email: DESC}}\n", op: 1, kind: "create_index", field: "columns.email", msg: []string{"must be a map"}},
		{name: "index column given twice", src: "operations:\n  - create_index: {table: t, name: i, columns: {email: null, email: {sort: DESC}}}\n", op: 1, kind: "create_index", field: "columns.email", msg: []string{"given twice"}},
		{name: "index column given twice in JSON", file: "m.json", src: `{"operations": [{"create_index": {"table": "t", "name": "i", "columns": {"a": {}, "a": {}}}}]}`, op: 1, kind: "create_index", field: "columns.a", msg: []string{"given twice"}},
		{name: "sort is a list", src: "operations:\n  - create_index: {table: t, name: i, columns: {email: {sort: [DESC]}}}\n", op: 1, kind: "create_index", field: "columns.email.sort", msg: []string{"must be a string"}},

		// Odd YAML.
		{name: "bad binary", src: "operations:\n  - drop_table: {name: !!binary '%%%'}\n", op: 1, kind: "drop_table"},
		{name: "bad int tag", src: "operations:\n  - drop_table: {name: !!int abc}\n", op: 1, kind: "drop_table"},
		{name: "duplicate key inside a free-form value", src: "operations:\n  - alter_column: {table: t, column: c, default: {a: 1, a: 2}}\n", msg: []string{"already defined"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			file := c.file
			if file == "" {
				file = "m.yaml"
			}
			e := parseErr(t, file, c.src)
			checkErr(t, e, c.op, c.kind, c.field, c.msg...)
		})
	}
}

func TestParseFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	_, err := ParseFile(missing)
	var e *Error
	if !errors.As(err, &e) || e.File != missing || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), missing+": ") {
		t.Errorf("ParseFile(missing) = %v (%T), want an *Error naming the file that wraps os.ErrNotExist", err, err)
	}
	bad := filepath.Join(dir, "02_bad.yaml")
	if err := os.WriteFile(bad, []byte("operations:\n  - drop_table: {name: a}\n  - drop_index: {nam: b}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ParseFile(bad)
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error", err)
	}
	checkErr(t, e, 2, "drop_index", "nam")
	if !strings.HasPrefix(err.Error(), bad+": operation 2 (drop_index): field \"nam\": ") {
		t.Errorf("message %q", err)
	}
}

// TestParseIndexColumnForms: create_index.columns is a list of names (or
// expression maps) or a map of name to options, in file order.
func TestParseIndexColumnForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, columns string
		want          []IndexColumn
	}{
		{"list", "[b, a]", []IndexColumn{{Name: "b"}, {Name: "a"}}},
		{"block list", "\n        - b\n        - a", []IndexColumn{{Name: "b"}, {Name: "a"}}},
		{"list with expression", "[a, {expression: lower(b), sort: DESC}]", []IndexColumn{{Name: "a"}, {Expression: "lower(b)", Sort: "DESC"}}},
		{"map", "{b: {sort: DESC, nulls: FIRST}, a: null}", []IndexColumn{{Name: "b", Sort: "DESC", Nulls: "FIRST"}, {Name: "a"}}},
		{"map with empty options", "{z: {}, y: ~}", []IndexColumn{{Name: "z"}, {Name: "y"}}},
		{"block map", "\n        zeta:\n          collate: C\n        alpha:", []IndexColumn{{Name: "zeta", Collate: "C"}, {Name: "alpha"}}},
		{"map with opclass", "{a: {opclass: {name: gist_trgm_ops, params: {siglen: '32'}}}}", []IndexColumn{{Name: "a", Opclass: &Opclass{Name: "gist_trgm_ops", Params: OpclassParams{"siglen=32"}}}}},
		// pgroll's current form: a list of index fields naming their column.
		{"list of index fields", "[{column: b, sort: DESC, nulls: LAST}, {column: a, collate: C}]", []IndexColumn{{Name: "b", Sort: "DESC", Nulls: "LAST"}, {Name: "a", Collate: "C"}}},
		{"block list of index fields", "\n        - column: b\n          opclass:\n            name: gist_trgm_ops\n            params: [siglen=32]\n        - a", []IndexColumn{{Name: "b", Opclass: &Opclass{Name: "gist_trgm_ops", Params: OpclassParams{"siglen=32"}}}, {Name: "a"}}},
	}
	for _, c := range cases {
		for _, form := range []string{"yaml", "json"} {
			t.Run(c.name+"/"+form, func(t *testing.T) {
				t.Parallel()
				src := "operations:\n  - create_index:\n      table: t\n      name: i\n      columns: " + c.columns + "\n"
				file := "m.yaml"
				if form == "json" {
					// The same document, as JSON.
					m, err := Parse("tmp.yaml", []byte(src))
					if err != nil {
						t.Fatal(err)
					}
					src, file = string(m.Document), "m.json"
				}
				m, err := Parse(file, []byte(src))
				if err != nil {
					t.Fatal(err)
				}
				got := only[*CreateIndex](t, m).Columns
				if !reflect.DeepEqual([]IndexColumn(got), c.want) {
					t.Errorf("columns %+v, want %+v", got, c.want)
				}
			})
		}
	}
}

// TestParseAlterColumnNodeFields: alter_column.default and .comment tell
// absent (no change), null (drop) and a value apart.
func TestParseAlterColumnNodeFields(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	cases := []struct {
		name, file, src string
		set             bool
		value           *string
	}{
		{"absent", "m.yaml", "{table: t, column: c, nullable: true}", false, nil},
		{"null", "m.yaml", "{table: t, column: c, default: null}", true, nil},
		{"tilde", "m.yaml", "{table: t, column: c, default: ~}", true, nil},
		{"empty value", "m.yaml", "{table: t, column: c, default: }", true, nil},
		{"JSON null", "m.json", `{"table": "t", "column": "c", "default": null}`, true, nil},
		{"string", "m.yaml", `{table: t, column: c, default: "'x'"}`, true, str("'x'")},
		{"JSON string", "m.json", `{"table": "t", "column": "c", "default": "now()"}`, true, str("now()")},
		{"quoted null is SQL text", "m.yaml", `{table: t, column: c, default: "null"}`, true, str("null")},
		{"number", "m.yaml", "{table: t, column: c, default: 0}", true, str("0")},
		{"JSON number", "m.json", `{"table": "t", "column": "c", "default": 42}`, true, str("42")},
		{"bool", "m.yaml", "{table: t, column: c, default: false}", true, str("false")},
		{"block scalar", "m.yaml", "\n        table: t\n        column: c\n        default: |-\n          CASE WHEN true\n          THEN 1 END", true, str("CASE WHEN true\nTHEN 1 END")},
	}
	for _, c := range cases {
		for _, field := range []string{"default", "comment"} {
			t.Run(c.name+"/"+field, func(t *testing.T) {
				t.Parallel()
				body := strings.ReplaceAll(c.src, "default", field)
				src := "operations:\n  - alter_column: " + body + "\n"
				if c.file == "m.json" {
					src = `{"operations": [{"alter_column": ` + body + `}]}`
				}
				m, err := Parse(c.file, []byte(src))
				if err != nil {
					t.Fatal(err)
				}
				op := only[*AlterColumn](t, m)
				n := op.Default
				if field == "comment" {
					n = op.Comment
				}
				set, v := nodeValue(n)
				if set != c.set || (v == nil) != (c.value == nil) || v != nil && *v != *c.value {
					t.Errorf("nodeValue = %v, %v; want %v, %v", set, deref(v), c.set, deref(c.value))
				}
			})
		}
	}
}

// TestParseAliases: YAML anchors and aliases work wherever the values they
// name would.
func TestParseAliases(t *testing.T) {
	t.Parallel()
	src := `operations:
  - &drop {drop_table: {name: a}}
  - *drop
  - drop_index: &body {name: i}
  - drop_index: *body
  - create_table:
      name: t
      columns:
        - &col {name: id, type: int}
        - {name: x, type: &typ text}
  - add_column: {table: t, column: {nullable: true, name: y, type: *typ}}
`
	m, err := Parse("aliases.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "operations", len(m.Operations), 6)
	eq(t, "op 2", *m.Operations[1].(*DropTable), DropTable{Name: "a"})
	eq(t, "op 4", *m.Operations[3].(*DropIndex), DropIndex{Name: "i"})
	eq(t, "op 6 type", m.Operations[5].(*AddColumn).Column.Type, "text")
	// An alias keeps the checks of what it stands for.
	e := parseErr(t, "aliases.yaml", "x: &bad {name: a, cascade: true}\noperations:\n  - drop_table: *bad\n")
	checkErr(t, e, 0, "", "x")
	e = parseErr(t, "aliases.yaml", "operations:\n  - create_table: {name: t, columns: [{name: a, type: int}]}\n  - drop_table: &bad {name: a, cascade: true}\n")
	checkErr(t, e, 2, "drop_table", "cascade")
}

// TestParseErrorRendering: the message of an *Error for every combination of
// its fields.
func TestParseErrorRendering(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Err: base}, "a.yaml: boom"},
		{Error{Err: base}, "migration: boom"},
		{Error{File: "a.yaml", Op: 3, Err: base}, "a.yaml: operation 3: boom"},
		{Error{File: "a.yaml", Op: 3, Kind: "drop_table", Err: base}, "a.yaml: operation 3 (drop_table): boom"},
		{Error{File: "a.yaml", Op: 3, Kind: "drop_table", Field: "name", Err: base}, `a.yaml: operation 3 (drop_table): field "name": boom`},
		{Error{File: "a.yaml", Field: "operations", Err: base}, `a.yaml: field "operations": boom`},
	}
	for _, c := range cases {
		eq(t, "message", c.e.Error(), c.want)
		if !errors.Is(&c.e, base) {
			t.Errorf("%v does not unwrap to its cause", &c.e)
		}
	}
}
