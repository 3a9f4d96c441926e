package operations

import (
	"errors"
	"strings"
	"testing"
)

var renameConstraintFixture = []string{
	`CREATE TABLE teams (id bigint PRIMARY KEY)`,
	`CREATE TABLE users (
		id bigint PRIMARY KEY,
		email text NOT NULL CONSTRAINT users_email_check CHECK (email LIKE '%@%'),
		score int NOT NULL DEFAULT 0,
		team_id bigint CONSTRAINT users_team_fk REFERENCES teams (id),
		CONSTRAINT users_email_key UNIQUE (email)
	)`,
	`CREATE INDEX users_score_idx ON users (score)`,
	`CREATE TABLE other (id int PRIMARY KEY, CONSTRAINT other_check CHECK (id > 0))`,
}

func TestRenameConstraintPlans(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", renameConstraintFixture...)

	t.Run("check constraint, at complete", func(t *testing.T) {
		p, ns, err := compileYAML(t, s, publicOpts, "- rename_constraint: {table: users, from: users_email_check, to: users_email_has_at}")
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "expand", len(p.Expand)+len(p.Finish), 0)
		eq(t, "contract", strings.Join(allSQL(p.Contract), ";"), `ALTER TABLE "public"."users" RENAME CONSTRAINT "users_email_check" TO "users_email_has_at"`)
		u := ns.Tables["users"]
		eq(t, "old name gone", u.Constraints["users_email_check"] == nil, true)
		eq(t, "new name", u.Constraints["users_email_has_at"].Name, "users_email_has_at")
		eq(t, "catalog model untouched", s.Tables["users"].Constraints["users_email_check"] != nil, true)
	})

	t.Run("unique constraint: its index is renamed with it", func(t *testing.T) {
		p, ns, err := compileYAML(t, s, publicOpts, "- rename_constraint: {table: users, from: users_email_key, to: users_email_uq}")
		if err != nil {
			t.Fatal(err)
		}
		wantSQL(t, "contract", p.Contract, `RENAME CONSTRAINT "users_email_key" TO "users_email_uq"`)
		u := ns.Tables["users"]
		ix := u.Indexes["users_email_uq"]
		if ix == nil || u.Indexes["users_email_key"] != nil {
			t.Fatalf("indexes of the model: %v", u.Indexes)
		}
		eq(t, "constraint of the index", ix.Constraint, "users_email_uq")
		eq(t, "name in the database until complete", ix.PhysicalName(), "users_email_key")
		eq(t, "schema index list", ns.Indexes["users_email_uq"], "users")
		_, stillListed := ns.Indexes["users_email_key"]
		eq(t, "old index name listed", stillListed, false)
	})

	t.Run("the names at contract time", func(t *testing.T) {
		p, _, err := compileYAML(t, s, publicOpts, `
- rename_table: {from: users, to: members}
- rename_constraint: {table: members, from: users_team_fk, to: members_team_fk}
- rename_constraint: {table: members, from: members_team_fk, to: members_team_ref}`)
		if err != nil {
			t.Fatal(err)
		}
		stmts := allSQL(p.Contract)
		eq(t, "statements", len(stmts), 3)
		eq(t, "first rename", stmts[1], `ALTER TABLE "public"."members" RENAME CONSTRAINT "users_team_fk" TO "members_team_fk"`)
		eq(t, "second rename", stmts[2], `ALTER TABLE "public"."members" RENAME CONSTRAINT "members_team_fk" TO "members_team_ref"`)
	})

	t.Run("renamed, then its column rewritten: rebuilt under the new name", func(t *testing.T) {
		p, _, err := compileYAML(t, s, publicOpts, `
- rename_constraint: {table: users, from: users_email_check, to: users_email_has_at}
- alter_column: {table: users, column: email, type: varchar(320)}`)
		if err != nil {
			t.Fatal(err)
		}
		// The rename runs first at complete; the old column then goes with
		// its constraint, and the rebuilt one takes the new name.
		stmts := allSQL(p.Contract)
		rename := slicesIndex(stmts, `ALTER TABLE "public"."users" RENAME CONSTRAINT "users_email_check" TO "users_email_has_at"`)
		swap := slicesIndex(stmts, `ALTER TABLE "public"."users" RENAME CONSTRAINT "_online_users_email_has_at" TO "users_email_has_at"`)
		if rename < 0 || swap < 0 || rename > swap {
			t.Fatalf("contract:\n%s", strings.Join(stmts, "\n"))
		}
		wantSQL(t, "finish", p.Finish, `ADD CONSTRAINT "_online_users_email_has_at" CHECK`)
	})

	t.Run("a constraint this migration adds", func(t *testing.T) {
		p, _, err := compileYAML(t, s, publicOpts, `
- alter_column: {table: users, column: score, check: {name: users_score_check, constraint: score >= 0}}
- rename_constraint: {table: users, from: users_score_check, to: users_score_positive}`)
		if err != nil {
			t.Fatal(err)
		}
		wantSQL(t, "contract", p.Contract, `RENAME CONSTRAINT "users_score_check" TO "users_score_positive"`)
	})
}

func TestRenameConstraintErrors(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", renameConstraintFixture...)
	const kind = "rename_constraint"
	long := strings.Repeat("c", 64)
	cases := []struct {
		name, ops string
		op        int
		field     string
		msg       string
	}{
		{"missing table", "- rename_constraint: {table: nope, from: a, to: b}", 1, "table", `"nope" does not exist`},
		{"no from", "- rename_constraint: {table: users, to: b}", 1, "from", "is required"},
		{"missing constraint", "- rename_constraint: {table: users, from: nope, to: b}", 1, "from", `table "users" has no constraint "nope"`},
		{"constraint of another table", "- rename_constraint: {table: users, from: other_check, to: b}", 1, "from", `no constraint "other_check"`},
		{"no to", "- rename_constraint: {table: users, from: users_email_check}", 1, "to", "is required"},
		{"same name", "- rename_constraint: {table: users, from: users_email_check, to: users_email_check}", 1, "to", "current name"},
		{"to taken on the table", "- rename_constraint: {table: users, from: users_email_check, to: users_team_fk}", 1, "to", `already has a constraint "users_team_fk"`},
		{"to taken by an index", "- rename_constraint: {table: users, from: users_email_key, to: users_score_idx}", 1, "to", `"users_score_idx" is already used`},
		{"to too long", "- rename_constraint: {table: users, from: users_email_check, to: " + long + "}", 1, "to", "at most 63 bytes"},
		{"renamed earlier", "- rename_constraint: {table: users, from: users_email_check, to: a}\n- rename_constraint: {table: users, from: users_email_check, to: b}", 2, "from", `no constraint "users_email_check"`},
		{"old name taken until complete", "- rename_constraint: {table: users, from: users_email_key, to: a}\n- create_index: {table: users, name: users_email_key, columns: [score]}", 2, "name", "already used"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := compileYAML(t, s, publicOpts, c.ops)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			k := kind
			if c.name == "old name taken until complete" {
				k = "create_index"
			}
			checkErr(t, e, c.op, k, c.field, c.msg)
		})
	}
}
