package phases_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
)

// Enum types across operations and migrations (each catalogue operation's
// own lifecycle is in operations/<name>_lifecycle_test.go); and how
// versions behave with privileges, row-level security, very long names and
// partitioned tables.

func TestCatalogueLifecycle(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			// The old version keeps reading the column until complete,
			// which drops the column, then the type.
			name: "drop_column_and_enum",
			setup: []string{
				"CREATE TYPE legacy_mood AS ENUM ('a', 'b')",
				"ALTER TABLE users ADD COLUMN lm legacy_mood DEFAULT 'a'",
			},
			yaml: `
operations:
  - drop_column: { table: users, column: lm }
  - drop_enum: { name: legacy_mood }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(old, []string{"a"}, "SELECT lm FROM users WHERE id = 1")
				e.expectErr(nw, "does not exist", "SELECT lm FROM users WHERE id = 1")
				e.exec(nw, "INSERT INTO users (email) VALUES ('n' || clock_timestamp()::text || '@x')")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"NULL"}, "SELECT to_regtype('public.legacy_mood')::text")
			},
		},
		{
			// Changing a column to an enum goes through the rewrite: a
			// hidden column of the enum type, backfilled with up.
			name:  "alter_column_to_new_enum",
			setup: []string{"ALTER TABLE users ADD COLUMN status text", "UPDATE users SET status = CASE WHEN id % 2 = 0 THEN 'active' ELSE 'banned' END"},
			yaml: `
operations:
  - create_enum: { name: user_status, values: [active, banned] }
  - alter_column: { table: users, column: status, type: user_status, up: "status::user_status", down: "status::text" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"banned|true", "active|true"}, "SELECT status, pg_typeof(status) = 'public.user_status'::regtype FROM users WHERE id IN (1, 2) ORDER BY id")
				e.expectRows(old, []string{"banned|text"}, "SELECT status, pg_typeof(status)::text FROM users WHERE id = 1")
				e.exec(old, "UPDATE users SET status = 'active' WHERE id = 3")
				e.expectRows(nw, []string{"active"}, "SELECT status FROM users WHERE id = 3")
				e.exec(nw, "UPDATE users SET status = 'banned' WHERE id = 4")
				e.expectRows(old, []string{"banned"}, "SELECT status FROM users WHERE id = 4")
				e.expectErr(nw, "invalid input value for enum", "UPDATE users SET status = 'nope' WHERE id = 4")
				// The old version writes text the enum refuses: up fails, the write too.
				e.expectErr(old, "invalid input value for enum", "UPDATE users SET status = 'nope' WHERE id = 4")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"user_status"}, "SELECT udt_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'status'")
				e.expectRows(e.db, []string{"25|25"}, "SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'banned') FROM users WHERE id <= 50")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runLifecycle(t, tc)
		})
	}
}

// TestEnumAcrossMigrations: create an enum, then change a column to it in
// a second migration, back to text in a third, and drop the enum in a
// fourth; each migration rolled back once and started again.
func TestEnumAcrossMigrations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows,
		"ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active'",
		"UPDATE users SET status = 'banned' WHERE id % 5 = 0")
	steps := []struct {
		name, yaml string
		check      func(vs string)
	}{
		{"01_create_enum", `operations: [ { create_enum: { name: user_status, values: [active, banned] } } ]`, func(vs string) {
			e.expectRows(e.db, []string{"{active,banned}"}, "SELECT enum_range(NULL::public.user_status)::text")
		}},
		{"02_to_enum", `
operations:
  - alter_column: { table: users, column: status, type: user_status, default: "'active'", up: "status::user_status", down: "status::text" }
`, func(vs string) {
			nw := e.version(vs)
			e.expectRows(nw, []string{"banned|public.user_status"}, "SELECT status, pg_typeof(status)::text FROM users WHERE id = 5")
			e.expectRows(nw, []string{"active"}, "INSERT INTO users (email) VALUES ('d' || clock_timestamp()::text || '@x') RETURNING status")
		}},
		{"03_to_text", `
operations:
  - alter_column: { table: users, column: status, type: text, default: "'active'", up: "status::text", down: "status::user_status" }
`, func(vs string) {
			e.expectRows(e.version(vs), []string{"banned|text"}, "SELECT status, pg_typeof(status)::text FROM users WHERE id = 10")
		}},
		{"04_drop_enum", `operations: [ { drop_enum: { name: user_status } } ]`, nil},
	}
	for _, s := range steps {
		before := e.dump()
		res := e.start(s.name, s.yaml)
		if s.check != nil {
			s.check(res.VersionSchema)
		}
		e.rollback()
		if after := e.dump(); after != before {
			t.Fatalf("%s: rollback did not restore the schema:\n--- before\n%s\n--- after\n%s", s.name, before, after)
		}
		res = e.start(s.name, s.yaml)
		if s.check != nil {
			s.check(res.VersionSchema)
		}
		e.complete()
	}
	e.expectRows(e.db, []string{"NULL"}, "SELECT to_regtype('public.user_status')::text")
	e.expectRows(e.db, []string{"text|10"}, "SELECT pg_typeof(status)::text, count(*) FROM users WHERE status = 'banned' GROUP BY 1")
}

// TestAddEnumValueRollbackLeavesValue: PostgreSQL cannot remove an enum
// value, so rolling back add_enum_value on an existing enum leaves it;
// starting again and completing work all the same.
func TestAddEnumValueRollbackLeavesValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows,
		"CREATE TYPE mood AS ENUM ('sad', 'happy')",
		"ALTER TABLE users ADD COLUMN mood mood NOT NULL DEFAULT 'happy'")
	before := e.dump()
	const name, yaml = "add_meh", `operations: [ { add_enum_value: { enum: mood, value: meh, before: happy } } ]`
	res := e.start(name, yaml)
	old, nw := e.version("public"), e.version(res.VersionSchema)
	// A value is data, not shape: both versions can write it at once.
	e.exec(nw, "UPDATE users SET mood = 'meh' WHERE id = 1")
	e.expectRows(old, []string{"meh"}, "SELECT mood FROM users WHERE id = 1")
	e.exec(nw, "UPDATE users SET mood = 'happy' WHERE id = 1")
	e.rollback()
	after := e.dump()
	if after == before {
		t.Fatal("the dump is unchanged: the value should still be there")
	}
	if want := strings.Replace(before, "'sad',\n    'happy'", "'sad',\n    'meh',\n    'happy'", 1); after != want {
		t.Fatalf("rollback changed more than the enum's values:\n--- before\n%s\n--- after\n%s", before, after)
	}
	res = e.start(name, yaml)
	e.expectRows(e.version(res.VersionSchema), []string{"{sad,meh,happy}"}, "SELECT enum_range(NULL::public.mood)::text")
	e.complete()
	e.expectRows(e.db, []string{"{sad,meh,happy}"}, "SELECT enum_range(NULL::public.mood)::text")
}

// TestAddEnumValueThenUse: the value is committed before the steps after
// it run, so the same migration can use it (here as a default).
func TestAddEnumValueThenUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows, "CREATE TYPE mood AS ENUM ('sad', 'happy')")
	res := e.start("use_new_value", `
operations:
  - add_enum_value: { enum: mood, value: meh }
  - add_column: { table: users, column: { name: mood, type: mood, nullable: false }, up: "'meh'" }
`)
	e.expectRows(e.version(res.VersionSchema), []string{"meh"}, "SELECT mood FROM users WHERE id = 7")
	e.complete()
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM users WHERE mood <> 'meh'")
}

// newRole creates a role with a unique name (roles are cluster-wide, and
// tests run in parallel against one server) and drops it at cleanup.
func (e *env) newRole(prefix string) string {
	e.t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	role := prefix + "_" + hex.EncodeToString(b[:])
	e.exec(e.db, "CREATE ROLE "+pg.Ident(role)+" NOLOGIN")
	e.t.Cleanup(func() {
		// The test database is dropped after this (cleanups run last
		// first), so the role's privileges there must go first.
		conn, err := pgtest.ConnectOptions(ctx(), e.url, pg.Options{})
		if err != nil {
			e.t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx())
		for _, q := range []string{"DROP OWNED BY " + pg.Ident(role), "DROP ROLE " + pg.Ident(role)} {
			if _, err := conn.Exec(ctx(), q); err != nil {
				e.t.Errorf("%s: %v", q, err)
			}
		}
	})
	return role
}

// as opens a connection on searchPath that acts as role (SET ROLE, as a
// pooler's per-tenant connection would).
func (e *env) as(role, searchPath string) *pgx.Conn {
	e.t.Helper()
	conn := e.version(searchPath)
	e.exec(conn, "SET ROLE "+pg.Ident(role))
	return conn
}

// TestVersionPrivileges: a role granted SELECT and INSERT on a table can
// SELECT and INSERT through the new version's view, and no more.
func TestVersionPrivileges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	app := e.newRole("online_app")
	e.exec(e.db, fmt.Sprintf("GRANT USAGE ON SCHEMA public TO %s", pg.Ident(app)))
	e.exec(e.db, fmt.Sprintf("GRANT SELECT, INSERT ON users TO %s", pg.Ident(app)))
	e.exec(e.db, fmt.Sprintf("GRANT USAGE ON SEQUENCE users_id_seq TO %s", pg.Ident(app)))
	outsider := e.newRole("online_outsider")

	res := e.start("02_rename", `operations: [ { rename_column: { table: users, from: name, to: full_name } } ]`)
	vs := res.VersionSchema
	nw := e.as(app, vs)
	e.expectRows(nw, []string{"n1"}, "SELECT full_name FROM users WHERE id = 1")
	e.expectRows(nw, []string{"via-view"}, "INSERT INTO users (email, full_name) VALUES ('app@x', 'via-view') RETURNING full_name")
	e.expectErr(nw, "permission denied", "UPDATE users SET full_name = 'x' WHERE id = 1")
	e.expectErr(nw, "permission denied", "DELETE FROM users WHERE id = 1")
	old := e.as(app, "public")
	e.expectRows(old, []string{"via-view"}, "SELECT name FROM users WHERE email = 'app@x'")

	// A role with no grant on the table gets none through the view.
	e.expectErr(e.as(outsider, vs), "permission denied", "SELECT 1 FROM users")

	// A grant or revoke made on the table after publish holds in every
	// version (PostgreSQL 15 and later, where views check as the invoker).
	var sv int
	if err := e.db.QueryRow(ctx(), "SELECT current_setting('server_version_num')::int").Scan(&sv); err != nil {
		t.Fatal(err)
	}
	if sv >= 150000 {
		e.exec(e.db, fmt.Sprintf("GRANT UPDATE ON users TO %s", pg.Ident(app)))
		e.exec(e.as(app, vs), "UPDATE users SET full_name = 'granted later' WHERE id = 3")
		e.exec(e.db, fmt.Sprintf("REVOKE SELECT ON users FROM %s", pg.Ident(app)))
		e.expectErr(e.as(app, vs), "permission denied", "SELECT full_name FROM users WHERE id = 3")
		e.expectErr(e.as(app, "public"), "permission denied", "SELECT name FROM users WHERE id = 3")
		e.exec(e.db, fmt.Sprintf("GRANT SELECT ON users TO %s", pg.Ident(app)))
		e.expectRows(e.as(app, vs), []string{"granted later"}, "SELECT full_name FROM users WHERE id = 3")
		e.expectErr(e.as(outsider, vs), "permission denied", "SELECT 1 FROM users")
	}

	e.complete()
	e.expectRows(e.as(app, vs), []string{"n2"}, "SELECT full_name FROM users WHERE id = 2")
}

// TestVersionRowLevelSecurity: views of a version check row-level security
// as the querying role (security_invoker, PostgreSQL 15 and later), as the
// table does; an owner-rights view would bypass the policies.
func TestVersionRowLevelSecurity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	var sv int
	if err := e.db.QueryRow(ctx(), "SELECT current_setting('server_version_num')::int").Scan(&sv); err != nil {
		t.Fatal(err)
	}
	if sv < 150000 {
		t.Skipf("server %d: views run as their owner before PostgreSQL 15 (no security_invoker)", sv)
	}
	tenant := e.newRole("online_tenant")
	e.exec(e.db, fmt.Sprintf("GRANT USAGE ON SCHEMA public TO %s", pg.Ident(tenant)))
	e.exec(e.db, fmt.Sprintf("GRANT SELECT, UPDATE ON users TO %s", pg.Ident(tenant)))
	e.exec(e.db, "ALTER TABLE users ENABLE ROW LEVEL SECURITY")
	e.exec(e.db, fmt.Sprintf("CREATE POLICY tenant_rows ON users TO %s USING (id <= 10)", pg.Ident(tenant)))

	res := e.start("02_rename", `operations: [ { rename_column: { table: users, from: name, to: full_name } } ]`)
	e.expectRows(e.db, []string{"security_invoker=true"}, "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = $1::regclass", pg.Ident(res.VersionSchema, "users"))
	for _, sp := range []string{"public", res.VersionSchema} {
		conn := e.as(tenant, sp)
		e.expectRows(conn, []string{"10"}, "SELECT count(*) FROM users")
		e.expectRows(conn, []string{"0"}, "SELECT count(*) FROM users WHERE id = 20")
		// UPDATE goes through the policy too: row 20 is not there to update.
		e.exec(conn, "UPDATE users SET email = 'hidden@x' WHERE id = 20")
	}
	e.expectRows(e.db, []string{"u20@x.io"}, "SELECT email FROM users WHERE id = 20")
	e.complete()
	e.expectRows(e.as(tenant, res.VersionSchema), []string{"10"}, "SELECT count(*) FROM users")
}

// TestLongNames: names past PostgreSQL's 63-byte limit. The migration name
// gives the version schema, and a long column name the hidden column: both
// must fit in 63 bytes and stay distinct.
func TestLongNames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 60) // with "_online_" in front, past 63
	e := newEnv(t, usersTable, usersRows,
		fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, %s int, %s int)", pg.Ident(long), pg.Ident(long+"_a"), pg.Ident(long+"_b")),
		fmt.Sprintf("INSERT INTO %s SELECT g, g, -g FROM generate_series(1, 20) g", pg.Ident(long)))

	// A migration name of 70 characters, two that share their first 63.
	name1 := "m_" + strings.Repeat("a", 66) + "_1"
	name2 := "m_" + strings.Repeat("a", 66) + "_2"
	if len(name1) != 70 {
		t.Fatalf("name is %d characters", len(name1))
	}
	yaml1 := fmt.Sprintf(`
operations:
  - alter_column: { table: %s, column: %s, type: bigint }
  - alter_column: { table: %s, column: %s, type: bigint }
`, long, long+"_a", long, long+"_b")
	before := e.dump()
	res1 := e.start(name1, yaml1)
	if len(res1.VersionSchema) > 63 {
		t.Fatalf("version schema %q is %d bytes", res1.VersionSchema, len(res1.VersionSchema))
	}
	if !e.schemaExists(res1.VersionSchema) {
		t.Fatalf("version schema %q not found (truncated by PostgreSQL?)", res1.VersionSchema)
	}
	hidden := e.rows(e.db, "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attname LIKE '\\_online\\_%' ORDER BY 1", pg.Ident("public", long))
	if len(hidden) != 2 || hidden[0] == hidden[1] {
		t.Fatalf("hidden columns %q: want two distinct", hidden)
	}
	for _, h := range hidden {
		if len(h) > 63 {
			t.Fatalf("hidden column %q is %d bytes", h, len(h))
		}
	}
	nw := e.version(res1.VersionSchema)
	q := fmt.Sprintf("SELECT %s, %s, pg_typeof(%s)::text FROM %s WHERE id = 3", pg.Ident(long+"_a"), pg.Ident(long+"_b"), pg.Ident(long+"_a"), pg.Ident(long))
	e.expectRows(nw, []string{"3|-3|bigint"}, q)
	e.exec(nw, fmt.Sprintf("UPDATE %s SET %s = 44 WHERE id = 4", pg.Ident(long), pg.Ident(long+"_b")))
	e.expectRows(e.version("public"), []string{"4|44"}, fmt.Sprintf("SELECT %s, %s FROM %s WHERE id = 4", pg.Ident(long+"_a"), pg.Ident(long+"_b"), pg.Ident(long)))
	e.exec(nw, fmt.Sprintf("UPDATE %s SET %s = -4 WHERE id = 4", pg.Ident(long), pg.Ident(long+"_b")))
	e.rollback()
	if after := e.dump(); after != before {
		t.Fatalf("rollback did not restore the schema:\n%s", after)
	}
	res1 = e.start(name1, yaml1)
	e.complete()
	e.expectRows(e.version(res1.VersionSchema), []string{"3|-3|bigint"}, q)

	// The second name differs from the first only past byte 63.
	res2 := e.start(name2, `operations: [ { rename_column: { table: users, from: name, to: full_name } } ]`)
	if res2.VersionSchema == res1.VersionSchema || len(res2.VersionSchema) > 63 {
		t.Fatalf("version schemas %q and %q", res1.VersionSchema, res2.VersionSchema)
	}
	e.expectRows(e.version(res1.VersionSchema), []string{"n1"}, "SELECT name FROM users WHERE id = 1")
	e.expectRows(e.version(res2.VersionSchema), []string{"n1"}, "SELECT full_name FROM users WHERE id = 1")
	e.complete()
	if e.schemaExists(res1.VersionSchema) {
		t.Fatalf("complete left the previous version schema %q", res1.VersionSchema)
	}
}

// TestLongTableAndColumnNames: PostgreSQL truncates a name past 63 bytes,
// which would make the model and the catalog disagree, so such names are
// refused before any DDL. At 63 bytes, a rewrite's hidden column still
// gets a name that fits.
func TestLongTableAndColumnNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	long := strings.Repeat("t", 70)
	before := e.dump()
	for _, yaml := range []string{
		fmt.Sprintf(`operations: [ { create_table: { name: %s, columns: [ { name: id, type: int, pk: true } ] } } ]`, long),
		fmt.Sprintf(`operations: [ { create_table: { name: t, columns: [ { name: %s, type: int, pk: true } ] } } ]`, long),
		fmt.Sprintf(`operations: [ { rename_column: { table: users, from: name, to: %s } } ]`, long),
		fmt.Sprintf(`operations: [ { create_enum: { name: %s, values: [a] } } ]`, long),
		fmt.Sprintf(`operations: [ { rename_constraint: { table: users, from: users_pkey, to: %s } } ]`, long),
	} {
		_, err := e.engine().Start(ctx(), parse(t, "long", yaml))
		var oe *operations.Error
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), "63 bytes") {
			t.Fatalf("%s: got %v, want an *operations.Error about the 63-byte limit", yaml, err)
		}
	}
	if after := e.dump(); after != before {
		t.Fatalf("a refused migration changed the schema:\n%s", after)
	}

	table, col := strings.Repeat("t", 63), strings.Repeat("c", 63)
	ti, ci := pg.Ident(table), pg.Ident(col)
	res := e.start("01_long", fmt.Sprintf(`
operations:
  - create_table: { name: %s, columns: [ { name: id, type: int, pk: true }, { name: %s, type: int } ] }
`, table, col))
	e.exec(e.version(res.VersionSchema), fmt.Sprintf("INSERT INTO %s (id, %s) SELECT g, g * 10 FROM generate_series(1, 20) g", ti, ci))
	e.complete()

	const name = "02_long_column_to_bigint"
	yaml := fmt.Sprintf(`operations: [ { alter_column: { table: %s, column: %s, type: bigint } } ]`, table, col)
	before = e.dump()
	res = e.start(name, yaml)
	hidden := e.rows(e.db, "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attname LIKE '\\_online\\_%'", pg.Ident("public", table))
	if len(hidden) != 1 || len(hidden[0]) > 63 {
		t.Fatalf("hidden columns %q", hidden)
	}
	q := fmt.Sprintf("SELECT %s, pg_typeof(%s)::text FROM %s WHERE id = 2", ci, ci, ti)
	e.expectRows(e.version(res.VersionSchema), []string{"20|bigint"}, q)
	e.expectRows(e.version("public"), []string{"20|integer"}, q)
	e.rollback()
	if after := e.dump(); after != before {
		t.Fatalf("rollback did not restore the schema:\n%s", after)
	}
	res = e.start(name, yaml)
	e.complete()
	e.expectRows(e.version(res.VersionSchema), []string{"20|bigint"}, q)
	e.expectRows(e.db, []string{"20|bigint"}, q)
}

// TestPartitionedTable: versions over a partitioned table's parent. A
// rename and a new column are served by the views; both versions read and
// write rows that land in the partitions.
func TestPartitionedTable(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			name:  "partitioned_rename_add",
			setup: partitionedEvents,
			yaml: `
operations:
  - rename_column: { table: events, from: what, to: description }
  - add_column: { table: events, column: { nullable: true, name: source, type: text, default: "'import'" } }
  - add_column: { table: events, column: { nullable: true, name: note, type: text } }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"e1|import|NULL"}, "SELECT description, source, note FROM events WHERE id = 1")
				e.expectErr(nw, "does not exist", "SELECT what FROM events")
				e.exec(nw, "INSERT INTO events (id, at, description, note) VALUES (1000 + (SELECT count(*) FROM events), '2025-03-01', 'from-new', 'n') ")
				e.expectRows(old, []string{"from-new"}, "SELECT what FROM events WHERE at = '2025-03-01' ORDER BY id DESC LIMIT 1")
				e.expectRows(e.db, []string{"events_2025"}, "SELECT tableoid::regclass::text FROM events WHERE at = '2025-03-01' LIMIT 1")
				e.exec(old, "UPDATE events SET what = 'from-old' WHERE id = 2")
				e.expectRows(nw, []string{"from-old|import"}, "SELECT description, source FROM events WHERE id = 2")
				e.exec(old, "INSERT INTO events (id, at, what) VALUES (2000 + (SELECT count(*) FROM events), '2024-02-02', 'old-insert')")
				e.expectRows(nw, []string{"import"}, "SELECT source FROM events WHERE description = 'old-insert' LIMIT 1")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"description|'import'::text"}, "SELECT attname, (SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'public.events_2024'::regclass AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = 'public.events_2024'::regclass AND attname = 'source')) FROM pg_attribute WHERE attrelid = 'public.events_2024'::regclass AND attname = 'description'")
				e.expectRows(nw, []string{"60"}, "SELECT count(*) FROM events WHERE id <= 60")
			},
		},
		{
			// Beyond the brief's two operations: a rewrite (hidden column,
			// row triggers on the parent, backfill walking the parent's
			// key) works on a partitioned table too (PostgreSQL 13 and
			// later have BEFORE row triggers on partitioned tables).
			name:  "partitioned_alter_type",
			setup: partitionedEvents,
			yaml:  `operations: [ { alter_column: { table: events, column: n, type: bigint, up: "n::bigint * 10", down: "(n / 10)::int" } } ]`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"30|bigint"}, "SELECT n, pg_typeof(n)::text FROM events WHERE id = 3")
				e.exec(old, "UPDATE events SET n = 7 WHERE id = 4")
				e.expectRows(nw, []string{"70"}, "SELECT n FROM events WHERE id = 4")
				e.exec(nw, "UPDATE events SET n = 90 WHERE id = 5")
				e.expectRows(old, []string{"9"}, "SELECT n FROM events WHERE id = 5")
				e.exec(nw, "UPDATE events SET n = 50 WHERE id = 5")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"bigint|bigint"}, "SELECT pg_typeof(n)::text, (SELECT pg_typeof(n)::text FROM events_2025 LIMIT 1) FROM events_2024 WHERE id = 1")
				e.expectRows(nw, []string{"600"}, "SELECT n FROM events WHERE id = 60")
			},
		},
		{
			// PostgreSQL sets the replica identity of the partitioned table
			// only; the partitions keep theirs (the step's text says so).
			name:  "partitioned_replica_identity",
			setup: partitionedEvents,
			yaml:  `operations: [ { set_replica_identity: { table: events, identity: { type: full } } } ]`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(e.db, []string{"events|f", "events_2024|d", "events_2025|d"}, "SELECT relname, relreplident::text FROM pg_class WHERE relname LIKE 'events%' AND relkind IN ('r', 'p') ORDER BY 1")
				e.expectRows(nw, []string{"e3"}, "SELECT what FROM events WHERE id = 3")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runLifecycle(t, tc)
		})
	}
}

// partitionedEvents is a table partitioned by range with rows in two
// partitions.
var partitionedEvents = []string{
	"CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, what text, n int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
	"CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
	"CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
	"INSERT INTO events SELECT g, DATE '2024-06-01' + g * 7, 'e' || g, g FROM generate_series(1, 60) g",
}
