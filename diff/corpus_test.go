package diff_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onlinepg/online/diff"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// pair is one case of the corpus: a database holding old, a desired file
// new, and what diff must make of it. exact: the migration it writes takes
// old to new, catalog for catalog. said: it cannot, and says so (every
// difference that remains is listed). Neither may be silently wrong.
type pair struct {
	name, old, new string
	exact          bool
}

// corpus covers each kind of difference a schema file can hold: the ones
// diff expresses, and the ones it must say it does not.
var corpus = []pair{
	// Tables and columns.
	{"add nullable column", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY, note text);`, true},
	{"add not null column with default", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 7);`, true},
	{"drop column", `CREATE TABLE t (id int PRIMARY KEY, gone text);`, `CREATE TABLE t (id int PRIMARY KEY);`, true},
	{"type int to bigint", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n bigint);`, true},
	{"set not null", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL);`, true},
	{"drop not null", `CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL);`, `CREATE TABLE t (id int PRIMARY KEY, n int);`, true},
	{"default changed", `CREATE TABLE t (id int PRIMARY KEY, s text DEFAULT 'a');`, `CREATE TABLE t (id int PRIMARY KEY, s text DEFAULT 'b');`, true},
	{"new table with foreign key", `CREATE TABLE a (id int PRIMARY KEY);`, `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a(id) ON DELETE CASCADE);`, true},
	{"drop table", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int);`, `CREATE TABLE a (id int PRIMARY KEY);`, true},
	{"table comment", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY); COMMENT ON TABLE t IS 'things';`, false},
	{"column comment", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int); COMMENT ON COLUMN t.n IS 'count';`, true},
	{"column dropped and added", `CREATE TABLE t (id int PRIMARY KEY, a text);`, `CREATE TABLE t (id int PRIMARY KEY, b text);`, true},

	// Indexes and constraints.
	{"add index", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE INDEX t_n ON t (n DESC) WHERE n > 0;`, true},
	{"drop index", `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE INDEX t_n ON t (n);`, `CREATE TABLE t (id int PRIMARY KEY, n int);`, true},
	{"add unique", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int CONSTRAINT t_n_key UNIQUE);`, true},
	{"add check", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int CONSTRAINT n_pos CHECK (n > 0));`, true},
	{"add foreign key", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int);`, `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int CONSTRAINT b_a_fk REFERENCES a(id));`, true},
	{"plain drop of a unique constraint", `CREATE TABLE t (id int PRIMARY KEY, n int CONSTRAINT t_n_key UNIQUE);`, `CREATE TABLE t (id int PRIMARY KEY, n int);`, true},
	{"foreign key not valid", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int);`,
		`CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int); ALTER TABLE b ADD CONSTRAINT b_a_fk FOREIGN KEY (a_id) REFERENCES a(id) NOT VALID;`, true},
	{"check named like its table", `CREATE TABLE t (id int PRIMARY KEY, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int, CONSTRAINT t CHECK (n > 0));`, true},
	{"new primary key over a nullable column", `CREATE TABLE t (id int, n int);`, `CREATE TABLE t (id int PRIMARY KEY, n int);`, false},
	{"dropped primary key column", `CREATE TABLE t (id int PRIMARY KEY, code text NOT NULL);`, `CREATE TABLE t (code text NOT NULL);`, false},

	// Enums and other types.
	{"new enum and a column of it", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TYPE mood AS ENUM ('a', 'b'); CREATE TABLE t (id int PRIMARY KEY, m mood);`, true},
	{"enum label added", `CREATE TYPE mood AS ENUM ('a', 'b');`, `CREATE TYPE mood AS ENUM ('a', 'x', 'b');`, true},
	{"enum label dropped", `CREATE TYPE mood AS ENUM ('a', 'b');`, `CREATE TYPE mood AS ENUM ('a');`, false},
	{"new enum label as a default", `CREATE TYPE mood AS ENUM ('a'); CREATE TABLE t (id int PRIMARY KEY, m mood);`,
		`CREATE TYPE mood AS ENUM ('a', 'b'); CREATE TABLE t (id int PRIMARY KEY, m mood DEFAULT 'b');`, false},
	{"new domain", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE DOMAIN posint AS int CHECK (VALUE > 0); CREATE TABLE t (id int PRIMARY KEY);`, false},

	// Schemas other than public.
	{"new schema with a table", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY); CREATE SCHEMA s1; CREATE TABLE s1.u (id int PRIMARY KEY);`, false},
	{"index in another schema", `CREATE SCHEMA s1; CREATE TABLE s1.u (id int PRIMARY KEY, n int);`, `CREATE SCHEMA s1; CREATE TABLE s1.u (id int PRIMARY KEY, n int); CREATE INDEX u_n ON s1.u (n);`, false},
	{"table moved between schemas", `CREATE SCHEMA s1; CREATE TABLE t (id int PRIMARY KEY);`, `CREATE SCHEMA s1; CREATE TABLE s1.t (id int PRIMARY KEY);`, false},
	{"schema dropped", `CREATE SCHEMA s1; CREATE TABLE s1.u (id int);`, ``, false},
	{"empty schema created", ``, `CREATE SCHEMA s2;`, false},

	// Sequences and identity.
	{"sequence increment", `CREATE SEQUENCE seq;`, `CREATE SEQUENCE seq INCREMENT 5;`, false},
	{"new sequence", ``, `CREATE SEQUENCE seq START 100;`, false},
	{"sequence owned by another table", `CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE SEQUENCE seq OWNED BY a.id;`,
		`CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE SEQUENCE seq OWNED BY b.id;`, false},
	{"identity start", `CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);`, `CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY (START WITH 1000) PRIMARY KEY);`, false},
	{"int to serial", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id serial PRIMARY KEY);`, false},
	{"serial to int", `CREATE TABLE t (id serial PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY);`, false},
	{"drop not null on identity", `CREATE TABLE t (k int PRIMARY KEY, id int GENERATED BY DEFAULT AS IDENTITY);`, `CREATE TABLE t (k int PRIMARY KEY, id int);`, false},
	{"new table with identity", ``, `CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n text);`, true},
	{"new table with serial", ``, `CREATE TABLE t (id bigserial PRIMARY KEY, n text);`, true},

	// Views and materialized views.
	{"new view", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, false},
	{"view changed", `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id FROM t;`, `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id FROM t WHERE n > 0;`, false},
	{"view security barrier", `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v WITH (security_barrier) AS SELECT id FROM t;`, false},
	{"materialized view index", `CREATE TABLE t (id int PRIMARY KEY); CREATE MATERIALIZED VIEW m AS SELECT id FROM t;`,
		`CREATE TABLE t (id int PRIMARY KEY); CREATE MATERIALIZED VIEW m AS SELECT id FROM t; CREATE INDEX m_id ON m (id);`, false},
	{"view dropped", `CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, `CREATE TABLE t (id int PRIMARY KEY);`, false},
	{"drop a column a view uses", `CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id, n FROM t;`,
		`CREATE TABLE t (id int PRIMARY KEY); CREATE VIEW v AS SELECT id FROM t;`, false},
	{"drop a table a view uses", `CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int); CREATE VIEW v AS SELECT id FROM u;`, `CREATE TABLE t (id int PRIMARY KEY);`, false},

	// Collations.
	{"add column with collation", `CREATE TABLE t (id int PRIMARY KEY);`, `CREATE TABLE t (id int PRIMARY KEY, s text COLLATE "C");`, true},
	{"new table with collation", ``, `CREATE TABLE t (id int PRIMARY KEY, s text COLLATE "C");`, true},
	{"collation changed", `CREATE TABLE t (id int PRIMARY KEY, s text);`, `CREATE TABLE t (id int PRIMARY KEY, s text COLLATE "C");`, true},

	// Partitions.
	{"index on a partitioned table", `CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');`,
		`CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01'); CREATE INDEX p_id ON p (id);`, false},
	{"a partition's own index", `CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');`,
		`CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01'); CREATE INDEX p1_id ON p1 (id);`, false},
	{"new partition", `CREATE TABLE p (id int, d date) PARTITION BY RANGE (d);`,
		`CREATE TABLE p (id int, d date) PARTITION BY RANGE (d); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');`, false},

	// Functions, triggers, policies, RLS, replica identity.
	{"new function", ``, `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';`, false},
	{"new trigger", `CREATE TABLE t (id int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';`,
		`CREATE TABLE t (id int); CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; CREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION tf();`, false},
	{"row level security", `CREATE TABLE t (id int);`, `CREATE TABLE t (id int); ALTER TABLE t ENABLE ROW LEVEL SECURITY;`, false},
	{"new policy", `CREATE TABLE t (id int);`, `CREATE TABLE t (id int); CREATE POLICY p ON t USING (id > 0);`, false},
	{"drop a column a policy uses", `CREATE TABLE t (id int, owner text); CREATE POLICY p ON t USING (owner = current_user);`,
		`CREATE TABLE t (id int);`, false},
	{"replica identity full", `CREATE TABLE t (id int);`, `CREATE TABLE t (id int); ALTER TABLE t REPLICA IDENTITY FULL;`, false},
}

// TestDiffCorpus is the promise of diff as a property: for every pair,
// the migration it writes, run through start and complete on the database
// holding the old schema, either gives exactly the desired catalog, or
// diff said (Verify) what it leaves different. Verify runs the migration
// on a copy of its own; the test runs it on the real database and checks
// that both found the same.
func TestDiffCorpus(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	counts := map[string]int{}
	t.Cleanup(func() {
		t.Logf("corpus of %d pairs: exact %d, said not expressed %d, silently wrong %d, verification unfaithful %d",
			len(corpus), counts["exact"], counts["said"], counts["silent"], counts["unfaithful"])
	})
	sem := make(chan struct{}, 4)
	for _, p := range corpus {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			sem <- struct{}{}
			defer func() { <-sem }()
			outcome := runPair(t, p)
			mu.Lock()
			counts[outcome]++
			mu.Unlock()
		})
	}
}

func runPair(t *testing.T, p pair) string {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	if p.old != "" {
		pgtest.Exec(t, conn, p.old)
	}
	want, err := diff.LoadDesired(ctx, url, "desired.sql", p.new, "public")
	if err != nil {
		t.Fatalf("load desired: %s", pg.Explain(err))
	}
	cur, err := diff.ReadURL(ctx, url, "public")
	if err != nil {
		t.Fatal(err)
	}
	res, err := diff.Compare(cur, want.Schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	text, err := res.Render("generated")
	if err != nil {
		t.Fatal(err)
	}
	v, err := diff.Verify(ctx, url, "public", "online", text, len(res.Ops), want)
	if err != nil {
		t.Fatalf("verify: %s", pg.Explain(err))
	}
	said := v.Failed != nil || len(v.Differences) > 0

	// The same migration on the real database.
	var runErr error
	if len(res.Ops) > 0 {
		runErr = run(ctx, t, url, text)
	}
	schemas, err := diff.UserSchemas(ctx, conn, "public", "online")
	if err != nil {
		t.Fatal(err)
	}
	schemas = slices.Compact(slices.Sorted(slices.Values(append(schemas, want.Schemas...))))
	got, err := diff.ReadCatalog(ctx, conn, schemas)
	if err != nil {
		t.Fatal(err)
	}
	actual := got.Differences(want.Catalog)
	// What diff says and what happened must agree; the scratch copy
	// could otherwise hide a difference.
	if (runErr != nil) != (v.Failed != nil) || !slices.Equal(actual, v.Differences) {
		t.Errorf("verification unfaithful:\nreal run: %v\n%s\nverify: %v\n%s\nmigration:\n%s",
			runErr, strings.Join(actual, "\n"), v.Failed, strings.Join(v.Differences, "\n"), text)
		return "unfaithful"
	}
	switch {
	case runErr == nil && len(actual) == 0:
		if !p.exact {
			t.Logf("now exact (was expected to be said): update the corpus\n%s", text)
		}
		return "exact"
	case said:
		if p.exact {
			t.Errorf("want exact, diff said it is not:\nstart/complete: %v\n%s\nmigration:\n%s", v.Failed, strings.Join(v.Differences, "\n"), text)
		}
		return "said"
	default:
		t.Errorf("silently wrong: %v\n%s\nmigration:\n%s", runErr, strings.Join(actual, "\n"), text)
		return "silent"
	}
}

func run(ctx context.Context, t *testing.T, url string, text []byte) error {
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
	_, err = e.Complete(ctx)
	return err
}
