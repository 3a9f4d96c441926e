package diff_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/diff"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// pair is one case of the corpus: a database holding old, a desired file
// new, and what diff must make of it. Every migration diff writes either takes
// the database to new, catalog for catalog, or diff says what stays
// different; none may be silently wrong.
type pair struct {
	name, old, new string
	// passes is how many migrations diff takes to reach new (run, diff
	// again, run...); 0 for a pair it never reaches, and says so.
	passes int
}

// corpus covers each kind of difference a schema file can hold: the ones
// diff expresses, and the ones it must say it does not.
var corpus = []pair{
	// Tables and columns.
	{"add nullable column", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY, note text);`, 1},
	{"add not null column with default", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 7);`, 1},
	{"drop column", `CREATE TABLE t (id int PRIMARY KEY, gone text);`, `CREATE TABLE t (id int PRIMARY KEY);`, 1},
	{"type int to bigint", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n bigint);`, 1},
	{"set not null", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL);`, 1},
	{"drop not null", `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL);`, `CREATE TABLE t (id int PRIMARY KEY, n int);`, 1},
	{"default changed", `CREATE TABLE t (id int PRIMARY KEY, s text DEFAULT 'a');`, `CREATE TABLE t (id int PRIMARY KEY, s text DEFAULT 'b');`, 1},
	{"new table with foreign key", `CREATE TABLE a (id int PRIMARY KEY);`, `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a(id) ON DELETE CASCADE);`, 1},
	{"drop table", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int);`, `CREATE TABLE a (id int PRIMARY KEY);`, 1},
	{"table comment", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY); COMMENT ON TABLE t IS 'things';`, 1},
	{"column comment", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int); COMMENT ON COLUMN t.n IS 'count';`, 1},
	{"column dropped and added", `CREATE TABLE t (id int PRIMARY KEY, a text);`, `CREATE TABLE t (id int PRIMARY KEY, b text);`, 1},

	// Indexes and constraints.
	{"add index", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE INDEX t_n ON t (n DESC) WHERE n > 0;`, 1},
	{"drop index", `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE INDEX t_n ON t (n);`, `CREATE TABLE t (id int PRIMARY KEY, n int);`, 1},
	{"add unique", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int CONSTRAINT t_n_key UNIQUE);`, 1},
	{"add check", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int CONSTRAINT n_pos CHECK (n > 0));`, 1},
	{"add foreign key", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int);`, `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int CONSTRAINT b_a_fk REFERENCES a(id));`, 1},
	{"plain drop of a unique constraint", `CREATE TABLE t (id int PRIMARY KEY, n int CONSTRAINT t_n_key UNIQUE);`, `CREATE TABLE t (id int PRIMARY KEY, n int);`, 1},
	{"foreign key not valid", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int);`,
		`CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int); ALTER TABLE b ADD CONSTRAINT b_a_fk FOREIGN KEY (a_id) REFERENCES a(id) NOT VALID;`, 1},
	{"check named like its table", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int, CONSTRAINT t CHECK (n > 0));`, 1},
	{"new primary key over a nullable column", `CREATE TABLE t (id int, n int); INSERT INTO t VALUES (1, 1);`, `CREATE TABLE t (id int PRIMARY KEY, n int);`, 1},
	{"dropped primary key column", `CREATE TABLE t (id int PRIMARY KEY, code text NOT NULL);`, `CREATE TABLE t (code text NOT NULL);`, 0},
	{"drop a table a view uses, view kept", `CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int); CREATE VIEW v AS SELECT id FROM u;`, `CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u2 (id int); CREATE VIEW v AS SELECT id FROM u2;`, 3},

	// Enums and other types.
	{"new enum and a column of it", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TYPE mood AS ENUM ('a', 'b'); CREATE TABLE t (id int PRIMARY KEY, m mood);`, 1},
	{"enum label added", `CREATE TYPE mood AS ENUM ('a', 'b');`, `CREATE TYPE mood AS ENUM ('a', 'x', 'b');`, 1},
	{"enum label dropped", `CREATE TYPE mood AS ENUM ('a', 'b');`, `CREATE TYPE mood AS ENUM ('a');`, 0},
	{"new enum label as a default", `CREATE TYPE mood AS ENUM ('a'); CREATE TABLE t (id int PRIMARY KEY, m mood);`,
		`CREATE TYPE mood AS ENUM ('a', 'b'); CREATE TABLE t (id int PRIMARY KEY, m mood DEFAULT 'b');`, 2},
	{"new domain", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE DOMAIN posint AS int CHECK (VALUE > 0); CREATE TABLE t (id int PRIMARY KEY);`, 1},
	{"new domain used by a new column", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE DOMAIN posint AS int NOT NULL DEFAULT 1 CONSTRAINT pos CHECK (VALUE > 0); CREATE TABLE t (id int PRIMARY KEY, n posint);`, 2},
	{"new sequence used as a default", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE SEQUENCE ticket; CREATE TABLE t (id int PRIMARY KEY, n bigint DEFAULT nextval('ticket'));`, 2},

	// Schemas other than public.
	{"new schema with a table", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY); CREATE SCHEMA s1; CREATE TABLE s1.u (id int PRIMARY KEY);`, 1},
	{"index in another schema", `CREATE SCHEMA s1; CREATE TABLE s1.u (id int PRIMARY KEY, n int);`, `CREATE SCHEMA s1; CREATE TABLE s1.u (id int PRIMARY KEY, n int); CREATE INDEX u_n ON s1.u (n);`, 1},
	{"table moved between schemas", `CREATE SCHEMA s1; CREATE TABLE t (id int PRIMARY KEY);`, `CREATE SCHEMA s1; CREATE TABLE s1.t (id int PRIMARY KEY);`, 1},
	{"schema dropped", `CREATE SCHEMA s1; CREATE TABLE s1.u (id int);`, ``, 1},
	{"empty schema created", ``, `CREATE SCHEMA s2;`, 1},

	// Sequences and identity.
	{"sequence increment", `CREATE SEQUENCE seq;`, `CREATE SEQUENCE seq INCREMENT 5;`, 1},
	{"new sequence", ``, `CREATE SEQUENCE seq START 100;`, 1},
	{"sequence owned by another table", `CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE SEQUENCE seq OWNED BY a.id;`,
		`CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE SEQUENCE seq OWNED BY b.id;`, 1},
	{"identity start", `CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);`, `CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY (START WITH 1000) PRIMARY KEY);`, 1},
	{"int to serial", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id serial PRIMARY KEY);`, 1},
	{"serial to int", `CREATE TABLE t (id serial PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY);`, 2},
	{"drop not null on identity", `CREATE TABLE t (k int PRIMARY KEY, id int GENERATED BY DEFAULT AS IDENTITY);`, `CREATE TABLE t (k int PRIMARY KEY, id int);`, 1},
	{"new table with identity", ``, `CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n text);`, 1},
	{"identity column added to a table", `CREATE TABLE t (k int PRIMARY KEY);`, `CREATE TABLE t (k int PRIMARY KEY, id bigint GENERATED ALWAYS AS IDENTITY);`, 0},
	{"new table with identity starting at 1000", ``, `CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000 INCREMENT BY 10) PRIMARY KEY);`, 1},
	{"new table with serial", ``, `CREATE TABLE t (id bigserial PRIMARY KEY, n text);`, 1},

	// Views and materialized views.
	{"new view", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, 1},
	{"view changed", `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id FROM t;`, `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id FROM t WHERE n > 0;`, 1},
	{"view security barrier", `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v WITH (security_barrier) AS SELECT id FROM t;`, 1},
	{"materialized view index", `CREATE TABLE t (id int PRIMARY KEY); CREATE MATERIALIZED VIEW m AS SELECT id FROM t;`,
		`CREATE TABLE t (id int PRIMARY KEY); CREATE MATERIALIZED VIEW m AS SELECT id FROM t; CREATE INDEX m_id ON m (id);`, 1},
	{"view dropped", `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, `CREATE TABLE t (id int PRIMARY KEY);`, 1},
	{"drop a column a view uses", `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id, n FROM t;`,
		`CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, 2},
	{"drop a table a view uses", `CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int); CREATE VIEW v AS SELECT id FROM u;`, `CREATE TABLE t (id int PRIMARY KEY);`, 2},

	// Collations.
	{"add column with collation", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY, s text COLLATE "C");`, 1},
	{"new table with collation", ``, `CREATE TABLE t (id int PRIMARY KEY, s text COLLATE "C");`, 1},
	{"collation changed", `CREATE TABLE t (id int PRIMARY KEY, s text);`, `CREATE TABLE t (id int PRIMARY KEY, s text COLLATE "C");`, 1},

	// Partitions.
	{"index on a partitioned table", `CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');`,
		`CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01'); CREATE INDEX p_id ON p (id);`, 1},
	{"a partition's own index", `CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');`,
		`CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01'); CREATE INDEX p1_id ON p1 (id);`, 1},
	{"new partition", `CREATE TABLE p (id int, d date) PARTITION BY RANGE (d);`,
		`CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');`, 1},

	// Functions, triggers, policies, RLS, replica identity.
	{"new function", ``, `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';`, 1},
	{"new trigger", `CREATE TABLE t (id int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';`,
		`CREATE TABLE t (id int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; CREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION tf();`, 1},
	{"row level security", `CREATE TABLE t (id int);`, `CREATE TABLE t (id int); ALTER TABLE t ENABLE ROW LEVEL SECURITY;`, 1},
	{"new policy", `CREATE TABLE t (id int);`, `CREATE TABLE t (id int); CREATE POLICY p ON t USING (id > 0);`, 1},
	{"drop a column a policy uses", `CREATE TABLE t (id int, owner text); CREATE POLICY p ON t USING (owner = current_user);`,
		`CREATE TABLE t (id int);`, 2},
	{"identity added to a column", `CREATE TABLE t (k int PRIMARY KEY, id int);`, `CREATE TABLE t (k int PRIMARY KEY, id int GENERATED BY DEFAULT AS IDENTITY);`, 1},
	{"identity always to by default", `CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);`, `CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);`, 1},
	{"sequence dropped", `CREATE SEQUENCE seq; CREATE TABLE t (id int);`, `CREATE TABLE t (id int);`, 1},
	{"new materialized view with an index", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY); CREATE MATERIALIZED VIEW m AS SELECT id FROM t; CREATE UNIQUE INDEX m_id ON m (id);`, 1},
	{"view comment", `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t; COMMENT ON VIEW v IS 'ids';`, 1},
	{"view on a view changed", `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id, n FROM t; CREATE VIEW w AS SELECT id FROM v;`,
		`CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id, n, n + 1 AS m FROM t; CREATE VIEW w AS SELECT id, m FROM v;`, 1},
	{"function changed", `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';`, `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';`, 1},
	{"policy changed", `CREATE TABLE t (id int); CREATE POLICY p ON t USING (id > 0);`, `CREATE TABLE t (id int); CREATE POLICY p ON t USING (id > 1);`, 1},
	{"trigger and its function dropped", `CREATE TABLE t (id int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; CREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION tf();`,
		`CREATE TABLE t (id int);`, 1},
	{"deferrable foreign key", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int);`,
		`CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int CONSTRAINT b_a_fk REFERENCES a(id) DEFERRABLE INITIALLY DEFERRED);`, 1},
	{"exclusion constraint", `CREATE TABLE t (id int PRIMARY KEY, r int4range);`, `CREATE TABLE t (id int PRIMARY KEY, r int4range, CONSTRAINT no_overlap EXCLUDE USING gist (r WITH &&));`, 1},
	{"replica identity full", `CREATE TABLE t (id int);`, `CREATE TABLE t (id int); ALTER TABLE t REPLICA IDENTITY FULL;`, 1},
}

// TestDiffCorpus is the promise of diff as a property: for every pair,
// each migration it writes, run through start and complete on the
// database holding the old schema, either gives exactly the desired
// catalog, or diff said (Verify) what it leaves different. Verify runs the
// migration on a copy of its own; the test runs it on the real database
// and checks that both found the same. diff is then run again, as a user
// would, until nothing is left to write: passes says after how many
// migrations the schema must be the desired one (0: never, diff says so).
func TestDiffCorpus(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	counts := map[string]int{}
	t.Cleanup(func() {
		n := 0
		for _, k := range []string{"exact", "said", "silent", "unfaithful", "fail"} {
			n += counts[k]
		}
		t.Logf("corpus of %d pairs, first migration: exact %d, said not expressed %d, silently wrong %d, verification unfaithful %d, failed %d; desired schema reached after 1 migration %d, 2 %d, 3 %d, never %d",
			n, counts["exact"], counts["said"], counts["silent"], counts["unfaithful"], counts["fail"], counts["reached 1"], counts["reached 2"], counts["reached 3"], counts["reached 0"])
	})
	// Each worker holds two databases, emptied between pairs: creating
	// and dropping a database per pair costs the server more than the
	// pairs themselves. Verify still makes its own scratch database.
	const workers = 8
	pool := make(chan [2]string, workers)
	for range workers {
		pool <- [2]string{pgtest.NewDB(t), pgtest.NewDB(t)}
	}
	for _, p := range corpus {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			dbs := <-pool
			defer func() { pool <- dbs }()
			emptyDB(t, dbs[0])
			emptyDB(t, dbs[1])
			first, reached := runPair(t, p, dbs[0], dbs[1])
			t.Logf("outcome: first migration %s; desired schema reached after %d migration(s)", first, reached)
			mu.Lock()
			counts[first]++
			counts[fmt.Sprintf("reached %d", reached)]++
			mu.Unlock()
		})
	}
}

// runPair returns the outcome of the first migration and the number of
// migrations that reached the desired schema (0: none did).
func runPair(t *testing.T, p pair, url, desiredURL string) (string, int) {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, url)
	if p.old != "" {
		pgtest.Exec(t, conn, p.old)
	}
	if p.new != "" {
		pgtest.Exec(t, pgtest.Connect(t, desiredURL), p.new)
	}
	// The desired database is read as diff --to-url reads one (LoadDesired
	// runs the file in a scratch database, then reads it the same way).
	want, err := diff.ReadDesiredURL(ctx, desiredURL, "public")
	if err != nil {
		t.Fatalf("read desired: %s", pg.Explain(err))
	}
	first, reached := passes(t, url, want)
	if reached != p.passes {
		t.Errorf("desired schema reached after %d migration(s), want %d (0: never)", reached, p.passes)
	}
	if p.passes == 0 && first == "exact" {
		t.Errorf("now exact: update the corpus")
	}
	return first, reached
}

// runPairAny is runPair for a pair whose number of migrations is not
// known: only diff's rule is checked (runPass).
func runPairAny(t *testing.T, p pair, url, desiredURL string) (string, int) {
	t.Helper()
	ctx := context.Background()
	pgtest.Exec(t, pgtest.Connect(t, url), p.old)
	pgtest.Exec(t, pgtest.Connect(t, desiredURL), p.new)
	want, err := diff.ReadDesiredURL(ctx, desiredURL, "public")
	if err != nil {
		t.Fatalf("read desired: %s", pg.Explain(err))
	}
	return passes(t, url, want)
}

// passes runs up to three migrations diff writes, until one reaches the
// desired schema or diff has nothing more to write; it returns the first
// one's outcome and which one reached it (0: none).
func passes(t *testing.T, url string, want *diff.Snapshot) (first string, reached int) {
	t.Helper()
	ctx := context.Background()
	for pass := 1; pass <= 3; pass++ {
		outcome, ops := runPass(ctx, t, url, want, pass)
		if first == "" {
			first = outcome
		}
		if outcome == "exact" {
			reached = pass
			break
		}
		if outcome != "said" || ops == 0 {
			break
		}
	}
	return first, reached
}

// runPass writes one migration and runs it; it returns its outcome and
// how many operations it had.
func runPass(ctx context.Context, t *testing.T, url string, want *diff.Snapshot, pass int) (string, int) {
	t.Helper()
	conn := pgtest.Connect(t, url)
	cur, err := diff.ReadSnapshot(ctx, url, "public", "online")
	if err != nil {
		t.Fatal(err)
	}
	res, err := diff.Plan(cur, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("generated_%d", pass)
	text, err := res.Render(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := diff.Verify(ctx, url, "public", "online", text, len(res.Ops), want)
	if err != nil {
		t.Fatalf("verify: %s", pg.Explain(err))
	}
	said := v.Failed != nil || len(v.Differences) > 0

	schemas, err := diff.UserSchemas(ctx, conn, "public", "online")
	if err != nil {
		t.Fatal(err)
	}
	schemas = slices.Compact(slices.Sorted(slices.Values(append(schemas, want.Schemas...))))
	before, err := diff.ReadCatalog(ctx, conn, schemas)
	if err != nil {
		t.Fatal(err)
	}

	// The same migration on the real database: started and rolled back
	// first when it holds sql operations (their down is diff's; the other
	// operations' rollback is tested with them), then started and
	// completed; the catalog must be as before after the rollback.
	var runErr error
	if len(res.Ops) > 0 {
		if !strings.Contains(string(text), "- sql:") {
			runErr = run(ctx, t, url, text, false)
		} else if runErr = run(ctx, t, url, text, true); runErr == nil {
			after, err := diff.ReadCatalog(ctx, conn, schemas)
			if err != nil {
				t.Fatal(err)
			}
			// PostgreSQL cannot drop an enum label: rolling back
			// add_enum_value leaves it.
			d := slices.DeleteFunc(after.Differences(before), func(s string) bool {
				return strings.HasPrefix(s, "enum ") && strings.Contains(string(text), "add_enum_value")
			})
			if len(d) > 0 {
				t.Errorf("migration %d: rollback leaves:\n%s\nmigration:\n%s", pass, strings.Join(d, "\n"), text)
			}
			runErr = run(ctx, t, url, text, false)
		}
	}
	got, err := diff.ReadCatalog(ctx, conn, schemas)
	if err != nil {
		t.Fatal(err)
	}
	actual := got.Differences(want.Catalog)
	// The check runs on a copy of the schema without its rows: a
	// migration the rows refuse (a unique key over duplicates, a check
	// some row breaks) fails at start on the real database, which undoes
	// itself; that is counted apart, not as an unfaithful check.
	var pe *pgconn.PgError
	if runErr != nil && v.Failed == nil && errors.As(runErr, &pe) && strings.HasPrefix(pe.Code, "23") {
		t.Logf("migration %d: the rows refuse it (start undone): %v\n%s", pass, runErr, text)
		return "data", len(res.Ops)
	}
	// What diff says and what happened must agree; the scratch copy
	// could otherwise hide a difference.
	if (runErr != nil) != (v.Failed != nil) || !slices.Equal(actual, v.Differences) {
		t.Errorf("migration %d: verification unfaithful:\nreal run: %v\n%s\nverify: %v\n%s\nmigration:\n%s",
			pass, runErr, strings.Join(actual, "\n"), v.Failed, strings.Join(v.Differences, "\n"), text)
		return "unfaithful", len(res.Ops)
	}
	switch {
	case runErr == nil && len(actual) == 0:
		return "exact", len(res.Ops)
	case said && runErr != nil:
		t.Logf("migration %d fails, and diff says so: %v\n%s", pass, v.Failed, text)
		return "fail", len(res.Ops)
	case said:
		t.Logf("migration %d leaves, and diff says so:\n%s\n%s", pass, strings.Join(v.Differences, "\n"), text)
		return "said", len(res.Ops)
	default:
		t.Errorf("migration %d is silently wrong: %v\n%s\nmigration:\n%s", pass, runErr, strings.Join(actual, "\n"), text)
		return "silent", len(res.Ops)
	}
}

// run starts the migration, then completes it, or rolls it back.
func run(ctx context.Context, t *testing.T, url string, text []byte, rollback bool) error {
	t.Helper()
	file := filepath.Join(t.TempDir(), "generated.yaml")
	if err := os.WriteFile(file, text, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := operations.ParseFile(file)
	if err != nil {
		return err
	}
	e, err := phases.Open(ctx, phases.Config{URL: url, LockRetryDeadline: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close(ctx) }()
	if _, err := e.Start(ctx, m); err != nil {
		return err
	}
	if rollback {
		if _, err := e.Rollback(ctx); err != nil {
			t.Errorf("rollback: %v", err)
		}
		return nil
	}
	_, err = e.Complete(ctx)
	return err
}

// emptyDB drops every schema of a database but PostgreSQL's own, and
// creates public again, as a new database has it.
func emptyDB(t *testing.T, url string) {
	t.Helper()
	conn := pgtest.Connect(t, url)
	for _, s := range pgtest.QueryStrings(t, conn, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'") {
		pgtest.Exec(t, conn, "DROP SCHEMA "+pg.Ident(s)+" CASCADE")
	}
	pgtest.Exec(t, conn, "CREATE SCHEMA public")
	_ = conn.Close(context.Background())
}
