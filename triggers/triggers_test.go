package triggers

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// step is one write (or a few, in one transaction) followed by a query of
// the data it should have produced.
type step struct {
	name  string
	sql   []string // run in one transaction
	query string
	want  []string
	// calls, when not nil, is the exact set of trigger-function calls the
	// sql must make, as "function|count" (pg_stat_xact_user_functions);
	// an empty non-nil slice means no trigger function may run at all.
	calls []string
}

type syncCase struct {
	name     string
	setup    []string // the table before the migration, with its existing rows
	table    Table
	rewrites []Rewrite
	expand   []string // run in the install transaction before Create (ADD COLUMN)
	steps    []step
}

// Conversions shared by several cases.
var (
	// users.score integer -> hidden _new_score bigint.
	scoreUp   = &Conversion{Inputs: []Var{{Name: "score", Type: "integer", Physical: "score"}}, Steps: []Step{{Expr: "score::bigint"}}}
	scoreDown = &Conversion{Inputs: []Var{{Name: "score", Type: "bigint", Physical: "_new_score"}}, Steps: []Step{{Expr: "score::integer"}}}
	scoreRW   = Rewrite{ID: "score", OldColumn: "score", NewColumn: "_new_score", Up: scoreUp, Down: scoreDown,
		UpWatch: []string{"score"}, DownWatch: []string{"_new_score"}}

	// users.email text -> hidden _online_email text, lower-cased: a
	// conversion that does not round-trip.
	emailUp   = &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "email"}}, Steps: []Step{{Expr: "lower(email)"}}}
	emailDown = &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "_online_email"}}, Steps: []Step{{Expr: "email"}}}
	emailRW   = Rewrite{ID: "email", OldColumn: "email", NewColumn: "_online_email", Up: emailUp, Down: emailDown,
		UpWatch: []string{"email"}, DownWatch: []string{"_online_email"}}

	// items.code text -> _new_code integer in two steps: the first re-binds
	// "code" with another type, the second reads the re-bound value.
	codeUp = &Conversion{
		Inputs: []Var{{Name: "code", Type: "text", Physical: "code"}},
		Steps: []Step{
			{Expr: "nullif(trim(code), '')::integer", Name: "code", Type: "integer"},
			{Expr: "COALESCE(code, 0)"},
		},
	}
	codeDown = &Conversion{Inputs: []Var{{Name: "code", Type: "integer", Physical: "_new_code"}}, Steps: []Step{{Expr: "code::text"}}}

	// Hostile names everywhere: the old column is called new, the new one
	// contains the dollar-quote tag, a quote and non-ASCII, the watched one
	// a dot, the key old; variables are called new and select.
	hostileTable = Table{Schema: `My "Sch" ü`, Name: "select", FuncSchema: "fn sch", Key: []string{"old"}}
	hostileNew   = `$online$ "x" ü`
	hostileUp    = &Conversion{
		Inputs: []Var{{Name: "new", Type: "text", Physical: "new"}, {Name: "select", Type: "integer", Physical: "a.b"}},
		Steps: []Step{
			{Expr: `"new" || '-' || "select"`, Name: "select", Type: "text"},
			{Expr: "upper(\"select\") || '$online$' -- a trailing comment"},
		},
	}
	hostileDown = &Conversion{Inputs: []Var{{Name: "new", Type: "text", Physical: hostileNew}}, Steps: []Step{{Expr: `lower("new")`}}}
	hostileRW   = Rewrite{ID: "h0_x", OldColumn: "new", NewColumn: hostileNew, Up: hostileUp, Down: hostileDown,
		UpWatch: []string{"new", "a.b"}, DownWatch: []string{hostileNew}}
)

const usersDDL = `CREATE TABLE users (id bigserial PRIMARY KEY, email text, score int)`

var usersTable = Table{Schema: "public", Name: "users", FuncSchema: "public", Key: []string{"id"}}

func syncCases() []syncCase {
	backfillOn := "SELECT set_config(" + pg.Literal(BackfillSetting) + ", 'on', true)"
	return []syncCase{
		{
			name: "type change int to bigint",
			setup: []string{usersDDL,
				`INSERT INTO users (id, email, score) VALUES (1, 'pre1', 1), (2, 'pre2', 2), (3, 'pre3', 3)`},
			table:    usersTable,
			rewrites: []Rewrite{scoreRW},
			expand:   []string{`ALTER TABLE users ADD COLUMN _new_score bigint`},
			steps: []step{
				{name: "old-version insert fills the new column",
					sql:   []string{`INSERT INTO users (id, email, score) VALUES (10, 'a', 5)`},
					query: `SELECT score, _new_score FROM users WHERE id = 10`, want: []string{"5|5"},
					calls: []string{"_online_score_ins|1"}},
				{name: "new-version insert fills the old column",
					sql:   []string{`INSERT INTO users (id, email, _new_score) VALUES (11, 'b', 7)`},
					query: `SELECT score, _new_score FROM users WHERE id = 11`, want: []string{"7|7"},
					calls: []string{"_online_score_ins|1"}},
				{name: "old-version update of the watched column",
					sql:   []string{`UPDATE users SET score = 50 WHERE id = 10`},
					query: `SELECT score, _new_score FROM users WHERE id = 10`, want: []string{"50|50"},
					calls: []string{"_online_score_up|1"}},
				{name: "new-version update of the new column",
					sql:   []string{`UPDATE users SET _new_score = 70 WHERE id = 11`},
					query: `SELECT score, _new_score FROM users WHERE id = 11`, want: []string{"70|70"},
					calls: []string{"_online_score_down|1"}},
				{name: "update of an unrelated column fires nothing",
					sql:   []string{`UPDATE users SET email = 'pre1b'`},
					query: `SELECT id, score, _new_score FROM users WHERE id = 1`, want: []string{"1|1|NULL"},
					calls: []string{}},
				{name: "backfill setting suppresses update triggers",
					sql: []string{backfillOn,
						`UPDATE users SET score = 99 WHERE id = 10`,
						`UPDATE users SET _new_score = 77 WHERE id = 11`},
					query: `SELECT id, score, _new_score FROM users WHERE id IN (10, 11) ORDER BY id`,
					want:  []string{"10|99|50", "11|70|77"},
					calls: []string{}},
				{name: "the setting is transaction-local",
					sql:   []string{`UPDATE users SET score = 100 WHERE id = 10`},
					query: `SELECT score, _new_score FROM users WHERE id = 10`, want: []string{"100|100"},
					calls: []string{"_online_score_up|1"}},
				{name: "primary-key change of a not-yet-backfilled row converts it",
					sql:   []string{`UPDATE users SET id = 1002 WHERE id = 2`},
					query: `SELECT id, score, _new_score FROM users WHERE id = 1002`, want: []string{"1002|2|2"},
					calls: []string{"_online_score_up|1"}},
				{name: "primary-key change of a converted row leaves it",
					sql:   []string{`UPDATE users SET id = 1011 WHERE id = 11`},
					query: `SELECT id, score, _new_score FROM users WHERE id = 1011`, want: []string{"1011|70|77"},
					calls: []string{}},
				{name: "new-version insert of NULL counts as an old-version insert",
					sql:   []string{`INSERT INTO users (id, email) VALUES (12, 'c')`},
					query: `SELECT score, _new_score FROM users WHERE id = 12`, want: []string{"NULL|NULL"},
					calls: []string{"_online_score_ins|1"}},
				{name: "backfill with BackfillExpr",
					sql: []string{backfillOn,
						`UPDATE users SET _new_score = ` + BackfillExpr(*scoreUp) + ` WHERE _new_score IS NULL`},
					query: `SELECT id, score, _new_score FROM users WHERE id IN (1, 3) ORDER BY id`,
					want:  []string{"1|1|1", "3|3|3"},
					calls: []string{}},
			},
		},
		{
			name:     "lower-cased email does not round-trip",
			setup:    []string{usersDDL, `INSERT INTO users (id, email, score) VALUES (1, 'Pre@X.com', 1)`},
			table:    usersTable,
			rewrites: []Rewrite{emailRW},
			expand:   []string{`ALTER TABLE users ADD COLUMN _online_email text`},
			steps: []step{
				{name: "old-version insert keeps its value (down fires before up)",
					sql:   []string{`INSERT INTO users (id, email) VALUES (10, 'Foo@X.com')`},
					query: `SELECT email, _online_email FROM users WHERE id = 10`, want: []string{"Foo@X.com|foo@x.com"}},
				{name: "new-version insert",
					sql:   []string{`INSERT INTO users (id, _online_email) VALUES (11, 'Bar@Y.com')`},
					query: `SELECT email, _online_email FROM users WHERE id = 11`, want: []string{"Bar@Y.com|Bar@Y.com"},
					calls: []string{"_online_email_ins|1"}},
				{name: "old-version save of every column, unchanged, keeps the new version's value",
					sql:   []string{`UPDATE users SET id = id, email = email, score = 4 WHERE id = 11`},
					query: `SELECT email, _online_email FROM users WHERE id = 11`, want: []string{"Bar@Y.com|Bar@Y.com"},
					calls: []string{}},
				{name: "new-version save of every column, unchanged, keeps the old version's value",
					sql:   []string{`UPDATE users SET id = id, _online_email = _online_email, score = 5 WHERE id = 10`},
					query: `SELECT email, _online_email FROM users WHERE id = 10`, want: []string{"Foo@X.com|foo@x.com"},
					calls: []string{}},
				{name: "old-version real change recomputes",
					sql:   []string{`UPDATE users SET email = 'Baz@Y.com' WHERE id = 11`},
					query: `SELECT email, _online_email FROM users WHERE id = 11`, want: []string{"Baz@Y.com|baz@y.com"},
					calls: []string{"_online_email_up|1"}},
				{name: "new-version write of both columns keeps both",
					sql:   []string{`UPDATE users SET email = 'A', _online_email = 'B' WHERE id = 11`},
					query: `SELECT email, _online_email FROM users WHERE id = 11`, want: []string{"A|B"},
					calls: []string{}},
				{name: "old-version upsert converts the updated value",
					sql:   []string{`INSERT INTO users (id, email) VALUES (10, 'Up@Sert.com') ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email`},
					query: `SELECT email, _online_email FROM users WHERE id = 10`, want: []string{"Up@Sert.com|up@sert.com"}},
				{name: "update of score fires nothing on a row not yet backfilled",
					sql:   []string{`UPDATE users SET score = score + 1`},
					query: `SELECT email, _online_email, score FROM users WHERE id = 1`, want: []string{"Pre@X.com|NULL|2"},
					calls: []string{}},
			},
		},
		{
			name: "text to json (a type without equality)",
			setup: []string{`CREATE TABLE docs (id int PRIMARY KEY, doc text)`,
				`INSERT INTO docs VALUES (1, '{"a": 1}')`},
			table: Table{Schema: "public", Name: "docs", FuncSchema: "public", Key: []string{"id"}},
			rewrites: []Rewrite{{ID: "doc", OldColumn: "doc", NewColumn: "_new_doc",
				Up:      &Conversion{Inputs: []Var{{Name: "doc", Type: "text", Physical: "doc"}}, Steps: []Step{{Expr: "doc::json"}}},
				Down:    &Conversion{Inputs: []Var{{Name: "doc", Type: "json", Physical: "_new_doc"}}, Steps: []Step{{Expr: "doc::text"}}},
				UpWatch: []string{"doc"}, DownWatch: []string{"_new_doc"}}},
			expand: []string{`ALTER TABLE docs ADD COLUMN _new_doc json`},
			steps: []step{
				{name: "old-version insert", sql: []string{`INSERT INTO docs (id, doc) VALUES (2, '{"b":2}')`},
					query: `SELECT doc, _new_doc::text FROM docs WHERE id = 2`, want: []string{`{"b":2}|{"b":2}`}},
				{name: "new-version update", sql: []string{`UPDATE docs SET _new_doc = '[1, 2]' WHERE id = 2`},
					query: `SELECT doc, _new_doc::text FROM docs WHERE id = 2`, want: []string{`[1, 2]|[1, 2]`},
					calls: []string{"_online_doc_down|1"}},
				{name: "same json written again does nothing", sql: []string{`UPDATE docs SET _new_doc = '[1, 2]' WHERE id = 2`},
					query: `SELECT doc, _new_doc::text FROM docs WHERE id = 2`, want: []string{`[1, 2]|[1, 2]`},
					calls: []string{}},
				{name: "old-version update of an unconverted row", sql: []string{`UPDATE docs SET doc = '{"c":3}' WHERE id = 1`},
					query: `SELECT doc, _new_doc::text FROM docs WHERE id = 1`, want: []string{`{"c":3}|{"c":3}`},
					calls: []string{"_online_doc_up|1"}},
			},
		},
		{
			name: "multi-step conversion",
			setup: []string{`CREATE TABLE items (id int PRIMARY KEY, code text, note text)`,
				`INSERT INTO items VALUES (1, ' 41 ', 'x'), (2, '', 'y'), (3, NULL, 'z')`},
			table: Table{Schema: "public", Name: "items", FuncSchema: "public", Key: []string{"id"}},
			rewrites: []Rewrite{{ID: "code", OldColumn: "code", NewColumn: "_new_code", Up: codeUp, Down: codeDown,
				UpWatch: []string{"code"}, DownWatch: []string{"_new_code"}}},
			expand: []string{`ALTER TABLE items ADD COLUMN _new_code integer`},
			steps: []step{
				{name: "old-version inserts go through both steps",
					sql:   []string{`INSERT INTO items (id, code) VALUES (10, '42'), (11, '  '), (12, NULL)`},
					query: `SELECT id, '[' || code || ']', _new_code FROM items WHERE id >= 10 ORDER BY id`,
					want:  []string{"10|[42]|42", "11|[  ]|0", "12|NULL|0"},
					calls: []string{"_online_code_ins|3"}},
				{name: "new-version insert",
					sql:   []string{`INSERT INTO items (id, _new_code) VALUES (13, 7)`},
					query: `SELECT code, _new_code FROM items WHERE id = 13`, want: []string{"7|7"}},
				{name: "backfill with the multi-step BackfillExpr",
					sql: []string{backfillOn,
						`UPDATE items SET _new_code = ` + BackfillExpr(*codeUp) + ` WHERE _new_code IS NULL`},
					query: `SELECT id, '[' || code || ']', _new_code FROM items WHERE id < 10 ORDER BY id`,
					want:  []string{"1|[ 41 ]|41", "2|[]|0", "3|NULL|0"},
					calls: []string{}},
				{name: "update of an unrelated column fires nothing",
					sql:   []string{`UPDATE items SET note = 'n'`},
					query: `SELECT count(*) FROM items WHERE note = 'n'`, want: []string{"7"},
					calls: []string{}},
			},
		},
		{
			name: "drop_column: down only, on insert",
			setup: []string{`CREATE TABLE t (id int PRIMARY KEY, a text, legacy text)`,
				`INSERT INTO t VALUES (1, 'one', 'kept')`},
			table: Table{Schema: "public", Name: "t", FuncSchema: "public", Key: []string{"id"}},
			rewrites: []Rewrite{{ID: "legacy", OldColumn: "legacy",
				Down:      &Conversion{Inputs: []Var{{Name: "a", Type: "text", Physical: "a"}}, Steps: []Step{{Expr: "'from-' || a"}}},
				DownWatch: []string{"a"}}},
			steps: []step{
				{name: "new-version insert fills the dropped column",
					sql:   []string{`INSERT INTO t (id, a) VALUES (2, 'two')`},
					query: `SELECT a, legacy FROM t WHERE id = 2`, want: []string{"two|from-two"},
					calls: []string{"_online_legacy_down|1"}},
				{name: "old-version insert keeps its value",
					sql:   []string{`INSERT INTO t (id, a, legacy) VALUES (3, 'three', 'mine')`},
					query: `SELECT a, legacy FROM t WHERE id = 3`, want: []string{"three|mine"},
					calls: []string{}},
				{name: "updates fire nothing",
					sql:   []string{`UPDATE t SET a = 'uno' WHERE id = 1`, `UPDATE t SET legacy = NULL WHERE id = 2`},
					query: `SELECT id, a, legacy FROM t WHERE id IN (1, 2) ORDER BY id`, want: []string{"1|uno|kept", "2|two|NULL"},
					calls: []string{}},
			},
		},
		{
			name: "add_column: derived value, no old column",
			setup: []string{`CREATE TABLE people (id int PRIMARY KEY, first text, last text)`,
				`INSERT INTO people VALUES (1, 'ada', 'lovelace'), (2, 'alan', 'turing')`},
			table: Table{Schema: "public", Name: "people", FuncSchema: "public", Key: []string{"id"}},
			rewrites: []Rewrite{{ID: "full_name", NewColumn: "_new_full",
				Up: &Conversion{
					Inputs: []Var{{Name: "first", Type: "text", Physical: "first"}, {Name: "last", Type: "text", Physical: "last"}},
					Steps:  []Step{{Expr: "initcap(first || ' ' || last)"}}},
				UpWatch: []string{"first", "last"}}},
			expand: []string{`ALTER TABLE people ADD COLUMN _new_full text`},
			steps: []step{
				{name: "old-version insert", sql: []string{`INSERT INTO people VALUES (3, 'grace', 'hopper')`},
					query: `SELECT _new_full FROM people WHERE id = 3`, want: []string{"Grace Hopper"},
					calls: []string{"_online_full_name_up|1"}},
				{name: "old-version update of a watched column", sql: []string{`UPDATE people SET last = 'king' WHERE id = 1`},
					query: `SELECT _new_full FROM people WHERE id = 1`, want: []string{"Ada King"},
					calls: []string{"_online_full_name_up|1"}},
				{name: "new-version insert keeps its value", sql: []string{`INSERT INTO people VALUES (4, 'x', 'y', 'Custom')`},
					query: `SELECT _new_full FROM people WHERE id = 4`, want: []string{"Custom"},
					calls: []string{}},
				{name: "key change of a converted row keeps the new version's value", sql: []string{`UPDATE people SET id = 40 WHERE id = 4`},
					query: `SELECT _new_full FROM people WHERE id = 40`, want: []string{"Custom"},
					calls: []string{}},
				{name: "key change of a not-yet-backfilled row converts it", sql: []string{`UPDATE people SET id = 20 WHERE id = 2`},
					query: `SELECT _new_full FROM people WHERE id = 20`, want: []string{"Alan Turing"},
					calls: []string{"_online_full_name_up|1"}},
			},
		},
		{
			name:  "add_column: constant value, key only",
			setup: []string{`CREATE TABLE acct (id int PRIMARY KEY, name text)`, `INSERT INTO acct VALUES (1, 'a')`},
			table: Table{Schema: "public", Name: "acct", FuncSchema: "public", Key: []string{"id"}},
			rewrites: []Rewrite{{ID: "status", NewColumn: "_new_status",
				Up: &Conversion{Steps: []Step{{Expr: "'active'"}}}}},
			expand: []string{`ALTER TABLE acct ADD COLUMN _new_status text`},
			steps: []step{
				{name: "old-version insert", sql: []string{`INSERT INTO acct VALUES (2, 'b')`},
					query: `SELECT _new_status FROM acct WHERE id = 2`, want: []string{"active"}},
				{name: "new version sets its column", sql: []string{`UPDATE acct SET _new_status = 'banned' WHERE id = 2`},
					query: `SELECT _new_status FROM acct WHERE id = 2`, want: []string{"banned"}, calls: []string{}},
				{name: "old-version key write does not reset it", sql: []string{`UPDATE acct SET id = id, name = 'bb' WHERE id = 2`},
					query: `SELECT _new_status FROM acct WHERE id = 2`, want: []string{"banned"}, calls: []string{}},
				{name: "old-version unrelated write fires nothing", sql: []string{`UPDATE acct SET name = 'aa' WHERE id = 1`},
					query: `SELECT _new_status FROM acct WHERE id = 1`, want: []string{"NULL"}, calls: []string{}},
			},
		},
		{
			name: "hostile names",
			setup: []string{
				`CREATE SCHEMA ` + pg.Ident(hostileTable.Schema),
				`CREATE SCHEMA ` + pg.Ident(hostileTable.FuncSchema),
				`CREATE TABLE ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` ("old" int PRIMARY KEY, "new" text, "a.b" int, "ünïcødé col" text)`,
				`INSERT INTO ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` VALUES (1, 'pre', 9, 'u')`,
			},
			table:    hostileTable,
			rewrites: []Rewrite{hostileRW},
			expand:   []string{`ALTER TABLE ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` ADD COLUMN ` + pg.Ident(hostileNew) + ` text`},
			steps: []step{
				{name: "old-version insert",
					sql:   []string{`INSERT INTO ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` ("old", "new", "a.b") VALUES (2, 'ab', 3)`},
					query: `SELECT "new", ` + pg.Ident(hostileNew) + ` FROM ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` WHERE "old" = 2`,
					want:  []string{"ab|AB-3$online$"},
					calls: []string{"_online_h0_x_ins|1"}},
				{name: "old-version update of the watched a.b",
					sql:   []string{`UPDATE ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` SET "a.b" = 4 WHERE "old" = 2`},
					query: `SELECT "new", ` + pg.Ident(hostileNew) + ` FROM ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` WHERE "old" = 2`,
					want:  []string{"ab|AB-4$online$"},
					calls: []string{"_online_h0_x_up|1"}},
				{name: "new-version insert",
					sql:   []string{`INSERT INTO ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` ("old", ` + pg.Ident(hostileNew) + `) VALUES (3, 'XY')`},
					query: `SELECT "new", ` + pg.Ident(hostileNew) + ` FROM ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` WHERE "old" = 3`,
					want:  []string{"xy|XY"},
					calls: []string{"_online_h0_x_ins|1"}},
				{name: "new-version update",
					sql:   []string{`UPDATE ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` SET ` + pg.Ident(hostileNew) + ` = 'ZZ' WHERE "old" = 3`},
					query: `SELECT "new", ` + pg.Ident(hostileNew) + ` FROM ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` WHERE "old" = 3`,
					want:  []string{"zz|ZZ"},
					calls: []string{"_online_h0_x_down|1"}},
				{name: "unrelated update fires nothing",
					sql:   []string{`UPDATE ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` SET "ünïcødé col" = 'v'`},
					query: `SELECT "new", ` + pg.Ident(hostileNew) + ` FROM ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` WHERE "old" = 1`,
					want:  []string{"pre|NULL"},
					calls: []string{}},
				{name: "backfill",
					sql: []string{backfillOn, `UPDATE ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` SET ` + pg.Ident(hostileNew) + ` = ` +
						BackfillExpr(*hostileUp) + ` WHERE ` + pg.Ident(hostileNew) + ` IS NULL`},
					query: `SELECT "new", ` + pg.Ident(hostileNew) + ` FROM ` + pg.Ident(hostileTable.Schema, hostileTable.Name) + ` WHERE "old" = 1`,
					want:  []string{"pre|PRE-9$online$"},
					calls: []string{}},
			},
		},
		{
			name: "expressions resolve in the table's schema whatever the session's search_path",
			setup: []string{
				`CREATE SCHEMA app`, `CREATE SCHEMA decoy`,
				`CREATE FUNCTION app.norm(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(trim($1)) $$`,
				`CREATE FUNCTION decoy.norm(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'decoy' $$`,
				`CREATE TABLE app.users (id int PRIMARY KEY, email text)`,
				`SET search_path = decoy, public`,
			},
			table: Table{Schema: "app", Name: "users", FuncSchema: "app", Key: []string{"id"}},
			rewrites: []Rewrite{{ID: "email", OldColumn: "email", NewColumn: "_online_email",
				Up:      &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "email"}}, Steps: []Step{{Expr: "norm(email)"}}},
				UpWatch: []string{"email"}}},
			expand: []string{`ALTER TABLE app.users ADD COLUMN _online_email text`},
			steps: []step{
				{name: "insert from a session whose search_path has another norm",
					sql:   []string{`INSERT INTO app.users VALUES (1, '  A@B ')`},
					query: `SELECT _online_email FROM app.users`, want: []string{"a@b"}},
			},
		},
		{
			name:     "two rewrites on one table",
			setup:    []string{usersDDL},
			table:    usersTable,
			rewrites: []Rewrite{scoreRW, emailRW},
			expand:   []string{`ALTER TABLE users ADD COLUMN _new_score bigint, ADD COLUMN _online_email text`},
			steps: []step{
				{name: "old-version insert converts both",
					sql:   []string{`INSERT INTO users (id, email, score) VALUES (1, 'A', 1)`},
					query: `SELECT email, _online_email, score, _new_score FROM users`, want: []string{"A|a|1|1"},
					calls: []string{"_online_email_ins|1", "_online_score_ins|1"}},
				{name: "old-version update of one converts that one only",
					sql:   []string{`UPDATE users SET score = 2`},
					query: `SELECT email, _online_email, score, _new_score FROM users`, want: []string{"A|a|2|2"},
					calls: []string{"_online_score_up|1"}},
			},
		},
	}
}

func TestSync(t *testing.T) {
	t.Parallel()
	for _, tc := range syncCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := pgtest.NewDB(t)
			conn := pgtest.Connect(t, url)
			pgtest.Exec(t, conn, tc.setup...)
			install(t, conn, tc.table, tc.rewrites, tc.expand)
			for _, s := range tc.steps {
				runStep(t, conn, s)
			}
			checkTriggerDefsRestore(t, conn, tc.table)
			checkDrop(t, conn, tc.table, tc.rewrites)
		})
	}
}

// install runs the expand statements and every rewrite's Create in one
// transaction, the way the engine must.
func install(t *testing.T, conn *pgx.Conn, tbl Table, rws []Rewrite, expand []string) {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	stmts := append([]string{}, expand...)
	for _, r := range rws {
		if err := Validate(r); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		stmts = append(stmts, Create(tbl, r)...)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			t.Fatalf("install: %v\n%s", err, s)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func runStep(t *testing.T, conn *pgx.Conn, s step) {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Count trigger-function calls of this transaction only.
	if _, err := tx.Exec(ctx, `SET LOCAL track_functions = 'all'`); err != nil {
		t.Fatal(err)
	}
	// pg_stat_xact_user_functions shows the counts this backend has not
	// reported yet, which may include earlier transactions: take a delta.
	before := functionCalls(t, tx)
	for _, q := range s.sql {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %s: %v", s.name, q, err)
		}
	}
	after := functionCalls(t, tx)
	var calls []string
	for name, n := range after {
		if d := n - before[name]; d > 0 {
			calls = append(calls, name+"|"+strconv.FormatInt(d, 10))
		}
	}
	slices.Sort(calls)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pgtest.QueryStrings(t, conn, s.query); !slices.Equal(got, s.want) {
		t.Errorf("%s:\n got %q\nwant %q", s.name, got, s.want)
	}
	if s.calls != nil && !slices.Equal(calls, s.calls) {
		t.Errorf("%s: trigger function calls\n got %q\nwant %q", s.name, calls, s.calls)
	}
}

func functionCalls(t *testing.T, tx pgx.Tx) map[string]int64 {
	t.Helper()
	rows, err := tx.Query(context.Background(), `SELECT funcname, calls FROM pg_stat_xact_user_functions WHERE funcname LIKE '\_online\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	calls := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		calls[name] += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return calls
}

// checkTriggerDefsRestore re-creates every trigger and function of the table
// from the server's own deparsed definitions under an empty search_path, as
// a pg_dump restore would, so a backup taken mid-migration restores.
func checkTriggerDefsRestore(t *testing.T, conn *pgx.Conn, tbl Table) {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL search_path = ''`); err != nil {
		t.Fatal(err)
	}
	rel := pg.Ident(tbl.Schema, tbl.Name)
	var stmts []string
	rows, err := tx.Query(ctx, `SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.proname LIKE '\_online\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, def)
	}
	rows.Close()
	rows, err = tx.Query(ctx, `SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, rel)
	if err != nil {
		t.Fatal(err)
	}
	var triggers int
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, "DROP TRIGGER "+pg.Ident(name)+" ON "+rel, def)
		triggers++
	}
	rows.Close()
	if triggers == 0 {
		t.Fatalf("no triggers on %s", rel)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			t.Fatalf("re-creating from the deparsed definition: %v\n%s", err, s)
		}
	}
}

// checkDrop runs Drop twice (it must be idempotent) and asserts that no
// trigger or function of ours is left and that the columns can be dropped.
func checkDrop(t *testing.T, conn *pgx.Conn, tbl Table, rws []Rewrite) {
	t.Helper()
	for range 2 {
		for _, r := range rws {
			pgtest.Exec(t, conn, Drop(tbl, r)...)
		}
	}
	left := pgtest.QueryStrings(t, conn, `
		SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE '\_online\_%'
		UNION ALL
		SELECT 'function ' || proname FROM pg_proc WHERE proname LIKE '\_online\_%'`)
	if len(left) > 0 {
		t.Errorf("left after Drop: %q", left)
	}
	for _, r := range rws {
		for _, c := range []string{r.OldColumn, r.NewColumn} {
			if c != "" {
				pgtest.Exec(t, conn, "ALTER TABLE "+pg.Ident(tbl.Schema, tbl.Name)+" DROP COLUMN IF EXISTS "+pg.Ident(c))
			}
		}
	}
}

func TestDropWithoutCreate(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	pgtest.Exec(t, conn, usersDDL)
	pgtest.Exec(t, conn, Drop(usersTable, scoreRW)...)
	// Even a table that is gone by now.
	pgtest.Exec(t, conn, Drop(Table{Schema: "nosuch", Name: "users", FuncSchema: "nosuch"}, scoreRW)...)
}

func TestCreateRejectsBrokenExpression(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		up   *Conversion
		want string
	}{
		{"unknown function", &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "email"}}, Steps: []Step{{Expr: "nosuch_fn(email)"}}}, "nosuch_fn"},
		{"unknown column", &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "email"}}, Steps: []Step{{Expr: "lower(emial)"}}}, "emial"},
		{"wrong result type", &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "email"}}, Steps: []Step{{Expr: "email = 'x'"}}}, "boolean"},
		{"syntax", &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "email"}}, Steps: []Step{{Expr: "lower(email"}}}, "syntax"},
	}
	url := pgtest.NewDB(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := pgtest.Connect(t, url)
			ctx := context.Background()
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			tbl := Table{Schema: "public", Name: "u_" + strings.ReplaceAll(tc.name, " ", "_"), Key: []string{"id"}}
			if _, err := tx.Exec(ctx, "CREATE TABLE "+pg.Ident(tbl.Schema, tbl.Name)+" (id int PRIMARY KEY, email text, _new_email integer)"); err != nil {
				t.Fatal(err)
			}
			r := Rewrite{ID: "e", OldColumn: "email", NewColumn: "_new_email", Up: tc.up, UpWatch: []string{"email"}}
			var failed error
			for _, s := range Create(tbl, r) {
				if _, err := tx.Exec(ctx, s); err != nil {
					failed = err
					break
				}
			}
			if failed == nil {
				t.Fatalf("Create succeeded; want an error mentioning %q", tc.want)
			}
			if !strings.Contains(failed.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", failed, tc.want)
			}
		})
	}
}

func TestBackfillExpr(t *testing.T) {
	t.Parallel()
	if got, want := BackfillExpr(*scoreUp), "(score::bigint)"; got != want {
		t.Errorf("one step, no renames: got %q, want %q", got, want)
	}
	// Inputs that swap names, then two steps that re-bind one of them.
	swap := Conversion{
		Inputs: []Var{{Name: "a", Type: "text", Physical: "b"}, {Name: "b", Type: "text", Physical: "a"}},
		Steps: []Step{
			{Expr: "a || '+' || b", Name: "a", Type: "text"},
			{Expr: "length(a)", Name: "a", Type: "bigint"},
			{Expr: "a * 10 + length(b)"},
		},
	}
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	pgtest.Exec(t, conn,
		`CREATE TABLE t (id int PRIMARY KEY, a text, b text, n bigint, m bigint)`,
		`INSERT INTO t VALUES (1, 'xy', 'pqr'), (2, '', 'z')`,
		`UPDATE t SET n = `+BackfillExpr(swap),
	)
	// The trigger function must agree with the backfill.
	install(t, conn, Table{Schema: "public", Name: "t", Key: []string{"id"}},
		[]Rewrite{{ID: "m", OldColumn: "a", NewColumn: "m", Up: &swap, UpWatch: []string{"a", "b"}}}, nil)
	pgtest.Exec(t, conn, `INSERT INTO t (id, a, b) SELECT id + 10, a, b FROM t`)
	// row 1: a=pqr b=xy -> "pqr+xy" -> 6 -> 60 + 2; row 2: a=z b="" -> "z+" -> 20
	got := pgtest.QueryStrings(t, conn, `SELECT id, n, m FROM t ORDER BY id`)
	want := []string{"1|62|NULL", "2|20|NULL", "11|NULL|62", "12|NULL|20"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	up := &Conversion{Inputs: []Var{{Name: "a", Type: "text", Physical: "a"}}, Steps: []Step{{Expr: "a"}}}
	cases := []struct {
		name string
		r    Rewrite
		want string // "" means valid
	}{
		{"valid", Rewrite{ID: "ok_1", OldColumn: "a", NewColumn: "b", Up: up}, ""},
		{"valid drop_column", Rewrite{ID: "ok", OldColumn: "a", Down: &Conversion{Steps: []Step{{Expr: "1"}}}}, ""},
		{"bad ID", Rewrite{ID: "Bad-ID", OldColumn: "a", NewColumn: "b", Up: up}, "rewrite ID"},
		{"empty ID", Rewrite{OldColumn: "a", NewColumn: "b", Up: up}, "rewrite ID"},
		{"long ID", Rewrite{ID: strings.Repeat("x", 25), OldColumn: "a", NewColumn: "b", Up: up}, "rewrite ID"},
		{"neither column", Rewrite{ID: "x", Up: up}, "neither OldColumn nor NewColumn"},
		{"same column", Rewrite{ID: "x", OldColumn: "a", NewColumn: "a", Up: up}, "two physical columns"},
		{"up without new column", Rewrite{ID: "x", OldColumn: "a", Up: up}, "Up is set but NewColumn"},
		{"down without old column", Rewrite{ID: "x", NewColumn: "b", Down: up}, "Down is set but OldColumn"},
		{"no conversion", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b"}, "neither Up nor Down"},
		{"no steps", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b", Up: &Conversion{}}, "at least one step"},
		{"empty expr", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b", Up: &Conversion{Steps: []Step{{Expr: " "}}}}, "no expression"},
		{"unnamed middle step", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b", Up: &Conversion{Steps: []Step{{Expr: "1"}, {Expr: "2"}}}}, "needs Name and Type"},
		{"duplicate input", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b", Up: &Conversion{
			Inputs: []Var{{Name: "a", Type: "text", Physical: "a"}, {Name: "a", Type: "text", Physical: "a"}}, Steps: []Step{{Expr: "a"}}}}, "appears twice"},
		{"incomplete input", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b", Up: &Conversion{
			Inputs: []Var{{Name: "a", Physical: "a"}}, Steps: []Step{{Expr: "a"}}}}, "needs Name, Type and Physical"},
		{"unwatched up input", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b", Up: &Conversion{
			Inputs: []Var{{Name: "c", Type: "text", Physical: "c"}}, Steps: []Step{{Expr: "c"}}}}, `Up reads column "c"`},
		{"unwatched down input", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b", Down: &Conversion{
			Inputs: []Var{{Name: "c", Type: "text", Physical: "c"}}, Steps: []Step{{Expr: "c"}}}}, `Down reads column "c"`},
		{"empty watch", Rewrite{ID: "x", OldColumn: "a", NewColumn: "b", Up: up, UpWatch: []string{""}}, "empty column name in UpWatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(tc.r)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("no error; want one mentioning %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestCreatePanicsOnInvalid(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("Create of an invalid rewrite did not panic")
		}
	}()
	Create(usersTable, Rewrite{ID: "x"})
}

// TestGolden pins the generated SQL. Run with -update to rewrite the files
// after an intended change, and read the diff.
func TestGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file  string
		table Table
		r     Rewrite
	}{
		{"type_change.sql", Table{Schema: "public", Name: "users", FuncSchema: "online", Key: []string{"id"}}, scoreRW},
		{"lower_email.sql", usersTable, emailRW},
		{"lower_email_caller_path.sql", func() Table { t := usersTable; t.CallerPath = true; return t }(), emailRW},
		{"multi_step.sql", Table{Schema: "public", Name: "items", Key: []string{"id"}},
			Rewrite{ID: "code", OldColumn: "code", NewColumn: "_new_code", Up: codeUp, Down: codeDown, UpWatch: []string{"code"}, DownWatch: []string{"_new_code"}}},
		{"drop_column.sql", Table{Schema: "public", Name: "t", Key: []string{"id"}},
			Rewrite{ID: "legacy", OldColumn: "legacy", Down: &Conversion{Inputs: []Var{{Name: "a", Type: "text", Physical: "a"}}, Steps: []Step{{Expr: "'from-' || a"}}}}},
		{"add_column.sql", Table{Schema: "public", Name: "acct", Key: []string{"id"}},
			Rewrite{ID: "status", NewColumn: "_new_status", Up: &Conversion{Steps: []Step{{Expr: "'active'"}}}}},
		{"hostile.sql", hostileTable, hostileRW},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			b.WriteString("-- Create\n")
			for _, s := range Create(tc.table, tc.r) {
				b.WriteString(s + ";\n\n")
			}
			b.WriteString("-- Drop\n")
			for _, s := range Drop(tc.table, tc.r) {
				b.WriteString(s + ";\n")
			}
			if tc.r.Up != nil {
				b.WriteString("\n-- BackfillExpr(Up)\n" + BackfillExpr(*tc.r.Up) + "\n")
			}
			if tc.r.Down != nil {
				b.WriteString("\n-- BackfillExpr(Down)\n" + BackfillExpr(*tc.r.Down) + "\n")
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("generated SQL differs from %s (run go test -update and read the diff):\n%s", path, got)
			}
		})
	}
}
