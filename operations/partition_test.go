package operations

import (
	"errors"
	"strings"
	"testing"
)

// partitionFixture is a table partitioned over two levels (by at, then its
// 2025 partition by hash of id), a foreign-key target, and a second
// partitioned table with a partition in another schema.
var partitionFixture = []string{
	`CREATE TABLE refs (id int PRIMARY KEY)`,
	`CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, code text, n int, ref int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`,
	`CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
	`CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY HASH (id)`,
	`CREATE TABLE events_2025_a PARTITION OF events_2025 FOR VALUES WITH (modulus 2, remainder 0)`,
	`CREATE TABLE events_2025_b PARTITION OF events_2025 FOR VALUES WITH (modulus 2, remainder 1)`,
	`CREATE INDEX events_n_idx ON events (n)`,
	`ALTER TABLE events ADD CONSTRAINT events_ref_fk FOREIGN KEY (ref) REFERENCES refs (id)`,
	`CREATE TABLE events_2024_events_code_idx (x int)`, // takes the first name online would pick
	`CREATE TABLE byexpr (id int, at date) PARTITION BY RANGE ((at + 1))`,
	`CREATE TABLE byexpr_1 PARTITION OF byexpr FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
	`CREATE SCHEMA other`,
	`CREATE TABLE split (id int, k int) PARTITION BY LIST (k)`,
	`CREATE TABLE other.split_1 PARTITION OF split FOR VALUES IN (1)`,
}

func TestPartitionCompileErrors(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", partitionFixture...)
	cases := []struct{ name, ops, field, want string }{
		{"unique index without the key", "- create_index: {table: events, name: u, columns: [code], unique: true}", "columns",
			`table "events" is partitioned by (at, id); a unique index or constraint on a partitioned table must include every partition key column, and (code) lacks at, id`},
		{"unique index missing a lower level's key", "- create_index: {table: events, name: u, columns: [code, at], unique: true}", "columns",
			"(code, at) lacks id"},
		{"unique constraint without the key", "- create_constraint: {table: events, name: u, type: unique, columns: [code, at]}", "columns",
			"lacks id"},
		{"alter_column unique", "- alter_column: {table: events, column: code, unique: {name: u}}", "unique",
			"(code) lacks at, id"},
		{"add_column unique", "- add_column: {table: events, column: {nullable: true, name: c2, type: text, unique: true}}", "column.unique",
			"(c2) lacks at, id"},
		{"unique on a rewritten column", "- alter_column: {table: events, column: code, type: varchar(10), unique: {name: u}}", "unique",
			"a unique constraint on the rewritten column alone is not possible"},
		{"primary key", "- create_constraint: {table: byexpr, name: pk, type: primary_key, columns: [id]}", "type",
			`table "byexpr" is partitioned; adding a primary key to a partitioned table is not supported yet`},
		{"expression key", "- create_index: {table: byexpr, name: u, columns: [id, at], unique: true}", "columns",
			"partitioned by an expression"},
		{"partition in another schema", "- create_index: {table: split, name: i, columns: [id]}", "table",
			`partition "split_1" of table "split" is in schema "other"`},
		{"rewrite a partition key column", "- alter_column: {table: events, column: at, type: timestamptz}", "column",
			`column "at" is in the partition key of table "events"`},
		{"no inherit check", "- create_constraint: {table: events, name: c, type: check, columns: [n], check: \"n > 0\", no_inherit: true}", "no_inherit",
			"NO INHERIT check constraint on a partitioned table"},
		{"no inherit check of alter_column", "- alter_column: {table: events, column: n, check: {name: c, constraint: \"n > 0\", no_inherit: true}}", "check.no_inherit",
			"NO INHERIT"},
		{"rewrite a foreign key column", "- alter_column: {table: events, column: ref, type: bigint}", "column",
			`column "ref" of partitioned table "events" has foreign key "events_ref_fk"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := compileYAML(t, s, publicOpts, c.ops)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want an *Error, got %v", err)
			}
			if e.File != "m.yaml" || e.Op == 0 || e.Field != c.field || !strings.Contains(e.Err.Error(), c.want) {
				t.Errorf("got %v (field %q), want field %q and %q", err, e.Field, c.field, c.want)
			}
		})
	}
}

func TestPartitionPlans(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", partitionFixture...)

	p, _, err := compileYAML(t, s, publicOpts, "- create_index: {table: events, name: events_code_idx, columns: [code]}")
	if err != nil {
		t.Fatal(err)
	}
	// One concurrent build per leaf, then one transaction for the levels.
	if len(p.Expand) != 4 {
		t.Fatalf("want 4 expand steps, got %d: %v", len(p.Expand), allSQL(p.Expand))
	}
	for _, st := range p.Expand[:3] {
		if !st.NoTx || !strings.HasPrefix(st.SQL[0], "DROP INDEX CONCURRENTLY IF EXISTS") || len(st.Undo) != 1 {
			t.Errorf("leaf step %q: want a concurrent build after a drop of a leftover, with an undo", st.Do)
		}
	}
	wantSQL(t, "expand", p.Expand,
		`CREATE INDEX CONCURRENTLY "events_2024_events_code_idx_2" ON "public"."events_2024" ("code")`,
		`CREATE INDEX CONCURRENTLY "events_2025_a_events_code_idx" ON "public"."events_2025_a" ("code")`,
		`CREATE INDEX "events_2025_events_code_idx" ON ONLY "public"."events_2025" ("code")`,
		`ALTER INDEX "public"."events_2025_events_code_idx" ATTACH PARTITION "public"."events_2025_b_events_code_idx"`,
		`CREATE INDEX "events_code_idx" ON ONLY "public"."events" ("code")`,
		`ALTER INDEX "public"."events_code_idx" ATTACH PARTITION "public"."events_2025_events_code_idx"`,
		`indisvalid`)
	last := p.Expand[3]
	if last.NoTx || len(last.Undo) != 1 || last.Undo[0] != `DROP INDEX IF EXISTS "public"."events_code_idx"` {
		t.Errorf("attach step: want one transaction undone by dropping the parent index, got %+v", last)
	}

	// A unique constraint: leaves in finish, constraints at complete.
	p, _, err = compileYAML(t, s, publicOpts, "- create_constraint: {table: events, name: events_u, type: unique, columns: [code, at, id]}")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Finish) != 3 {
		t.Fatalf("want 3 finish steps, got %d", len(p.Finish))
	}
	wantSQL(t, "contract", p.Contract,
		`ALTER TABLE "public"."events_2025_a" ADD CONSTRAINT "events_2025_a_events_u" UNIQUE USING INDEX "events_2025_a_events_u"`,
		`ALTER TABLE "public"."events_2025" ADD CONSTRAINT "events_2025_events_u" UNIQUE ("code", "at", "id")`,
		`ALTER TABLE "public"."events" ADD CONSTRAINT "events_u" UNIQUE ("code", "at", "id")`)

	// A foreign key: NOT VALID and validated per leaf, then the parent.
	p, _, err = compileYAML(t, s, publicOpts, "- create_constraint: {table: events, name: events_fk, type: foreign_key, columns: [ref], references: {table: refs, columns: [id]}}")
	if err != nil {
		t.Fatal(err)
	}
	wantSQL(t, "finish", p.Finish,
		`ALTER TABLE "public"."events_2024" ADD CONSTRAINT "events_2024_events_fk" FOREIGN KEY ("ref") REFERENCES "public"."refs" ("id") NOT VALID`,
		`ALTER TABLE "public"."events_2024" VALIDATE CONSTRAINT "events_2024_events_fk"`,
		`ALTER TABLE "public"."events" ADD CONSTRAINT "events_fk" FOREIGN KEY ("ref") REFERENCES "public"."refs" ("id")`)
	if got := p.Finish[len(p.Finish)-1].SQL[0]; strings.Contains(got, "NOT VALID") {
		t.Errorf("the parent's foreign key must not be NOT VALID: %s", got)
	}

	// A rewrite of an indexed column rebuilds the index partition by
	// partition and renames it at complete.
	p, _, err = compileYAML(t, s, publicOpts, "- alter_column: {table: events, column: n, type: bigint}")
	if err != nil {
		t.Fatal(err)
	}
	wantSQL(t, "finish", p.Finish,
		`CREATE INDEX CONCURRENTLY "events_2024_events_n_idx" ON "public"."events_2024" USING btree ("_online_n")`,
		`CREATE INDEX "_online_events_n_idx" ON ONLY "public"."events" USING btree ("_online_n")`)
	wantSQL(t, "contract", p.Contract, `ALTER INDEX "public"."_online_events_n_idx" RENAME TO "events_n_idx"`)
}
