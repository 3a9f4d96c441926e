package operations

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

// fuzzSeeds are the examples of every operation (testdata/valid) and
// snippets that reach the parser's error paths.
func fuzzSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"operations: []",
		"operations:\n  - drop_table: {name: a}\n---\noperations: []\n",
		"operations:\n  - &o {drop_table: {name: a}}\n  - *o\n",
		"operations:\n  - drop_table: {name: a, name: b}\n",
		"operations:\n  - add_column: {table: t, column: {name: a, type: int, nullable: \"yes\"}}\n",
		"operations:\n  - create_index: {table: t, name: i, columns: {a: {opclass: {name: o, params: {p: '1'}}}, b: null}}\n",
		"operations:\n  - create_index: {table: t, name: i, columns: [a, {expression: lower(b)}]}\n",
		"operations:\n  - alter_column: {table: t, column: c, default: null, comment: .nan}\n",
		"operations:\n  - sql: {up: SELECT 1, onComplete: true}\n",
		"operations:\n  - create_table: {name: t, columns: [{name: a, type: int, refrences: {}}]}\n",
		`{"name": "x", "operations": [{"rename_column": {"table": "users", "from": "a", "to": "b"}}]}`,
		"name: [a]\noperations: {}\n",
		"operations:\n  - {drop_table: {name: a}, drop_index: {name: b}}\n",
		"operations:\n  - drop_table: !!binary aGVsbG8=\n",
		"a: &a [1, 2]\nb: [*a, *a]\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzParse: any input either parses into known operations and a JSON
// document that parses again the same way, or fails with an *Error whose
// message starts with the file name. Never a panic.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "fuzz/m.yaml"
		m, err := Parse(file, data)
		if err != nil {
			checkFuzzErr(t, file, err)
			return
		}
		if len(m.Operations) == 0 || m.Name == "" || m.VersionSchema == "" || m.File != file {
			t.Fatalf("parsed into %+v", m)
		}
		for i, op := range m.Operations {
			if op == nil || kindOf(op) == "" {
				t.Fatalf("operation %d is %T", i+1, op)
			}
		}
		if !json.Valid(m.Document) {
			t.Fatalf("document is not JSON: %s", m.Document)
		}
		// The document kept in the state schema is the same migration.
		again, err := Parse("fuzz/m.json", m.Document)
		if err != nil {
			t.Fatalf("the document %s does not parse: %v", m.Document, err)
		}
		if len(again.Operations) != len(m.Operations) || again.Name != m.Name && again.Name != "m" {
			t.Fatalf("the document parses into %d operations named %q, the file into %d named %q", len(again.Operations), again.Name, len(m.Operations), m.Name)
		}
		for i := range m.Operations {
			if kindOf(again.Operations[i]) != kindOf(m.Operations[i]) {
				t.Fatalf("operation %d: %s in the document, %s in the file", i+1, kindOf(again.Operations[i]), kindOf(m.Operations[i]))
			}
		}
	})
}

func checkFuzzErr(t *testing.T, file string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is a %T, want *operations.Error", err, err)
	}
	if e.File != file || !strings.HasPrefix(err.Error(), file+": ") {
		t.Fatalf("error %q does not start with the file name", err)
	}
	if e.Op < 0 || e.Err == nil {
		t.Fatalf("error %#v", e)
	}
}

// fuzzSchema is the fixed catalog FuzzCompile compiles against: the tables
// of the compile tests' fixture, built by hand.
func fuzzSchema() *schema.Schema {
	str := func(s string) *string { return &s }
	col := func(name, typ string, nullable bool, def *string) *schema.Column {
		return &schema.Column{Name: name, Physical: name, Type: typ, Nullable: nullable, Default: def}
	}
	teams := &schema.Table{Name: "teams", Physical: "teams", OID: 1, PrimaryKey: []string{"id"},
		Columns: []*schema.Column{col("id", "bigint", false, nil), col("name", "text", false, nil)},
		Indexes: map[string]*schema.Index{"teams_pkey": {Name: "teams_pkey", Columns: []string{"id"}, Unique: true, Primary: true, Valid: true,
			Definition: "CREATE UNIQUE INDEX teams_pkey ON public.teams USING btree (id)", Constraint: "teams_pkey"}},
		Constraints: map[string]*schema.Constraint{"teams_pkey": {Name: "teams_pkey", Type: "p", Columns: []string{"id"}, Definition: "PRIMARY KEY (id)", Validated: true}},
	}
	id := col("id", "bigint", false, nil)
	id.Identity = "d"
	email := col("email", "text", false, nil)
	email.Unique = true
	users := &schema.Table{Name: "users", Physical: "users", OID: 2, PrimaryKey: []string{"id"},
		Columns: []*schema.Column{id, email, col("nickname", "text", true, nil), col("age", "integer", false, str("0")),
			col("bio", "text", false, str("''::text")), col("team_id", "bigint", true, nil)},
		Indexes: map[string]*schema.Index{
			"users_pkey": {Name: "users_pkey", Columns: []string{"id"}, Unique: true, Primary: true, Valid: true,
				Definition: "CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)", Constraint: "users_pkey"},
			"users_email_key": {Name: "users_email_key", Columns: []string{"email"}, Unique: true, Valid: true,
				Definition: "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email)", Constraint: "users_email_key"},
			"users_nickname_idx": {Name: "users_nickname_idx", Columns: []string{"nickname"}, Valid: true,
				Definition: "CREATE INDEX users_nickname_idx ON public.users USING btree (nickname)"},
			"users_lower_email_idx": {Name: "users_lower_email_idx", Valid: false,
				Definition: "CREATE INDEX users_lower_email_idx ON public.users USING btree (lower(email)) WHERE (age > 0)"},
		},
		Constraints: map[string]*schema.Constraint{
			"users_pkey":      {Name: "users_pkey", Type: "p", Columns: []string{"id"}, Definition: "PRIMARY KEY (id)", Validated: true},
			"users_email_key": {Name: "users_email_key", Type: "u", Columns: []string{"email"}, Definition: "UNIQUE (email)", Validated: true},
			"users_team_fk": {Name: "users_team_fk", Type: "f", Columns: []string{"team_id"}, Definition: "FOREIGN KEY (team_id) REFERENCES teams(id)",
				Validated: true, RefTable: "teams"},
			"users_age_check": {Name: "users_age_check", Type: "c", Columns: []string{"age"}, Definition: "CHECK ((age >= 0))", Validated: false},
		},
	}
	sessions := &schema.Table{Name: "sessions", Physical: "sessions", OID: 3, PrimaryKey: []string{"id"},
		Columns: []*schema.Column{col("id", "integer", false, nil), col("token", "text", false, nil)},
		Indexes: map[string]*schema.Index{"sessions_pkey": {Name: "sessions_pkey", Columns: []string{"id"}, Unique: true, Primary: true, Valid: true,
			Definition: "CREATE UNIQUE INDEX sessions_pkey ON public.sessions USING btree (id)", Constraint: "sessions_pkey"}},
		Constraints: map[string]*schema.Constraint{},
	}
	logs := &schema.Table{Name: "logs", Physical: "logs", OID: 4, Columns: []*schema.Column{col("line", "text", true, nil)},
		Indexes: map[string]*schema.Index{}, Constraints: map[string]*schema.Constraint{}}
	events := &schema.Table{Name: "events", Physical: "events", OID: 5, Partitioned: true,
		Columns: []*schema.Column{col("id", "bigint", false, nil), col("at", "timestamp with time zone", false, nil)},
		Indexes: map[string]*schema.Index{}, Constraints: map[string]*schema.Constraint{}}
	s := &schema.Schema{Name: "public", Tables: map[string]*schema.Table{}, Indexes: map[string]string{}, Enums: map[string][]string{"mood": {"sad", "happy"}}, ServerVersion: 150000}
	for _, t := range []*schema.Table{teams, users, sessions, logs, events} {
		s.Tables[t.Name] = t
		for n := range t.Indexes {
			s.Indexes[n] = t.Name
		}
	}
	s.Indexes["events_part_idx"] = "" // an index of a partition
	return s
}

// FuzzCompile: whatever parses compiles into a plan or fails with an *Error
// naming the file, never panics, and never changes the schema it is given.
func FuzzCompile(f *testing.F) {
	fuzzSeeds(f)
	for _, ops := range []string{
		"- add_column: {table: users, column: {nullable: true, name: handle, type: text, unique: true, check: {name: c, constraint: length(handle) < 9}}}",
		"- add_column: {table: users, column: {name: score, type: int, nullable: false}, up: age * 2}",
		"- alter_column: {table: users, column: age, type: bigint, nullable: false, default: '1', name: years}",
		"- alter_column: {table: users, column: nickname, unique: {name: u}, check: {name: c, constraint: nickname <> ''}, references: {name: f, table: teams, column: name}}",
		"- alter_column: {table: users, column: email, type: varchar(255), up: lower(email), down: email}\n- rename_column: {table: users, from: email, to: mail}",
		"- drop_column: {table: sessions, column: token, down: \"'x'\"}",
		"- rename_column: {table: users, from: nickname, to: nick}\n- create_index: {table: users, name: i, columns: [nick]}",
		"- rename_table: {from: sessions, to: s2}\n- add_column: {table: s2, column: {nullable: true, name: ip, type: inet}}\n- drop_table: {name: s2}",
		"- drop_column: {table: users, column: nickname}\n- add_column: {table: users, column: {nullable: true, name: nickname, type: int}}",
		"- create_table: {name: posts, columns: [{name: id, type: bigint, pk: true}, {name: author, type: bigint, references: {name: a, table: users, column: id}}], constraints: [{name: pc, type: check, check: id > 0}]}",
		"- create_index: {table: users, name: users_lower_email_idx, columns: [{expression: lower(email)}], predicate: age > 0}",
		"- create_index: {table: events, name: ei, columns: [id]}",
		"- drop_index: {name: users_nickname_idx}\n- drop_table: {name: logs}",
		"- alter_column: {table: logs, column: line, type: int}",
		"- sql: {up: SELECT 1, down: SELECT 2}",
	} {
		f.Add([]byte("operations:\n" + ops + "\n"))
	}
	base := fuzzSchema()
	pristine := base.Clone()
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "fuzz/m.yaml"
		m, err := Parse(file, data)
		if err != nil {
			return
		}
		p, ns, err := Compile(m, base, Options{Schema: "public", StateSchema: "online"})
		if d := schemaDiff(base, pristine); d != "" {
			t.Fatalf("Compile changed the schema it was given: %s", d)
		}
		if err != nil {
			checkFuzzErr(t, file, err)
			var e *Error
			errors.As(err, &e)
			if e.Op > len(m.Operations) {
				t.Fatalf("error names operation %d of %d", e.Op, len(m.Operations))
			}
			return
		}
		if p == nil || ns == nil {
			t.Fatal("no plan and no error")
		}
		for _, steps := range [][]Step{p.Expand, p.Finish, p.Contract} {
			for _, s := range steps {
				if s.Op < 0 || s.Op > len(m.Operations) || len(s.SQL) == 0 {
					t.Fatalf("step %+v", s)
				}
			}
		}
		_ = p.String()
	})
}
