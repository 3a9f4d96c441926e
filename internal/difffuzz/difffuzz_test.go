package difffuzz_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/difffuzz"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// TestDifferential runs generated migrations through online and holds the
// result to three oracles (see the package comment). It runs seeds 1, 2,
// ... for ONLINE_FUZZ_TIME (default 60s; CI runs the default), or exactly
// the seeds of ONLINE_FUZZ_SEEDS (comma-separated), which is how a failure
// is replayed. ONLINE_FUZZ_FIRST moves the first seed, so a long run can
// cover new ground. Each failure prints its seed, the migration file and
// what differs.
func TestDifferential(t *testing.T) {
	pgroll := pgrollPath(t)
	var seeds []uint64
	budget := 60 * time.Second
	if v := os.Getenv("ONLINE_FUZZ_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ONLINE_FUZZ_TIME: %v", err)
		}
		budget = d
	}
	if v := os.Getenv("ONLINE_FUZZ_SEEDS"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("ONLINE_FUZZ_SEEDS: %v", err)
			}
			seeds = append(seeds, n)
		}
	}
	first := uint64(1)
	if v := os.Getenv("ONLINE_FUZZ_FIRST"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ONLINE_FUZZ_FIRST: %v", err)
		}
		first = n
	}
	// One database for the whole run, a schema per oracle and case:
	// creating and dropping databases costs a checkpoint each.
	url := pgtest.NewDB(t)
	var tally tally
	began := time.Now()
	for i := 0; ; i++ {
		var seed uint64
		if seeds != nil {
			if i >= len(seeds) {
				break
			}
			seed = seeds[i]
		} else {
			if time.Since(began) > budget {
				break
			}
			seed = first + uint64(i)
		}
		m := difffuzz.Generate(seed)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			tally.add(runCase(t, url, specOf(m), pgroll), len(m.Ops))
		})
	}
	t.Logf("difffuzz: %d generated migrations (%d operations) in %s: %d gave the schema of pgroll and of PostgreSQL, %d PostgreSQL's where pgroll builds another, %d PostgreSQL's where pgroll fails, %d failed",
		tally.cases, tally.ops, time.Since(began).Round(time.Second), tally.same, tally.pgrollDiffers, tally.pgrollFailed, tally.failed)
	if tally.cases == 0 {
		t.Fatal("no migration ran")
	}
}

type outcome int

const (
	same outcome = iota
	pgrollFailed
	pgrollDiffers
	failed
)

type tally struct{ cases, ops, same, pgrollFailed, pgrollDiffers, failed int }

func (t *tally) add(o outcome, ops int) {
	t.cases++
	t.ops += ops
	switch o {
	case same:
		t.same++
	case pgrollFailed:
		t.pgrollFailed++
	case pgrollDiffers:
		t.pgrollDiffers++
	default:
		t.failed++
	}
}

// pgrollPath finds the pgroll binary: ONLINE_PGROLL, or the shared tools
// folder beside the repository. Without it the pgroll oracle is skipped and
// the other two still run.
func pgrollPath(t *testing.T) string {
	if p := os.Getenv("ONLINE_PGROLL"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../../shared/tools/pgroll")
	if err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Log("pgroll oracle skipped: no pgroll binary at ../shared/tools/pgroll (set ONLINE_PGROLL); the PostgreSQL and data oracles still run")
	return ""
}

// runCase checks one migration in schemas of its own of the database at
// url: p<seed> for the plain DDL, o<seed> for online, g<seed> for pgroll. A
// failure reports the seed, the file and each difference.
// spec is one case: a base schema, a migration file, the plain statements
// that make the same change, the writes through the old and the new
// version, and the tables whose rows are compared after complete.
type spec struct {
	Seed                 uint64 // names the case's schemas
	kinds                string
	Base, Plain          []string
	file                 []byte
	yaml                 bool // file is YAML (else JSON)
	oldWrites, newWrites []string
	tables               []string
}

func (s spec) Kinds() string { return s.kinds }

func specOf(m *difffuzz.Migration) spec {
	return spec{Seed: m.Seed, kinds: m.Kinds(), Base: m.Base, Plain: m.Plain(), file: m.File(),
		oldWrites: oldWrites(m), newWrites: newWrites(m), tables: m.New.TableNames()}
}

func runCase(t *testing.T, url string, m spec, pgroll string) (out outcome) {
	ctx := context.Background()
	file := m.file
	began := time.Now()
	defer func() {
		t.Logf("seed %d: %d operations in %s", m.Seed, strings.Count(m.kinds, ",")+1, time.Since(began).Round(time.Millisecond))
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		out = failed
		t.Errorf("seed %d (%s): %s\nbase:\n  %s\nmigration file:\n%s", m.Seed, m.Kinds(), fmt.Sprintf(format, args...), strings.Join(m.Base, ";\n  "), file)
	}
	ps, os_ := fmt.Sprintf("p%d", m.Seed), fmt.Sprintf("o%d", m.Seed)
	admin := pgtest.Connect(t, url)
	t.Cleanup(func() { dropSchemas(t, admin, m.Seed) })
	dropSchemas(t, admin, m.Seed)
	pgtest.Exec(t, admin, "CREATE SCHEMA "+ps, "CREATE SCHEMA "+os_)

	// Oracle 2: the plain statements, with the old version's writes
	// before them and the new version's after.
	plain := connectVersion(t, url, ps)
	pgtest.Exec(t, plain, m.Base...)
	if err := execAll(ctx, plain, m.oldWrites); err != nil {
		t.Fatalf("seed %d: the old version's writes fail on the plain schema (a generator bug): %v", m.Seed, err)
	}
	if err := execTx(ctx, plain, m.Plain); err != nil {
		t.Fatalf("seed %d: the plain DDL fails (a generator bug): %v\n%s", m.Seed, err, strings.Join(m.Plain, ";\n"))
	}
	if err := execAll(ctx, plain, m.newWrites); err != nil {
		t.Fatalf("seed %d: the new version's writes fail on the plain schema (a generator bug): %v", m.Seed, err)
	}

	// online: start, rollback (the schema as before), start again with
	// writes through both versions, complete.
	db := connectVersion(t, url, os_)
	pgtest.Exec(t, db, m.Base...)
	before := pgtest.DumpSchema(t, url, os_)
	name := "m.json"
	if m.yaml {
		name = "m.yaml"
	}
	mig, err := operations.Parse(name, file)
	if err != nil {
		fail("parse: %v", err)
		return
	}
	run := func(what string, f func(*phases.Engine) (*phases.Result, error)) error {
		eng, err := phases.Open(ctx, phases.Config{URL: url, Schema: os_, StateSchema: "online_" + os_, LockTimeout: 500 * time.Millisecond, LockRetryDeadline: 20 * time.Second})
		if err != nil {
			return err
		}
		defer eng.Close(ctx)
		_, err = f(eng)
		if err != nil {
			return fmt.Errorf("%s: %s", what, pg.Explain(err))
		}
		return nil
	}
	// Oracle 1: pgroll.
	var pgrollCat string
	var pgrollOK bool
	if pgroll != "" {
		pgrollCat, pgrollOK = runPgroll(t, url, admin, m, pgroll, name)
	}
	start := func(e *phases.Engine) (*phases.Result, error) { return e.Start(ctx, mig) }
	if err := run("start", start); err != nil {
		var oe *operations.Error
		switch {
		case errors.As(err, &oe) && pgroll != "" && !pgrollOK:
			// Refused before any change, and pgroll cannot run it either.
			t.Logf("seed %d: refused by online and by pgroll: %v", m.Seed, err)
			return pgrollFailed
		case errors.As(err, &oe):
			fail("online refused the migration: %v", err)
		default:
			fail("%v", err)
		}
		return
	}
	if err := run("rollback", func(e *phases.Engine) (*phases.Result, error) { return e.Rollback(ctx) }); err != nil {
		fail("%v", err)
		return
	}
	if after := pgtest.DumpSchema(t, url, os_); after != before {
		fail("after rollback, pg_dump --schema-only differs from before start:\n%s", lineDiff(before, after))
	}
	if err := run("start again", start); err != nil {
		fail("%v", err)
		return
	}
	oldConn := connectVersion(t, url, os_)
	if err := execAll(ctx, oldConn, m.oldWrites); err != nil {
		fail("a write through the old version: %v", err)
	}
	newConn := connectVersion(t, url, operations.VersionSchemaName(os_, "m"))
	if err := execAll(ctx, newConn, m.newWrites); err != nil {
		fail("a write through the new version: %v", err)
	}
	if err := run("complete", func(e *phases.Engine) (*phases.Result, error) { return e.Complete(ctx) }); err != nil {
		fail("%v", err)
		return
	}
	got := catalog(t, admin, os_)
	if want := catalog(t, admin, ps); got != want {
		fail("after complete, the catalog differs from the plain DDL's (- plain, + online):\n%s", lineDiff(want, got))
	}
	for _, name := range m.tables {
		q := "SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), '[]')::text FROM %s AS x"
		w := pgtest.QueryStrings(t, admin, fmt.Sprintf(q, pg.Ident(ps, name)))
		g := pgtest.QueryStrings(t, admin, fmt.Sprintf(q, pg.Ident(os_, name)))
		if strings.Join(w, "") != strings.Join(g, "") {
			fail("after complete, the rows of %s differ:\n  plain:  %s\n  online: %s", name, w, g)
		}
	}

	if pgrollOK && got != pgrollCat && out == same {
		// online and PostgreSQL agree; pgroll builds something else (see
		// the README's list of where pgroll differs from its own
		// operations' meaning).
		out = pgrollDiffers
		t.Logf("seed %d (%s): pgroll's schema differs from PostgreSQL's and online's (- pgroll, + online):\n%s", m.Seed, m.Kinds(), lineDiff(pgrollCat, got))
	} else if pgroll != "" && !pgrollOK && out == same {
		out = pgrollFailed
	}
	return out
}

// runPgroll runs the migration with pgroll in schema g<seed> (its state in
// pr_g<seed>) and returns the catalog it leaves, less its own leftovers;
// ok is false when pgroll fails.
func runPgroll(t *testing.T, url string, admin *pgx.Conn, m spec, pgroll, name string) (cat string, ok bool) {
	gs := fmt.Sprintf("g%d", m.Seed)
	prURL := url + "?sslmode=disable"
	if strings.Contains(url, "?") {
		prURL = url + "&sslmode=disable"
	}
	pgrollCmd := func(args ...string) ([]byte, error) {
		args = append([]string{"--postgres-url", prURL, "--schema", gs, "--pgroll-schema", "pr_" + gs}, args...)
		return exec.Command(pgroll, args...).CombinedOutput()
	}
	pgtest.Exec(t, admin, "CREATE SCHEMA "+gs)
	if outp, err := pgrollCmd("init"); err != nil {
		t.Fatalf("pgroll init: %v\n%s", err, outp)
	}
	pr := connectVersion(t, url, gs)
	pgtest.Exec(t, pr, m.Base...)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, m.file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pgrollCmd("start", "--complete", path); err != nil {
		return "", false
	}
	return pgrollCatalog(catalog(t, admin, gs)), true
}

// dropSchemas drops every schema of the case of seed (the oracles', the
// version schemas, the state schemas).
func dropSchemas(t *testing.T, conn *pgx.Conn, seed uint64) {
	names := pgtest.QueryStrings(t, conn, `SELECT nspname FROM pg_namespace WHERE nspname ~ ('^(p|o|g|online_o|pr_g)' || $1::text || '(_|$)')`, fmt.Sprint(seed))
	for _, n := range names {
		pgtest.Exec(t, conn, "DROP SCHEMA IF EXISTS "+pg.Ident(n)+" CASCADE")
	}
}

func connectVersion(t *testing.T, url, searchPath string) *pgx.Conn {
	conn, err := pgtest.ConnectOptions(context.Background(), url, pg.Options{SearchPath: searchPath, ApplicationName: "online-difffuzz"})
	if err != nil {
		t.Fatalf("connect with search_path %s: %v", searchPath, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// oldWrites insert and update a row of every table through the old
// version; newWrites do the same through the new.
func oldWrites(m *difffuzz.Migration) []string {
	var out []string
	for _, name := range m.Old.TableNames() {
		t := m.Old.Tables[name]
		out = append(out, difffuzz.InsertSQL(t, 1000, true), difffuzz.UpdateSQL(t, 1, 1001))
	}
	return out
}

func newWrites(m *difffuzz.Migration) []string {
	var out []string
	for _, name := range m.New.TableNames() {
		t := m.New.Tables[name]
		out = append(out, difffuzz.InsertSQL(t, 2000, true))
		if !t.Created {
			out = append(out, difffuzz.UpdateSQL(t, 2, 2001))
		}
	}
	return out
}

func execAll(ctx context.Context, conn *pgx.Conn, stmts []string) error {
	for _, s := range stmts {
		if s == "" {
			continue
		}
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func execTx(ctx context.Context, conn *pgx.Conn, stmts []string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return tx.Commit(ctx)
}

// catalog is schema public as lines, sorted: every column with its type,
// NOT NULL, default and comment; every constraint with its definition (the
// NOT NULL constraints PostgreSQL 18 lists left out); every index; every
// trigger; every table's comment.
func catalog(t *testing.T, conn *pgx.Conn, schema string) string {
	rows := pgtest.QueryStrings(t, conn, `
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
       || coalesce(' COMMENT ' || col_description(c.oid, a.attnum), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND k.contype <> 'n'
UNION ALL
SELECT 'index ' || coalesce(
         -- A partition's index attached to its table's index: PostgreSQL
         -- names it, and nothing refers to it by name.
         (SELECT regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX \S+ ON', 'CREATE \1INDEX (of ' || p.relname || ') ON')
          FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent WHERE h.inhrelid = i.indexrelid),
         pg_get_indexdef(i.indexrelid))
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1
UNION ALL
SELECT 'trigger ' || c.relname || '.' || tg.tgname
FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND NOT tg.tgisinternal
UNION ALL
SELECT 'table ' || c.relname || coalesce(' COMMENT ' || obj_description(c.oid, 'pg_class'), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY 1`, schema)
	// Definitions name the schema where it is not on the search_path. A
	// text literal's default reads '..'::text after PostgreSQL changed
	// the column's type and '..'::character varying where online set it
	// again on the new column: the same value.
	for i, r := range rows {
		r = strings.ReplaceAll(r, schema+".", "")
		rows[i] = strings.ReplaceAll(r, "'::character varying", "'::text")
	}
	return strings.Join(rows, "\n")
}

// pgrollCatalog leaves out what pgroll itself leaves behind and online does
// not build: columns, constraints and triggers named _pgroll_ (the
// README's compatibility section lists them).
func pgrollCatalog(cat string) string {
	var keep []string
	for _, l := range strings.Split(cat, "\n") {
		if !strings.Contains(l, "_pgroll_") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if mb[l] == 0 {
			out = append(out, "  - "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if ma[l] == 0 {
			out = append(out, "  + "+l)
		}
	}
	return strings.Join(out, "\n")
}
