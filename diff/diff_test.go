package diff_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/diff"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/schema"
)

// describe renders what a schema promises an application (names, types,
// nullability, defaults, comments, indexes, constraints, enums) in a stable
// order. Column order is left out: a column online adds or rewrites goes to
// the end of its table.
func describe(s *schema.Schema) string {
	var b strings.Builder
	for _, name := range s.TableNames() {
		t := s.Tables[name]
		fmt.Fprintf(&b, "table %s comment=%v\n", name, deref(t.Comment))
		cols := slices.Clone(t.Columns)
		slices.SortFunc(cols, func(a, b *schema.Column) int { return strings.Compare(a.Name, b.Name) })
		for _, c := range cols {
			fmt.Fprintf(&b, "  column %s %s nullable=%v default=%v identity=%q generated=%q comment=%v\n",
				c.Name, c.Type, c.Nullable, deref(c.Default), c.Identity, c.GeneratedExpr, deref(c.Comment))
		}
		for _, n := range slices.Sorted(maps.Keys(t.Indexes)) {
			fmt.Fprintf(&b, "  index %s\n", t.Indexes[n].Definition)
		}
		for _, n := range slices.Sorted(maps.Keys(t.Constraints)) {
			c := t.Constraints[n]
			fmt.Fprintf(&b, "  constraint %s %s %s validated=%v\n", n, c.Type, c.Definition, c.Validated)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(s.Enums)) {
		fmt.Fprintf(&b, "enum %s %v\n", n, s.Enums[n])
	}
	return b.String()
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

type result struct {
	url    string
	res    *diff.Result
	text   string
	passes int // migrations it took to reach the desired schema
}

// roundTrip makes a database from before, writes the migration to desired,
// runs it through start and complete, and diffs again, until nothing is left
// to do (at most three migrations); the schema must then equal the desired
// one. It returns the first migration.
func roundTrip(t *testing.T, before, desired string, renames ...diff.Rename) result {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	pgtest.Exec(t, conn, before)
	want, err := diff.LoadSQL(ctx, url, "desired.sql", desired, "public")
	if err != nil {
		t.Fatalf("load desired: %s", pg.Explain(err))
	}
	out := result{url: url}
	for ; ; out.passes++ {
		cur, err := diff.ReadURL(ctx, url, "public")
		if err != nil {
			t.Fatal(err)
		}
		res, err := diff.Compare(cur, want, renames)
		if err != nil {
			t.Fatal(err)
		}
		renames = nil // applied by the first migration
		if len(res.Ops) == 0 {
			break
		}
		if out.passes > 0 {
			text, _ := res.Render("")
			t.Logf("migration %d:\n%s", out.passes+1, text)
		}
		if out.passes == 3 {
			t.Fatalf("still %d operations after 3 migrations", len(res.Ops))
		}
		name := fmt.Sprintf("generated_%d", out.passes+1)
		text, err := res.Render(name)
		if err != nil {
			t.Fatal(err)
		}
		if out.res == nil {
			out.res, out.text = res, string(text)
		}
		file := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(file, text, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := operations.ParseFile(file)
		if err != nil {
			t.Fatalf("the generated file does not parse: %v\n%s", err, text)
		}
		e, err := phases.Open(ctx, phases.Config{URL: url, LockRetryDeadline: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Start(ctx, m); err != nil {
			t.Fatalf("start the generated migration: %s\n%s", pg.Explain(err), text)
		}
		if _, err := e.Complete(ctx); err != nil {
			t.Fatalf("complete the generated migration: %s\n%s", pg.Explain(err), text)
		}
		_ = e.Close(ctx)
	}
	got, err := diff.ReadURL(ctx, url, "public")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := describe(got), describe(want); g != w {
		t.Fatalf("schema after the generated migration differs from the desired one\n--- got\n%s\n--- want\n%s\n--- migration\n%s", g, w, out.text)
	}
	return out
}

func (r result) rows(t *testing.T, sql string) []string {
	t.Helper()
	return pgtest.QueryStrings(t, pgtest.Connect(t, r.url), sql)
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestDiffTables(t *testing.T) {
	t.Parallel()
	r := roundTrip(t, `
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL);
CREATE TABLE legacy_parent (id int PRIMARY KEY);
CREATE TABLE legacy_child (id int PRIMARY KEY, parent_id int REFERENCES legacy_parent(id));
CREATE TABLE notes (id int PRIMARY KEY, parent_id int REFERENCES legacy_parent(id), body text);
CREATE TABLE gone_parent (id int PRIMARY KEY);
CREATE TABLE gone_child (id int PRIMARY KEY, parent_id int REFERENCES gone_parent(id));
INSERT INTO gone_parent VALUES (1); INSERT INTO gone_child VALUES (1, 1);
INSERT INTO customers (email) VALUES ('a@x'), ('b@x');
INSERT INTO legacy_parent VALUES (1); INSERT INTO legacy_child VALUES (1, 1); INSERT INTO notes VALUES (1, 1, 'n');`, `
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL);
CREATE TABLE notes (id int PRIMARY KEY, parent_id int, body text);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
  total numeric(10,2) NOT NULL DEFAULT 0, note text, CONSTRAINT total_positive CHECK (total >= 0));
COMMENT ON TABLE orders IS 'what customers bought';
CREATE TABLE order_lines (order_id bigint REFERENCES orders(id), line int, sku text NOT NULL, PRIMARY KEY (order_id, line));
CREATE TABLE tags (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text, slug text GENERATED ALWAYS AS (lower(name)) STORED);`)
	// A kept table's foreign key to a dropped table is dropped in the same
	// migration: complete drops tables after the column swaps.
	eq(t, "migrations", r.passes, 1)
	if len(r.res.Unsupported) != 0 {
		t.Fatalf("nothing should be left unexpressed, got %q", r.res.Unsupported)
	}
	// Referencing tables are created after and dropped before the tables
	// they reference, or the file would not run.
	for _, order := range [][2]string{{"name: orders", "name: order_lines"}, {"name: gone_child", "name: gone_parent"}} {
		if i, j := strings.Index(r.text, order[0]), strings.Index(r.text, order[1]); i < 0 || j < 0 || i > j {
			t.Fatalf("%s should come before %s:\n%s", order[0], order[1], r.text)
		}
	}
	eq(t, "customers kept", strings.Join(r.rows(t, "SELECT id, email FROM customers ORDER BY id"), ","), "1|a@x,2|b@x")
	eq(t, "notes kept", strings.Join(r.rows(t, "SELECT id, parent_id, body FROM notes"), ","), "1|1|n")
}

func TestDiffColumnsTypesNullabilityDefaults(t *testing.T) {
	t.Parallel()
	r := roundTrip(t, `
CREATE TABLE users (id int PRIMARY KEY, age text, score int, nick text, legacy int NOT NULL, status text DEFAULT 'new', note text DEFAULT 'x', bio text NOT NULL, flag boolean);
COMMENT ON COLUMN users.bio IS 'old'; COMMENT ON COLUMN users.status IS 'gone';
INSERT INTO users VALUES (1, '42', 7, NULL, 1, 'a', 'n1', 'b1', NULL), (2, NULL, NULL, 'bo', 2, 'b', NULL, 'b2', true);`, `
CREATE TABLE users (id int PRIMARY KEY, age int, score bigint NOT NULL, nick text NOT NULL, status text DEFAULT 'active', note text, bio text,
  flag boolean NOT NULL DEFAULT false, email text, country text NOT NULL DEFAULT 'NZ', created timestamptz NOT NULL);
COMMENT ON COLUMN users.email IS 'where we write'; COMMENT ON COLUMN users.bio IS 'new';`)
	eq(t, "unsupported", len(r.res.Unsupported), 0)
	eq(t, "migrations", r.passes, 1)
	// Casts and placeholders are marked for review, in the file and in
	// the count the CLI prints.
	for _, want := range []string{"REVIEW: a cast from text", "REVIEW: the placeholder existing NULLs get", "REVIEW: NOT NULL without a default", "REVIEW: the value the old version's NOT NULL column gets", "nullable: true"} {
		if !strings.Contains(r.text, want) {
			t.Fatalf("the migration lacks %q:\n%s", want, r.text)
		}
	}
	if r.res.Review < 4 {
		t.Fatalf("review count %d, want at least 4", r.res.Review)
	}
	eq(t, "data", strings.Join(r.rows(t, "SELECT id, age, score, nick, status, note, bio, flag, email, country, created IS NOT NULL FROM users ORDER BY id"), ","),
		"1|42|7||a|n1|b1|false|NULL|NZ|true,2|NULL|0|bo|b|NULL|b2|true|NULL|NZ|true")
}

func TestDiffIndexesAndConstraints(t *testing.T) {
	t.Parallel()
	r := roundTrip(t, `
CREATE TABLE teams (id int PRIMARY KEY, name text);
CREATE TABLE players (id int PRIMARY KEY, team_id int, email text, score int, nick text, CONSTRAINT email_has_at CHECK (email LIKE '%@%'));
CREATE INDEX players_nick_idx ON players (nick);
INSERT INTO teams VALUES (1, 'a'), (2, 'b');
INSERT INTO players VALUES (1, 1, 'p1@x', 10, 'p'), (2, 2, 'p2@x', 20, 'q');`, `
CREATE TABLE teams (id int PRIMARY KEY, name text, CONSTRAINT teams_name_key UNIQUE (name));
CREATE TABLE players (id int PRIMARY KEY, team_id int REFERENCES teams(id) ON DELETE SET NULL, email text, score int, nick text,
  CONSTRAINT score_positive CHECK (score > 0), CONSTRAINT players_email_team UNIQUE (email, team_id));
CREATE INDEX players_score_idx ON players (score DESC NULLS LAST) WHERE score > 5;
CREATE UNIQUE INDEX players_lower_nick ON players USING btree (nick) INCLUDE (score);
CREATE INDEX players_team_hash ON players USING hash (team_id);
CREATE UNIQUE INDEX players_email_nnd ON players (email) NULLS NOT DISTINCT WITH (fillfactor = 70);`)
	eq(t, "unsupported", len(r.res.Unsupported), 0)
	eq(t, "migrations", r.passes, 1)
	for _, want := range []string{"drop_index", "drop_multicolumn_constraint", "create_constraint", "create_index"} {
		if !strings.Contains(r.text, want) {
			t.Fatalf("the migration lacks %s:\n%s", want, r.text)
		}
	}
	eq(t, "players kept", strings.Join(r.rows(t, "SELECT id, team_id, email, score, nick FROM players ORDER BY id"), ","), "1|1|p1@x|10|p,2|2|p2@x|20|q")
}

func TestDiffEnums(t *testing.T) {
	t.Parallel()
	r := roundTrip(t, `
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TYPE retired AS ENUM ('x');
CREATE TABLE people (id int PRIMARY KEY, m mood, tier text);
INSERT INTO people VALUES (1, 'ok', 'gold'), (2, 'sad', NULL);`, `
CREATE TYPE mood AS ENUM ('awful', 'sad', 'meh', 'ok', 'happy');
CREATE TYPE tier AS ENUM ('standard', 'gold');
CREATE TABLE people (id int PRIMARY KEY, m mood, tier tier NOT NULL DEFAULT 'standard');`)
	eq(t, "unsupported", len(r.res.Unsupported), 0)
	eq(t, "migrations", r.passes, 1)
	// The enum comes before the column that uses it; the type change is a
	// cast, NULLs take the default.
	if !strings.Contains(r.text, "coalesce(CAST(\"tier\" AS tier), 'standard'::tier)") {
		t.Fatalf("want a cast with the default as placeholder:\n%s", r.text)
	}
	eq(t, "data", strings.Join(r.rows(t, "SELECT id, m, tier FROM people ORDER BY id"), ","), "1|ok|gold,2|sad|standard")

	// A label the desired schema drops cannot be expressed: reported,
	// not silently ignored.
	ctx := context.Background()
	from := &schema.Schema{Name: "public", Tables: map[string]*schema.Table{}, Enums: map[string][]string{"mood": {"sad", "ok"}}}
	to := &schema.Schema{Name: "public", Tables: map[string]*schema.Table{}, Enums: map[string][]string{"mood": {"ok"}}}
	_ = ctx
	res, err := diff.Compare(from, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unsupported) != 1 || !strings.Contains(res.Unsupported[0], `label "sad"`) {
		t.Fatalf("want the dropped label reported, got %q", res.Unsupported)
	}
	text, _ := res.Render("")
	if !strings.Contains(string(text), "# NOT EXPRESSED: enum mood") {
		t.Fatalf("the file should carry what was not expressed:\n%s", text)
	}
}

func TestDiffRenames(t *testing.T) {
	t.Parallel()
	before := `
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text);
CREATE INDEX users_email_idx ON users (email);
CREATE TABLE posts (id int PRIMARY KEY, body text);
INSERT INTO users VALUES (1, 'a@x', 'A'); INSERT INTO posts VALUES (1, 'hello');`
	desired := `
CREATE TABLE users (id int PRIMARY KEY, email_address text NOT NULL, name text);
CREATE INDEX users_email_idx ON users (email_address);
CREATE TABLE articles (id int PRIMARY KEY, body text);`

	// Without hints: a drop and an add, and the candidates are named.
	ctx := context.Background()
	url := pgtest.NewDB(t)
	pgtest.Exec(t, pgtest.Connect(t, url), before)
	want, err := diff.LoadSQL(ctx, url, "desired.sql", desired, "public")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := diff.ReadURL(ctx, url, "public")
	if err != nil {
		t.Fatal(err)
	}
	res, err := diff.Compare(cur, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cands []string
	for _, c := range res.RenameCandidates {
		cands = append(cands, c.Flag())
	}
	slices.Sort(cands)
	eq(t, "candidates", strings.Join(cands, " "), "posts=articles users.email=email_address")
	text, _ := res.Render("")
	if !strings.Contains(string(text), "--rename users.email=email_address") || !strings.Contains(string(text), "drop_table") {
		t.Fatalf("without hints: a drop plus an add, with the candidate in a comment:\n%s", text)
	}
	if _, err := diff.Compare(cur, want, []diff.Rename{{From: "nope", To: "articles"}}); err == nil {
		t.Fatal("a rename of a missing table must be refused")
	}

	// With hints: renames, and the data stays.
	r := roundTrip(t, before, desired, diff.Rename{From: "posts", To: "articles"}, diff.Rename{Table: "users", From: "email", To: "email_address"})
	if strings.Contains(r.text, "drop_") || len(r.res.Unsupported) != 0 {
		t.Fatalf("with hints nothing is dropped, and the index on the renamed column is the same:\n%s", r.text)
	}
	eq(t, "migrations", r.passes, 1)
	eq(t, "users", strings.Join(r.rows(t, "SELECT id, email_address, name FROM users"), ","), "1|a@x|A")
	eq(t, "articles", strings.Join(r.rows(t, "SELECT id, body FROM articles"), ","), "1|hello")
}

func TestParseRename(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a=b": "table a -> b", "t.a=b": "column t.a -> b"} {
		r, err := diff.ParseRename(in)
		if err != nil || r.String() != want {
			t.Fatalf("%s: got %v %v", in, r, err)
		}
	}
	for _, bad := range []string{"a", "=b", "a=", ".a=b", "t.=b"} {
		if _, err := diff.ParseRename(bad); err == nil {
			t.Fatalf("%q should be refused", bad)
		}
	}
}

// TestDiffEnumDroppedAfterUse: an enum that a converted column still uses
// is dropped by a second migration, and the first one says so.
func TestDiffEnumDroppedAfterUse(t *testing.T) {
	t.Parallel()
	r := roundTrip(t, `
CREATE TYPE kind AS ENUM ('a', 'b');
CREATE TABLE things (id int PRIMARY KEY, k kind);
INSERT INTO things VALUES (1, 'b'), (2, NULL);`, `
CREATE TABLE things (id int PRIMARY KEY, k text);`)
	eq(t, "migrations", r.passes, 2)
	if len(r.res.Unsupported) != 1 || !strings.Contains(r.res.Unsupported[0], "enum kind is not dropped yet") {
		t.Fatalf("want the deferred drop reported, got %q", r.res.Unsupported)
	}
	eq(t, "data", strings.Join(r.rows(t, "SELECT id, k FROM things ORDER BY id"), ","), "1|b,2|NULL")
}

// TestDiffReportsOtherObjects: views, sequences and domains are not
// compared, and each one only a side has is reported.
func TestDiffReportsOtherObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	pgtest.Exec(t, pgtest.Connect(t, url), "CREATE SEQUENCE tickets; CREATE TABLE t (id serial PRIMARY KEY, n bigint GENERATED ALWAYS AS IDENTITY)")
	want, err := diff.LoadSQL(ctx, url, "desired.sql", "CREATE TABLE t (id serial PRIMARY KEY, n bigint GENERATED ALWAYS AS IDENTITY); CREATE VIEW v AS SELECT id FROM t; CREATE DOMAIN posint AS int CHECK (VALUE > 0);", "public")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := diff.ReadURL(ctx, url, "public")
	if err != nil {
		t.Fatal(err)
	}
	res, err := diff.Compare(cur, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "operations", len(res.Ops), 0)
	got := strings.Join(res.Unsupported, "\n")
	for _, w := range []string{"relation v (", "relation tickets (", "type posint (typtype d)"} {
		if !strings.Contains(got, w) {
			t.Fatalf("want %q reported, got:\n%s", w, got)
		}
	}
	// The serial's and the identity's sequences are the columns' own.
	if strings.Contains(got, "_seq") {
		t.Fatalf("a column's own sequence reported:\n%s", got)
	}
	text, _ := res.Render("")
	if !strings.Contains(string(text), "# NOT EXPRESSED: relation v (") {
		t.Fatalf("the file should say what was not expressed:\n%s", text)
	}
}

// TestDiffDropsWhatADroppedKeyReferences: a column (and its unique key)
// that a dropped foreign key references waits for a second migration, as
// online's complete would drop it before the key; the file says so.
func TestDiffDropsWhatADroppedKeyReferences(t *testing.T) {
	t.Parallel()
	r := roundTrip(t, `
CREATE TABLE a (id int PRIMARY KEY, code int UNIQUE);
CREATE TABLE b (id int PRIMARY KEY, a_code int REFERENCES a(code));
INSERT INTO a VALUES (1, 10); INSERT INTO b VALUES (1, 10);`, `
CREATE TABLE a (id int PRIMARY KEY);
CREATE TABLE b (id int PRIMARY KEY, a_code int);`)
	eq(t, "migrations", r.passes, 2)
	got := strings.Join(r.res.Unsupported, "\n")
	if !strings.Contains(got, "column a.code is not dropped yet") || !strings.Contains(got, "constraint a_code_key on a is not dropped yet") {
		t.Fatalf("want the deferred drops reported, got:\n%s", got)
	}
	eq(t, "b kept", strings.Join(r.rows(t, "SELECT id, a_code FROM b"), ","), "1|10")
}

// TestDiffDumpStyleSchema: a schema.sql written by pg_dump (empty
// search_path, qualified names) reads the same as the live schema.
func TestDiffDumpStyleSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	live := `
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE customers (id bigserial PRIMARY KEY, m mood DEFAULT 'ok', email text UNIQUE);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint REFERENCES customers(id), CHECK (id > 0));`
	pgtest.Exec(t, pgtest.Connect(t, url), live)
	dump := pgtest.DumpSchema(t, url, "public")
	want, err := diff.LoadSQL(ctx, url, "schema.sql", dump, "public")
	if err != nil {
		t.Fatalf("load a pg_dump of the live schema: %s", pg.Explain(err))
	}
	cur, err := diff.ReadURL(ctx, url, "public")
	if err != nil {
		t.Fatal(err)
	}
	res, err := diff.Compare(cur, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ops) != 0 || len(res.Unsupported) != 0 {
		text, _ := res.Render("")
		t.Fatalf("a dump of the live schema should differ in nothing:\n%s", text)
	}
}
