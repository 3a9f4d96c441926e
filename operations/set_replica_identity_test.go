package operations

import (
	"errors"
	"strings"
	"testing"
)

// replicaFixture has an index of each kind PostgreSQL refuses as a replica
// identity, and starts with the identity on accounts_email_key.
var replicaFixture = []string{
	`CREATE TABLE accounts (
		id bigint PRIMARY KEY,
		email text NOT NULL,
		handle text,
		code text NOT NULL,
		region text NOT NULL,
		CONSTRAINT accounts_email_key UNIQUE (email),
		CONSTRAINT accounts_code_key UNIQUE (code) DEFERRABLE
	)`,
	`CREATE UNIQUE INDEX accounts_handle_key ON accounts (handle)`,
	`CREATE INDEX accounts_region_idx ON accounts (region)`,
	`CREATE UNIQUE INDEX accounts_region_partial ON accounts (region) WHERE id > 0`,
	`CREATE UNIQUE INDEX accounts_lower_email ON accounts (lower(email))`,
	`ALTER TABLE accounts REPLICA IDENTITY USING INDEX accounts_email_key`,
	`CREATE TABLE other (id int PRIMARY KEY)`,
	`CREATE TABLE plain (id int PRIMARY KEY, v text)`,
}

func TestReadReplicaIdentity(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", replicaFixture...)
	a := s.Tables["accounts"]
	eq(t, "relreplident", a.ReplicaIdentity, "i")
	eq(t, "accounts_email_key is the identity", a.Indexes["accounts_email_key"].ReplicaIdentity, true)
	eq(t, "accounts_pkey is not", a.Indexes["accounts_pkey"].ReplicaIdentity, false)
	eq(t, "deferrable", a.Indexes["accounts_code_key"].Deferrable, true)
	eq(t, "immediate", a.Indexes["accounts_email_key"].Deferrable, false)
	eq(t, "plain", s.Tables["plain"].ReplicaIdentity, "d")
}

func TestSetReplicaIdentityPlans(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", replicaFixture...)

	t.Run("index, undo restores the previous index", func(t *testing.T) {
		p, ns, err := compileYAML(t, s, publicOpts, "- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_pkey}}")
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "finish steps", len(p.Finish), 1)
		st := p.Finish[0]
		eq(t, "sql", strings.Join(st.SQL, ";"), `ALTER TABLE "public"."accounts" REPLICA IDENTITY USING INDEX "accounts_pkey"`)
		eq(t, "undo", strings.Join(st.Undo, ";"), `ALTER TABLE IF EXISTS "public"."accounts" REPLICA IDENTITY USING INDEX "accounts_email_key"`)
		eq(t, "no contract", len(p.Contract), 0)
		a := ns.Tables["accounts"]
		eq(t, "model letter", a.ReplicaIdentity, "i")
		eq(t, "model new index", a.Indexes["accounts_pkey"].ReplicaIdentity, true)
		eq(t, "model old index", a.Indexes["accounts_email_key"].ReplicaIdentity, false)
		// The catalog model the compile started from is untouched.
		eq(t, "old model", s.Tables["accounts"].Indexes["accounts_email_key"].ReplicaIdentity, true)
	})

	t.Run("each undo restores what the operation before it set", func(t *testing.T) {
		p, ns, err := compileYAML(t, s, publicOpts, `
- set_replica_identity: {table: plain, identity: {type: FULL}}
- set_replica_identity: {table: plain, identity: {type: nothing}}
- set_replica_identity: {table: plain, identity: {type: default}}`)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "steps", len(p.Finish), 3)
		for i, want := range []struct{ do, undo string }{{"FULL", "DEFAULT"}, {"NOTHING", "FULL"}, {"DEFAULT", "NOTHING"}} {
			eq(t, "sql", p.Finish[i].SQL[0], `ALTER TABLE "public"."plain" REPLICA IDENTITY `+want.do)
			eq(t, "undo", p.Finish[i].Undo[0], `ALTER TABLE IF EXISTS "public"."plain" REPLICA IDENTITY `+want.undo)
		}
		eq(t, "model", ns.Tables["plain"].ReplicaIdentity, "d")
	})

	t.Run("after the steps that build an index, in operation order", func(t *testing.T) {
		p, _, err := compileYAML(t, s, publicOpts, `
- create_index: {table: plain, name: plain_v_key, columns: [id, v], unique: true}
- set_replica_identity: {table: plain, identity: {type: index, index: plain_pkey}}`)
		if err != nil {
			t.Fatal(err)
		}
		wantSQL(t, "finish", p.Finish, `REPLICA IDENTITY USING INDEX "plain_pkey"`)
		p, _, err = compileYAML(t, s, publicOpts, `
- create_index: {table: accounts, name: accounts_region_code_key, columns: [region, code], unique: true}
- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_region_code_key}}
- set_replica_identity: {table: accounts, identity: {type: full}}`)
		if err != nil {
			t.Fatal(err)
		}
		// After the concurrent build, and before the identity of the
		// operation after it.
		wantSQL(t, "expand", p.Expand, `CREATE UNIQUE INDEX CONCURRENTLY "accounts_region_code_key"`)
		eq(t, "finish steps", len(p.Finish), 2)
		eq(t, "then set", p.Finish[0].SQL[0], `ALTER TABLE "public"."accounts" REPLICA IDENTITY USING INDEX "accounts_region_code_key"`)
		eq(t, "then full", p.Finish[1].SQL[0], `ALTER TABLE "public"."accounts" REPLICA IDENTITY FULL`)
		eq(t, "whose undo restores the index", p.Finish[1].Undo[0], `ALTER TABLE IF EXISTS "public"."accounts" REPLICA IDENTITY USING INDEX "accounts_region_code_key"`)
	})

	t.Run("an index renamed by rename_constraint is named as it is in the database", func(t *testing.T) {
		p, ns, err := compileYAML(t, s, publicOpts, `
- rename_constraint: {table: accounts, from: accounts_email_key, to: accounts_email_uq}
- set_replica_identity: {table: accounts, identity: {type: full}}
- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_email_uq}}`)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "undo of full", p.Finish[0].Undo[0], `ALTER TABLE IF EXISTS "public"."accounts" REPLICA IDENTITY USING INDEX "accounts_email_key"`)
		eq(t, "sql", p.Finish[1].SQL[0], `ALTER TABLE "public"."accounts" REPLICA IDENTITY USING INDEX "accounts_email_key"`)
		eq(t, "model", ns.Tables["accounts"].Indexes["accounts_email_uq"].ReplicaIdentity, true)
	})

	t.Run("a renamed table is named as it is in the database", func(t *testing.T) {
		p, _, err := compileYAML(t, s, publicOpts, `
- rename_table: {from: plain, to: simple}
- set_replica_identity: {table: simple, identity: {type: full}}`)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "sql", p.Finish[0].SQL[0], `ALTER TABLE "public"."plain" REPLICA IDENTITY FULL`)
	})
}

func TestSetReplicaIdentityErrors(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", replicaFixture...)
	const kind = "set_replica_identity"
	cases := []struct {
		name, ops string
		op        int
		field     string
		msg       string
	}{
		{"missing table", "- set_replica_identity: {table: nope, identity: {type: full}}", 1, "table", `"nope" does not exist`},
		{"no table", "- set_replica_identity: {identity: {type: full}}", 1, "table", "is required"},
		{"no type", "- set_replica_identity: {table: accounts, identity: {index: accounts_pkey}}", 1, "identity.type", "is required"},
		{"unknown type", "- set_replica_identity: {table: accounts, identity: {type: primary}}", 1, "identity.type", `got "primary"`},
		{"index without name", "- set_replica_identity: {table: accounts, identity: {type: index}}", 1, "identity.index", "is required for type index"},
		{"index with another type", "- set_replica_identity: {table: accounts, identity: {type: full, index: accounts_pkey}}", 1, "identity.index", "applies to type index only"},
		{"missing index", "- set_replica_identity: {table: accounts, identity: {type: index, index: nope}}", 1, "identity.index", `index "nope" does not exist in table "accounts"`},
		{"index of another table", "- set_replica_identity: {table: accounts, identity: {type: index, index: other_pkey}}", 1, "identity.index", `of table "other"`},
		{"not unique", "- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_region_idx}}", 1, "identity.index", "not unique"},
		{"partial", "- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_region_partial}}", 1, "identity.index", "partial"},
		{"expression", "- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_lower_email}}", 1, "identity.index", "expression"},
		{"deferrable", "- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_code_key}}", 1, "identity.index", "deferrable"},
		{"nullable column", "- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_handle_key}}", 1, "identity.index", `column "handle", which is nullable`},
		{"NOT NULL set only at complete",
			"- alter_column: {table: accounts, column: handle, nullable: false, up: \"coalesce(handle, 'h' || id)\"}\n- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_handle_key}}",
			2, "identity.index", "rewrites"},
		{"index over a dropped column",
			"- create_index: {table: accounts, name: accounts_rc, columns: [region, code], unique: true}\n- drop_column: {table: accounts, column: region, down: \"'r'\"}\n- set_replica_identity: {table: accounts, identity: {type: index, index: accounts_rc}}",
			3, "identity.index", "no longer has"},
		{"table dropped earlier",
			"- drop_table: {name: plain}\n- set_replica_identity: {table: plain, identity: {type: full}}",
			2, "table", "no longer in the new version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := compileYAML(t, s, publicOpts, c.ops)
			checkCompileErr(t, err, c.op, kind, c.field, c.msg)
		})
	}
}

// The columns of a replica identity index must stay NOT NULL and cannot be
// dropped: both are refused before anything runs.
func TestReplicaIdentityColumnsAreKept(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", replicaFixture...)
	for _, c := range []struct{ ops, kind, field string }{
		{"- alter_column: {table: accounts, column: email, nullable: true}", "alter_column", "nullable"},
		{"- drop_column: {table: accounts, column: email, down: \"'x'\"}", "drop_column", "column"},
	} {
		_, _, err := compileYAML(t, s, publicOpts, c.ops)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: got %v, want an *Error", c.ops, err)
		}
		checkErr(t, e, 1, c.kind, c.field, "replica identity")
	}
}
