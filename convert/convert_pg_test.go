package convert

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// setup is the database every case starts from, with rows in it.
const setup = `
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE teams (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text, age int, team_id bigint,
  note varchar(20), feeling mood, CONSTRAINT users_age_pos CHECK (age > 0));
CREATE INDEX users_age_idx ON users (age);
CREATE TABLE logs (id bigint NOT NULL, msg text);
CREATE TABLE rooms (id int PRIMARY KEY, during tsrange);
INSERT INTO teams VALUES (1, 'a');
INSERT INTO users VALUES (1, 'a@x', 'Ann', 30, 1, 'n1', 'happy'), (2, 'b@x', 'Bob', 40, 1, 'n2', NULL);
INSERT INTO logs VALUES (1, 'x');
`

type convCase struct {
	name string
	sql  string
	// ref is what PostgreSQL runs for the reference schema when sql itself
	// cannot run there (a NOT NULL column without a default on a table
	// with rows) or means less than the conversion (NOT VALID).
	ref string
	// data is a query whose result must be the same in both databases.
	data string
	// ops are the operation kinds the conversion must produce, per file.
	ops [][]string
}

var convCases = []convCase{
	{name: "rename_column", sql: `ALTER TABLE users RENAME COLUMN name TO full_name;`, ops: [][]string{{"rename_column"}},
		data: `SELECT full_name FROM users ORDER BY id`},
	{name: "rename_table", sql: `ALTER TABLE teams RENAME TO groups;`, ops: [][]string{{"rename_table"}}},
	{name: "add_column_default", sql: `ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;`, ops: [][]string{{"add_column"}},
		data: `SELECT active FROM users ORDER BY id`},
	{name: "add_column_not_null", sql: `ALTER TABLE users ADD COLUMN score int NOT NULL;`, ops: [][]string{{"add_column"}},
		ref:  `ALTER TABLE users ADD COLUMN score int NOT NULL DEFAULT 0; ALTER TABLE users ALTER COLUMN score DROP DEFAULT;`,
		data: `SELECT score FROM users ORDER BY id`},
	{name: "add_column_references_check_unique", ops: [][]string{{"add_column", "add_column"}},
		sql: `ALTER TABLE users ADD COLUMN manager_id bigint REFERENCES users (id) ON DELETE SET NULL,
  ADD COLUMN code text UNIQUE CHECK (length(code) < 10);`},
	{name: "drop_column", sql: `ALTER TABLE users DROP COLUMN note;`, ops: [][]string{{"drop_column"}}},
	{name: "alter_type_using", sql: `ALTER TABLE users ALTER COLUMN age TYPE bigint USING age * 2;`, ops: [][]string{{"alter_column"}},
		data: `SELECT age FROM users ORDER BY id`},
	{name: "alter_type_cast", sql: `ALTER TABLE users ALTER COLUMN note TYPE varchar(100);`, ops: [][]string{{"alter_column"}},
		data: `SELECT note FROM users ORDER BY id`},
	{name: "set_not_null", sql: `ALTER TABLE users ALTER COLUMN name SET NOT NULL;`, ops: [][]string{{"alter_column"}}},
	{name: "drop_not_null", sql: `ALTER TABLE users ALTER COLUMN email DROP NOT NULL;`, ops: [][]string{{"alter_column"}}},
	{name: "set_and_drop_default", sql: `ALTER TABLE users ALTER COLUMN age SET DEFAULT 18; ALTER TABLE teams ALTER COLUMN name SET DEFAULT 'x';
ALTER TABLE teams ALTER COLUMN name DROP DEFAULT;`, ops: [][]string{{"alter_column", "alter_column"}}},
	{name: "composed_column", sql: `ALTER TABLE users ALTER COLUMN age TYPE bigint;
ALTER TABLE users ALTER COLUMN age SET NOT NULL;
ALTER TABLE users ALTER COLUMN age SET DEFAULT 0;
COMMENT ON COLUMN users.age IS 'years';`, ops: [][]string{{"alter_column"}}, data: `SELECT age FROM users ORDER BY id`},
	{name: "not_null_then_using", sql: `ALTER TABLE users ALTER COLUMN age SET NOT NULL;
ALTER TABLE users ALTER COLUMN age TYPE bigint USING age + 1;
ALTER TABLE users RENAME COLUMN age TO years;`, ops: [][]string{{"alter_column", "alter_column"}}, data: `SELECT years FROM users ORDER BY id`},
	{name: "add_constraint_unique", sql: `ALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE (name);`, ops: [][]string{{"create_constraint"}}},
	{name: "add_constraint_check", sql: `ALTER TABLE users ADD CONSTRAINT users_age_max CHECK (age < 200) NOT VALID;`,
		ref: `ALTER TABLE users ADD CONSTRAINT users_age_max CHECK (age < 200);`, ops: [][]string{{"create_constraint"}}},
	{name: "not_valid_then_validate", sql: `SET lock_timeout = '2s';
ALTER TABLE users ADD CONSTRAINT users_team_fk FOREIGN KEY (team_id) REFERENCES teams (id) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_team_fk;`, ops: [][]string{{"create_constraint"}}},
	{name: "add_constraint_foreign_key", sql: `ALTER TABLE users ADD CONSTRAINT users_team_fk FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE SET NULL;`,
		ops: [][]string{{"create_constraint"}}},
	{name: "add_constraint_primary_key", sql: `ALTER TABLE logs ADD PRIMARY KEY (id);`, ops: [][]string{{"create_constraint"}}},
	{name: "add_constraint_exclude", sql: `ALTER TABLE rooms ADD CONSTRAINT rooms_no_overlap EXCLUDE USING gist (during WITH &&);`, ops: [][]string{{"sql"}}},
	{name: "drop_constraint", sql: `ALTER TABLE users DROP CONSTRAINT users_age_pos;`, ops: [][]string{{"drop_multicolumn_constraint"}}},
	{name: "rename_constraint", sql: `ALTER TABLE users RENAME CONSTRAINT users_age_pos TO users_age_positive;`, ops: [][]string{{"rename_constraint"}}},
	{name: "create_index_concurrently", sql: `CREATE INDEX CONCURRENTLY users_lower_email ON users (lower(email)) WHERE age > 18;`, ops: [][]string{{"create_index"}}},
	{name: "create_unique_index", sql: `CREATE UNIQUE INDEX users_name_uq ON users (name, age DESC NULLS LAST) INCLUDE (email);`, ops: [][]string{{"create_index"}}},
	{name: "drop_index", sql: `DROP INDEX CONCURRENTLY users_age_idx;`, ops: [][]string{{"drop_index"}}},
	{name: "create_table", ops: [][]string{{"create_table"}}, sql: `CREATE TABLE posts (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id),
  title text NOT NULL CHECK (title <> ''),
  body text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, title)
);
COMMENT ON TABLE posts IS 'blog posts';
COMMENT ON COLUMN posts.body IS 'markdown';`},
	{name: "create_table_exclude", ops: [][]string{{"create_table"}}, sql: `CREATE TABLE bookings (
  id int PRIMARY KEY,
  room int NOT NULL,
  during tsrange,
  CONSTRAINT bookings_no_overlap EXCLUDE USING gist (during WITH &&) WHERE (room > 0)
);`},
	{name: "add_identity_column_stays_sql", sql: `ALTER TABLE logs ADD COLUMN seq bigint GENERATED BY DEFAULT AS IDENTITY;`, ops: [][]string{{"sql"}}},
	{name: "drop_table", sql: `DROP TABLE logs;`, ops: [][]string{{"drop_table"}}},
	{name: "create_enum", sql: `CREATE TYPE status AS ENUM ('new', 'done');`, ops: [][]string{{"create_enum"}}},
	{name: "add_enum_value", sql: `ALTER TYPE mood ADD VALUE 'meh' BEFORE 'sad';`, ops: [][]string{{"add_enum_value"}}},
	{name: "comment_on_column", sql: `COMMENT ON COLUMN users.email IS 'login';`, ops: [][]string{{"alter_column"}}},
	{name: "replica_identity", sql: `ALTER TABLE users REPLICA IDENTITY FULL;`, ops: [][]string{{"set_replica_identity"}}},
	{name: "mixed_split", sql: `BEGIN;
ALTER TABLE users ADD COLUMN nickname text;
ALTER TABLE users ALTER COLUMN age SET STATISTICS 500;
CREATE INDEX users_nickname_idx ON users (nickname);
COMMIT;`, ops: [][]string{{"add_column"}, {"sql"}, {"create_index"}}},
}

// TestConvertGolden checks the converted YAML of every case against
// testdata/convert.golden (go test -run TestConvertGolden -update rewrites it).
func TestConvertGolden(t *testing.T) {
	var b strings.Builder
	for _, tc := range convCases {
		outs, err := File(tc.name+".sql", []byte(tc.sql))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b.WriteString("######## " + tc.name + "\n-- " + strings.ReplaceAll(tc.sql, "\n", "\n-- ") + "\n")
		for _, o := range outs {
			b.WriteString("#### " + o.Name + ".yaml\n")
			b.Write(o.YAML)
		}
		var got [][]string
		for _, o := range outs {
			m, err := operations.Parse(o.Name+".yaml", o.YAML)
			if err != nil {
				t.Fatalf("%s: the converted file does not parse: %v\n%s", tc.name, err, o.YAML)
			}
			var kinds []string
			for _, op := range m.Operations {
				kinds = append(kinds, kindName(op))
			}
			got = append(got, kinds)
		}
		if strings.Join(flat(got), ";") != strings.Join(flat(tc.ops), ";") {
			t.Errorf("%s: operations %v, want %v", tc.name, got, tc.ops)
		}
	}
	golden := filepath.Join("testdata", "convert.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != b.String() {
		t.Errorf("converted YAML differs from %s (run with -update and review the diff):\n%s", golden, b.String())
	}
}

func flat(x [][]string) []string {
	var out []string
	for _, f := range x {
		out = append(out, strings.Join(f, ","))
	}
	return out
}

// kindName is the file-format name of a parsed operation.
func kindName(op operations.Operation) string {
	name := strings.TrimPrefix(strings.TrimPrefix(fmt.Sprintf("%T", op), "*operations."), "operations.")
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	switch s := b.String(); s {
	case "raw_s_q_l":
		return "sql"
	case "drop_multi_column_constraint":
		return "drop_multicolumn_constraint"
	default:
		return s
	}
}

// TestConvertedRunOnline runs each case's SQL straight on one database and
// its conversion through online start + complete on another, both from the
// same rows, then compares the two catalogs (columns by name, with type,
// NOT NULL, default and comment; constraints; indexes; enums; replica
// identity; table comments) and the case's data query.
func TestConvertedRunOnline(t *testing.T) {
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			refURL, onURL := pgtest.NewDB(t), pgtest.NewDB(t)
			ref, on := pgtest.Connect(t, refURL), pgtest.Connect(t, onURL)
			pgtest.Exec(t, ref, setup)
			pgtest.Exec(t, on, setup)
			refSQL := tc.sql
			if tc.ref != "" {
				refSQL = tc.ref
			}
			pgtest.Exec(t, ref, refSQL)
			outs, err := File(tc.name+".sql", []byte(tc.sql))
			if err != nil {
				t.Fatal(err)
			}
			eng, err := phases.Open(ctx, phases.Config{URL: onURL, LockTimeout: 500 * time.Millisecond, LockRetryDeadline: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close(context.Background())
			for _, o := range outs {
				m, err := operations.Parse(o.Name+".yaml", o.YAML)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := eng.Start(ctx, m); err != nil {
					t.Fatalf("start %s: %s\n%s", o.Name, pg.Explain(err), o.YAML)
				}
				if _, err := eng.Complete(ctx); err != nil {
					t.Fatalf("complete %s: %s", o.Name, pg.Explain(err))
				}
			}
			want := strings.Join(pgtest.QueryStrings(t, ref, catalogQuery), "\n")
			got := strings.Join(pgtest.QueryStrings(t, on, catalogQuery), "\n")
			if want != got {
				t.Errorf("catalog after online differs from the SQL run directly\n--- SQL:\n%s\n--- online:\n%s", want, got)
			}
			if tc.data != "" {
				w, g := pgtest.QueryStrings(t, ref, tc.data), pgtest.QueryStrings(t, on, tc.data)
				if strings.Join(w, ",") != strings.Join(g, ",") {
					t.Errorf("data: SQL gives %v, online gives %v", w, g)
				}
			}
		})
	}
}

// catalogQuery describes the public schema in an order that does not depend
// on column positions (online adds a rewritten column at the end).
const catalogQuery = `
SELECT 'column', c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), coalesce(col_description(c.oid, a.attnum), ''),
       a.attidentity::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid), k.convalidated::text, '', '', ''
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
UNION ALL
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisvalid::text, '', '', ''
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
UNION ALL
SELECT 'enum', t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder), '', '', '', ''
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public' GROUP BY t.typname
UNION ALL
SELECT 'table', c.relname, c.relreplident::text, coalesce(obj_description(c.oid, 'pg_class'), ''), '', '', ''
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY 1, 2`
