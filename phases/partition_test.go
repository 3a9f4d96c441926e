package phases_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

// partitionTree is a table partitioned by range over two levels: events_2024
// is a leaf, events_2025 is partitioned again (by range on the same key) into
// two leaves, so an index is built on three leaves and attached on two
// levels. The rows land in all three leaves.
var partitionTree = []string{
	"CREATE TABLE refs (id int PRIMARY KEY)",
	"INSERT INTO refs SELECT generate_series(1, 10)",
	"CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, code text, n int, ref int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
	"CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
	"CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY RANGE (at)",
	"CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES FROM ('2025-01-01') TO ('2025-07-01')",
	"CREATE TABLE events_2025_h2 PARTITION OF events_2025 FOR VALUES FROM ('2025-07-01') TO ('2026-01-01')",
	"INSERT INTO events SELECT g, DATE '2024-06-01' + g * 7, 'c' || g, g, 1 + g % 10 FROM generate_series(1, 60) g",
}

// expectPartitionedIndex checks that index is valid and attached on every
// level, with a valid index on each of the three leaves.
func expectPartitionedIndex(e *env, index string) {
	e.t.Helper()
	e.expectRows(e.db, []string{"3|5|true"}, `
SELECT count(*) FILTER (WHERE t.isleaf), count(*), bool_and(i.indisvalid)
FROM pg_partition_tree($1::regclass) t JOIN pg_index i ON i.indexrelid = t.relid`, "public."+index)
	// Each leaf's index hangs off the index of its own parent table.
	e.expectRows(e.db, []string{"events_2024|events", "events_2025|events", "events_2025_h1|events_2025", "events_2025_h2|events_2025"}, `
SELECT ci.indrelid::regclass::text, pi.indrelid::regclass::text
FROM pg_partition_tree($1::regclass) t
JOIN pg_inherits h ON h.inhrelid = t.relid
JOIN pg_index ci ON ci.indexrelid = h.inhrelid JOIN pg_index pi ON pi.indexrelid = h.inhparent
ORDER BY 1`, "public."+index)
}

func TestPartitionLifecycle(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			name:  "partition_create_index",
			setup: partitionTree,
			yaml:  `operations: [ { create_index: { table: events, name: events_n_idx, columns: [n] } } ]`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				expectPartitionedIndex(e, "events_n_idx")
				e.expectRows(nw, []string{"c7"}, "SELECT code FROM events WHERE n = 7")
				e.exec(nw, "INSERT INTO events VALUES (1000 + (SELECT count(*) FROM events), '2025-08-01', 'new', 500, 1)")
				e.exec(old, "INSERT INTO events VALUES (2000 + (SELECT count(*) FROM events), '2024-08-01', 'old', 501, 1)")
				e.expectRows(old, []string{"new"}, "SELECT code FROM events WHERE n = 500 LIMIT 1")
				e.expectRows(nw, []string{"old"}, "SELECT code FROM events WHERE n = 501 LIMIT 1")
				e.exec(old, "DELETE FROM events WHERE n IN (500, 501)")
			},
			after: func(e *env, nw *pgx.Conn) {
				expectPartitionedIndex(e, "events_n_idx")
				e.expectRows(e.db, []string{"CREATE INDEX events_n_idx ON ONLY public.events USING btree (n)"}, "SELECT pg_get_indexdef('public.events_n_idx'::regclass)")
			},
		},
		{
			name:  "partition_create_unique_index",
			setup: partitionTree,
			yaml:  `operations: [ { create_index: { table: events, name: events_code_at_key, columns: [code, at], unique: true } } ]`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				expectPartitionedIndex(e, "events_code_at_key")
				e.exec(nw, "INSERT INTO events VALUES (1000, '2025-08-01', 'dup', 1, 1)")
				// The same code on another day is another key.
				e.exec(old, "INSERT INTO events VALUES (1001, '2024-08-01', 'dup', 1, 1)")
				e.expectErr(nw, "duplicate key", "INSERT INTO events VALUES (1002, '2025-08-01', 'dup', 1, 1)")
				e.expectErr(old, "duplicate key", "INSERT INTO events VALUES (1003, '2024-08-01', 'dup', 1, 1)")
				e.exec(old, "DELETE FROM events WHERE code = 'dup'")
			},
			after: func(e *env, nw *pgx.Conn) {
				expectPartitionedIndex(e, "events_code_at_key")
				e.expectErr(nw, "duplicate key", "INSERT INTO events VALUES (1004, DATE '2024-06-01' + 7, 'c1', 1, 1)")
			},
		},
		{
			name:  "partition_create_constraint_unique",
			setup: partitionTree,
			yaml:  `operations: [ { create_constraint: { table: events, name: events_code_uq, type: unique, columns: [code, at] } } ]`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				// Until complete, the leaves' unique indexes enforce it.
				e.expectRows(e.db, []string{"3|true"}, "SELECT count(*), bool_and(indisvalid AND indisunique) FROM pg_index WHERE indrelid::regclass::text LIKE 'events_20%' AND indexrelid::regclass::text LIKE '%events_code_uq%'")
				e.exec(nw, "INSERT INTO events VALUES (1000, '2025-08-01', 'dup', 1, 1)")
				e.expectErr(old, "duplicate key", "INSERT INTO events VALUES (1001, '2025-08-01', 'dup', 1, 1)")
				e.exec(old, "DELETE FROM events WHERE code = 'dup'")
			},
			after: func(e *env, nw *pgx.Conn) {
				expectPartitionedIndex(e, "events_code_uq")
				// A constraint on every level, each attached to its parent's.
				e.expectRows(e.db, []string{"events|false", "events_2024|true", "events_2025|true", "events_2025_h1|true", "events_2025_h2|true"}, "SELECT conrelid::regclass::text, conparentid <> 0 FROM pg_constraint WHERE contype = 'u' AND conindid IN (SELECT relid FROM pg_partition_tree('public.events_code_uq'::regclass)) ORDER BY 1")
				e.expectRows(e.db, []string{"UNIQUE (code, at)"}, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'events_code_uq'")
				e.expectErr(nw, "events_code_uq", "INSERT INTO events VALUES (1004, DATE '2024-06-01' + 7, 'c1', 1, 1)")
			},
		},
		{
			name:  "partition_foreign_key",
			setup: partitionTree,
			yaml:  `operations: [ { create_constraint: { table: events, name: events_ref_fk, type: foreign_key, columns: [ref], references: { table: refs, columns: [id] } } } ]`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(e.db, []string{"events|false|true", "events_2024|true|true", "events_2025|true|true", "events_2025_h1|true|true", "events_2025_h2|true|true"}, "SELECT conrelid::regclass::text, conparentid <> 0, convalidated FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text LIKE 'events%' ORDER BY 1")
				e.expectErr(nw, "violates foreign key", "INSERT INTO events VALUES (1000, '2025-08-01', 'x', 1, 99)")
				e.exec(nw, "INSERT INTO events VALUES (1000, '2025-08-01', 'x', 1, 9)")
				e.exec(old, "DELETE FROM events WHERE id = 1000")
			},
		},
		{
			// PostgreSQL cannot drop a partitioned index concurrently: it is
			// dropped at complete with its partitions' indexes, in an instant.
			name:  "partition_drop_index",
			setup: append(append([]string{}, partitionTree...), "CREATE INDEX events_code_idx ON events (code)"),
			yaml:  `operations: [ { drop_index: { name: events_code_idx } } ]`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				expectPartitionedIndex(e, "events_code_idx")
				e.expectRows(nw, []string{"c7"}, "SELECT code FROM events WHERE code = 'c7'")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_class WHERE relkind IN ('i', 'I') AND relname LIKE 'events%code%'")
			},
		},
		{
			// A rewrite of a column that a plain index, a unique constraint
			// and a check use: each is rebuilt on the new column, partition
			// by partition, and takes the old name at complete.
			name: "partition_rewrite_indexed_column",
			setup: append(append([]string{}, partitionTree...),
				"CREATE INDEX events_n_idx ON events (n)",
				"ALTER TABLE events ADD CONSTRAINT events_n_at_key UNIQUE (n, at)",
				"ALTER TABLE events ADD CONSTRAINT events_n_check CHECK (n >= 0)"),
			yaml: `operations: [ { alter_column: { table: events, column: n, type: bigint, up: "n::bigint * 10", down: "(n / 10)::int" } } ]`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"70|bigint"}, "SELECT n, pg_typeof(n)::text FROM events WHERE id = 7")
				expectPartitionedIndex(e, "_online_events_n_idx")
				e.exec(old, "UPDATE events SET n = 8 WHERE id = 4")
				e.expectRows(nw, []string{"80"}, "SELECT n FROM events WHERE id = 4")
				e.exec(old, "UPDATE events SET n = 4 WHERE id = 4")
				// The rebuilt unique index holds on the new column: two rows
				// of one day cannot get the same new value.
				e.exec(nw, "INSERT INTO events VALUES (1000, '2025-08-01', 'x', 990, 1)")
				e.expectErr(nw, "duplicate key", "INSERT INTO events VALUES (1001, '2025-08-01', 'y', 990, 1)")
				e.expectErr(nw, "check", "INSERT INTO events VALUES (1002, '2025-08-01', 'z', -10, 1)")
				e.exec(old, "DELETE FROM events WHERE id = 1000")
			},
			after: func(e *env, nw *pgx.Conn) {
				expectPartitionedIndex(e, "events_n_idx")
				expectPartitionedIndex(e, "events_n_at_key")
				e.expectRows(e.db, []string{"CREATE INDEX events_n_idx ON ONLY public.events USING btree (n)"}, "SELECT pg_get_indexdef('public.events_n_idx'::regclass)")
				e.expectRows(e.db, []string{"events_n_at_key|UNIQUE (n, at)", "events_n_check|CHECK ((n >= 0))"}, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.events'::regclass AND contype IN ('u', 'c') ORDER BY 1")
				e.expectRows(e.db, []string{"bigint"}, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.events_2025_h2'::regclass AND attname = 'n'")
				e.expectRows(nw, []string{"600"}, "SELECT n FROM events WHERE id = 60")
				e.expectErr(nw, "events_n_at_key", "INSERT INTO events VALUES (1003, DATE '2024-06-01' + 7, 'x', 10, 1)")
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

// TestPartitionRefusals: what PostgreSQL cannot do on a partitioned table is
// refused before any change, naming the field.
func TestPartitionRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, partitionTree...)
	before := e.dump()
	for _, tc := range []struct{ name, yaml, want string }{
		{"unique_without_key", `operations: [ { create_index: { table: events, name: u1, columns: [code], unique: true } } ]`,
			`operation 1 (create_index): field "columns": table "events" is partitioned by (at)`},
		{"constraint_without_key", `operations: [ { create_constraint: { table: events, name: u2, type: unique, columns: [code] } } ]`,
			`field "columns": table "events" is partitioned by (at); a unique index or constraint on a partitioned table must include every partition key column, and (code) lacks at`},
		{"alter_unique", `operations: [ { alter_column: { table: events, column: code, unique: { name: u3 } } } ]`,
			`field "unique": table "events" is partitioned by (at)`},
		{"rewrite_key", `operations: [ { alter_column: { table: events, column: at, type: timestamptz, up: "at::timestamptz", down: "at::date" } } ]`,
			`field "column": column "at" is in the partition key of table "events"`},
	} {
		_, err := e.engine().Start(ctx(), parse(t, tc.name, tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", tc.name, tc.want, err)
		}
	}
	if after := e.dump(); after != before {
		t.Fatalf("a refused migration changed the schema")
	}
}

// TestPartitionBackfillPerLeaf: a rewrite of a partitioned table backfills
// each leaf on its own (one task per leaf, in the state schema, a leaf in
// another schema included), every row ends converted, and a leaf dropped
// while the backfill runs is skipped instead of failing start.
func TestPartitionBackfillPerLeaf(t *testing.T) {
	t.Parallel()
	e := newEnv(t, append(append([]string{}, partitionTree...),
		"CREATE SCHEMA archive",
		"CREATE TABLE archive.events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')",
		"INSERT INTO events SELECT 100 + g, DATE '2023-01-01' + g, 'a' || g, g, 1 FROM generate_series(1, 20) g")...)
	dropped := false
	eng := e.engine(func(c *phases.Config) {
		c.OnProgress = func(p backfill.Progress) {
			// While the first leaf is walked, the application drops
			// the last one (its rows go with it).
			if !dropped && p.Table == "events_2023" {
				dropped = true
				e.exec(e.db, "DROP TABLE events_2025_h2")
			}
		}
	})
	if _, err := eng.Start(context.Background(), parse(t, "leaves", `
operations:
  - alter_column: { table: events, column: n, type: bigint, up: "n::bigint * 10", down: "(n / 10)::int" }
`)); err != nil {
		t.Fatalf("start: %s", pg.Explain(err))
	}
	if !dropped {
		t.Fatal("the backfill never reported progress on events_2023")
	}
	// One task per leaf, in name order; the dropped leaf done with nothing walked.
	e.expectRows(e.db, []string{"0|events_2023|20|true", "1|events_2024|30|true", "2|events_2025_h1|26|true", "3|events_2025_h2|0|true"},
		"SELECT task, tbl, rows_done, done FROM online.backfills WHERE migration = 'leaves' ORDER BY task")
	nw := e.version("public_leaves")
	e.expectRows(nw, []string{"76|0"}, "SELECT count(*), count(*) FILTER (WHERE n IS DISTINCT FROM (id % 100) * 10 AND id < 100 OR n IS DISTINCT FROM (id - 100) * 10 AND id > 100) FROM events")
	e.complete()
	e.expectRows(e.db, []string{"76|bigint"}, "SELECT count(*), pg_typeof(min(n))::text FROM events")
}
