package lint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ruleCases: for each rule, SQL it must flag and SQL it must not.
var ruleCases = []struct {
	rule, flagged, clean string
}{
	{"changing-column-type", `ALTER TABLE users ALTER COLUMN age TYPE bigint;`,
		`CREATE TABLE t (a varchar(10)); SET lock_timeout = '1s'; ALTER TABLE t ADD COLUMN b int; ALTER TABLE t ALTER COLUMN a TYPE varchar(20);`},
	{"changing-column-type", `CREATE TABLE t (a varchar(10)); ALTER TABLE t2 ALTER COLUMN a TYPE varchar(5);`,
		`CREATE TABLE t2 (a numeric(10,2)); INSERT INTO t2 VALUES (1); SELECT 1;`},
	{"require-concurrent-index-creation", `CREATE INDEX users_email ON users (email);`,
		`CREATE INDEX CONCURRENTLY users_email ON users (email); CREATE TABLE t (a int); CREATE INDEX t_a ON t (a);`},
	{"require-concurrent-index-deletion", `DROP INDEX users_email;`, `DROP INDEX CONCURRENTLY users_email;`},
	{"constraint-missing-not-valid", `ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);`,
		`ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;`},
	{"constraint-missing-not-valid", `ALTER TABLE users ADD CONSTRAINT age_pos CHECK (age > 0);`, `ALTER TABLE users ADD CONSTRAINT age_pos CHECK (age > 0) NOT VALID;`},
	{"set-not-null", `ALTER TABLE users ALTER COLUMN name SET NOT NULL;`,
		`ALTER TABLE users ADD CONSTRAINT users_name_nn CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_name_nn;
ALTER TABLE users ALTER COLUMN name SET NOT NULL;`},
	{"volatile-default", `ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();`,
		`ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(); ALTER TABLE users ADD COLUMN n int DEFAULT 0;`},
	{"volatile-default", `ALTER TABLE users ADD COLUMN seq bigserial;`, `ALTER TABLE users ADD COLUMN seq bigint;`},
	{"adding-stored-generated-column", `ALTER TABLE users ADD COLUMN lower_email text GENERATED ALWAYS AS (lower(email)) STORED;`,
		`CREATE TABLE t (a text, b text GENERATED ALWAYS AS (lower(a)) STORED);`},
	{"not-null-without-default", `ALTER TABLE users ADD COLUMN plan text NOT NULL;`, `ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';`},
	{"renaming-column", `ALTER TABLE users RENAME COLUMN email TO email_address;`, `CREATE TABLE t (a int); ALTER TABLE t RENAME COLUMN a TO b;`},
	{"renaming-table", `ALTER TABLE users RENAME TO accounts;`, `ALTER INDEX users_email RENAME TO users_email_idx;`},
	{"dropping-column", `ALTER TABLE users DROP COLUMN legacy;`, `ALTER TABLE users ALTER COLUMN legacy DROP DEFAULT;`},
	{"dropping-table", `DROP TABLE old_events;`, `CREATE TABLE tmp (a int); DROP TABLE tmp;`},
	{"unique-under-exclusive-lock", `ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);`,
		`CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;`},
	{"unique-under-exclusive-lock", `ALTER TABLE logs ADD PRIMARY KEY (id);`, `ALTER TABLE logs ADD CONSTRAINT logs_pkey PRIMARY KEY USING INDEX logs_id_idx;`},
	{"table-rewrite", `VACUUM FULL users;`, `VACUUM (ANALYZE) users;`},
	{"table-rewrite", `CLUSTER users USING users_pkey;`, `ANALYZE users;`},
	{"table-rewrite", `ALTER TABLE users SET TABLESPACE fast;`, `ALTER TABLE users SET (fillfactor = 90);`},
	{"reindex-without-concurrently", `REINDEX INDEX users_email;`, `REINDEX INDEX CONCURRENTLY users_email;`},
	{"explicit-lock", `BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; COMMIT;`, `BEGIN; SELECT 1; COMMIT;`},
	{"enum-value-rename", `ALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy';`, `ALTER TYPE mood ADD VALUE 'meh';`},
	{"concurrently-in-transaction", `BEGIN; CREATE INDEX CONCURRENTLY users_email ON users (email); COMMIT;`,
		`BEGIN; SELECT 1; COMMIT; CREATE INDEX CONCURRENTLY users_email ON users (email);`},
	{"missing-lock-timeout", `ALTER TABLE users ADD COLUMN note text;`, `SET lock_timeout = '2s'; ALTER TABLE users ADD COLUMN note text;`},
}

func rulesOf(t *testing.T, name, src string) []Finding {
	t.Helper()
	rep, err := Source(name, []byte(src))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rep.Findings
}

func has(fs []Finding, rule string) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

func TestRules(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range ruleCases {
		covered[tc.rule] = true
		if fs := rulesOf(t, "flagged.sql", tc.flagged); !has(fs, tc.rule) {
			t.Errorf("%s: not flagged in %q (got %v)", tc.rule, tc.flagged, fs)
		}
		if fs := rulesOf(t, "clean.sql", tc.clean); has(fs, tc.rule) {
			t.Errorf("%s: flagged in the clean %q", tc.rule, tc.clean)
		}
	}
	for _, r := range Rules {
		if !covered[r.ID] && r.ID != "ignore-without-reason" {
			t.Errorf("rule %s has no test case", r.ID)
		}
	}
}

func TestFindingPositionAndText(t *testing.T) {
	src := "SET lock_timeout = '1s';\n\n-- add the index\n  CREATE INDEX users_email ON users (email);\n"
	fs := rulesOf(t, "m.sql", src)
	if len(fs) != 1 {
		t.Fatalf("got %v", fs)
	}
	f := fs[0]
	if f.Rule != "require-concurrent-index-creation" || f.Line != 4 || f.Col != 3 || f.File != "m.sql" ||
		!strings.Contains(f.Why, "SHARE") || !strings.Contains(f.Instead, "CONCURRENTLY") ||
		f.Statement != "CREATE INDEX users_email ON users (email)" {
		t.Fatalf("got %+v", f)
	}
}

func TestIgnoreComment(t *testing.T) {
	src := `SET lock_timeout = '1s';
-- online-lint-ignore require-concurrent-index-creation: the table has 10 rows
CREATE INDEX a ON users (a);
-- online-lint-ignore require-concurrent-index-creation
CREATE INDEX b ON users (b);
-- online-lint-ignore dropping-column: wrong rule
CREATE INDEX c ON users (c);
`
	rep, err := Source("i.sql", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ignored) != 1 || rep.Ignored[0].Line != 3 || rep.Ignored[0].Reason != "the table has 10 rows" {
		t.Fatalf("ignored: %+v", rep.Ignored)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.Rule+"@"+string(rune('0'+f.Line)))
	}
	want := "ignore-without-reason@5 require-concurrent-index-creation@5 require-concurrent-index-creation@7"
	if strings.Join(got, " ") != want {
		t.Fatalf("findings %v, want %s", got, want)
	}
}

func TestToolTransactions(t *testing.T) {
	goose := "-- +goose Up\nCREATE INDEX CONCURRENTLY i ON users (a);\n-- +goose Down\nDROP INDEX i;\n"
	if fs := rulesOf(t, "20240101_idx.sql", goose); !has(fs, "concurrently-in-transaction") {
		t.Errorf("goose without NO TRANSACTION: %v", fs)
	}
	gooseNoTx := "-- +goose NO TRANSACTION\n" + goose
	if fs := rulesOf(t, "20240101_idx.sql", gooseNoTx); has(fs, "concurrently-in-transaction") || len(fs) != 0 {
		t.Errorf("goose with NO TRANSACTION: %v", fs)
	}
	if fs := rulesOf(t, "000002_idx.up.sql", "CREATE INDEX CONCURRENTLY i ON users (a);"); len(fs) != 0 {
		t.Errorf("golang-migrate, one statement: %v", fs)
	}
	if fs := rulesOf(t, "000002_idx.up.sql", "SET lock_timeout = '1s'; CREATE INDEX CONCURRENTLY i ON users (a);"); !has(fs, "concurrently-in-transaction") {
		t.Errorf("golang-migrate, two statements: %v", fs)
	}
}

func TestMigrationFile(t *testing.T) {
	src := `operations:
  - add_column:
      table: users
      column: {name: token, type: uuid, nullable: true, default: gen_random_uuid()}
  - add_column:
      table: users
      column: {name: at, type: timestamptz, nullable: true, default: now()}
`
	fs := rulesOf(t, "m.yaml", src)
	if len(fs) != 1 || fs[0].Rule != "volatile-default" || fs[0].Line != 4 {
		t.Fatalf("got %+v", fs)
	}
	raw := `operations:
  - sql:
      up: |
        ALTER TABLE users ALTER COLUMN age TYPE bigint;
        CREATE INDEX CONCURRENTLY i ON users (a);
`
	fs = rulesOf(t, "r.yaml", raw)
	var got []string
	for _, f := range fs {
		got = append(got, f.Rule)
		if f.Rule == "concurrently-in-transaction" && (f.Line != 5 || f.Col != 9) {
			t.Errorf("position %d:%d, want 5:9", f.Line, f.Col)
		}
	}
	if strings.Join(got, " ") != "changing-column-type concurrently-in-transaction" {
		t.Fatalf("got %v", got)
	}
	ignored := "operations:\n  # online-lint-ignore changing-column-type: users has 3 rows\n" + raw[len("operations:\n"):]
	if fs := rulesOf(t, "r.yaml", ignored); len(fs) != 1 || fs[0].Rule != "concurrently-in-transaction" {
		t.Fatalf("yaml ignore: %v", fs)
	}
}

func TestUnreadableInput(t *testing.T) {
	var ie *InputError
	_, err := Source("bad.sql", []byte("ALTER TABLEX t;"))
	if err == nil || !asInput(err, &ie) || !strings.Contains(err.Error(), "bad.sql: line 1, column 7") {
		t.Fatalf("got %v", err)
	}
	_, err = Source("bad.yaml", []byte("operations:\n  - nope: {}\n"))
	if err == nil || !asInput(err, &ie) {
		t.Fatalf("got %v", err)
	}
	if _, err := Paths([]string{"testdata/does-not-exist.sql"}); err == nil || !asInput(err, &ie) {
		t.Fatalf("got %v", err)
	}
}

func asInput(err error, target **InputError) bool { return errors.As(err, target) }

func TestDirectorySkipsOtherYAML(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"package.json":   `{"name": "app"}`,
		"ci.yaml":        "jobs: {}\n",
		"01_index.sql":   "CREATE INDEX i ON users (a);\n",
		"02_online.yaml": "operations:\n  - sql: { up: \"CREATE INDEX CONCURRENTLY j ON users (b)\" }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Paths([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 2 || len(rep.Findings) != 2 {
		t.Fatalf("files %d, findings %+v", rep.Files, rep.Findings)
	}
	// Named explicitly, a file that is not a migration is an error.
	if _, err := Paths([]string{filepath.Join(dir, "ci.yaml")}); err == nil {
		t.Fatal("ci.yaml given by name was accepted")
	}
}
