package rehearse_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/rehearse"
)

const liveSchema = `
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, age text);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), note text, total int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO customers (email, age) SELECT 'u' || g || '@x', (g % 90)::text FROM generate_series(1, 3000) g;
INSERT INTO orders (customer_id, note) SELECT 1 + g % 3000, 'n' || g FROM generate_series(1, 6000) g;
ANALYZE;`

const goodMigration = `
operations:
  - alter_column: { table: customers, column: age, type: integer, up: "CAST(age AS integer)", down: "CAST(age AS text)" }
  - add_column: { table: orders, column: { name: shipped, type: boolean, nullable: true } }
  - create_index: { table: orders, name: orders_note_idx, columns: [note] }
`

// baseline is what must not change on the live database.
type baseline struct{ dump, data, schemas string }

func snapshot(t *testing.T, url string, conn *pgx.Conn) baseline {
	t.Helper()
	var b baseline
	b.dump = pgtest.DumpSchema(t, url, "public")
	for _, table := range []string{"customers", "orders"} {
		var d string
		if err := conn.QueryRow(context.Background(), fmt.Sprintf("SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM %s t", pg.Ident("public", table))).Scan(&d); err != nil {
			t.Fatal(err)
		}
		b.data += table + ":" + d + " "
	}
	b.schemas = strings.Join(pgtest.QueryStrings(t, conn, "SELECT nspname FROM pg_namespace ORDER BY 1"), ",")
	return b
}

// left lists the databases of a rehearsal still on the server.
func left(t *testing.T, conn *pgx.Conn, prefix string) []string {
	t.Helper()
	return pgtest.QueryStrings(t, conn, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)
}

type fixture struct {
	url    string
	conn   *pgx.Conn
	before baseline
}

func newFixture(t *testing.T, setup string) *fixture {
	t.Helper()
	f := &fixture{url: pgtest.NewDB(t)}
	f.conn = pgtest.Connect(t, f.url)
	pgtest.Exec(t, f.conn, setup)
	f.before = snapshot(t, f.url, f.conn)
	return f
}

// run rehearses the migrations and checks that the live database is
// unchanged and no copy is left.
func (f *fixture) run(t *testing.T, sample rehearse.Sample, files ...string) *rehearse.Report {
	t.Helper()
	return f.runOn(t, "", sample, files...)
}

// runOn makes the copies on the server of target ("" the live one).
func (f *fixture) runOn(t *testing.T, target string, sample rehearse.Sample, files ...string) *rehearse.Report {
	t.Helper()
	var migs []rehearse.Migration
	for i, body := range files {
		name := fmt.Sprintf("%02d_m.yaml", i+1)
		m, err := operations.Parse(name, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		migs = append(migs, rehearse.Migration{File: name, Migration: m})
	}
	rep, err := rehearse.Run(context.Background(), rehearse.Options{SourceURL: f.url, TargetURL: target, Sample: sample, LockRetryDeadline: 20 * time.Second}, migs)
	if err != nil {
		t.Fatalf("rehearse: %s", pg.Explain(err))
	}
	after := snapshot(t, f.url, f.conn)
	if after != f.before {
		t.Fatalf("the live database changed:\nbefore %+v\nafter  %+v", f.before, after)
	}
	if !strings.HasPrefix(rep.Copies, rehearse.Prefix) {
		t.Fatalf("copies named %q", rep.Copies)
	}
	if n := left(t, f.conn, rep.Copies); len(n) != 0 {
		t.Fatalf("rehearsal databases left behind: %v", n)
	}
	return rep
}

func TestRehearseGoodMigration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, liveSchema)
	rep := f.run(t, rehearse.Sample{}, goodMigration)
	if !rep.Success || len(rep.Failures) != 0 {
		t.Fatalf("want success, got failures %+v\n%s", rep.Failures, rep)
	}
	copied := map[string]int64{}
	for _, tc := range rep.Tables {
		copied[tc.Table] = tc.Copied
	}
	if copied["customers"] != 3000 || copied["orders"] != 6000 {
		t.Fatalf("copied %v, want every row", copied)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].Ending != "complete" || rep.Runs[1].Ending != "rollback" {
		t.Fatalf("want a rehearsal ending with complete and one with rollback, got %+v", rep.Runs)
	}
	for _, reh := range rep.Runs {
		if len(reh.Migrations) != 1 || !reh.Migrations[0].OK {
			t.Fatalf("%s: migration not ok: %+v", reh.Ending, reh.Migrations)
		}
		m := reh.Migrations[0]
		if len(m.Phases) != 2 || m.Phases[0].Name != "start" || m.Phases[1].Name != reh.Ending {
			t.Fatalf("%s: phases %+v", reh.Ending, m.Phases)
		}
		// Every customer row was rewritten by the backfill.
		if m.BackfillRows != 3000 || m.BackfillRate <= 0 {
			t.Fatalf("%s: backfill %d rows at %.0f rows/s, want 3000", reh.Ending, m.BackfillRows, m.BackfillRate)
		}
		versions := map[string]int{}
		for _, w := range m.Writes {
			if w.Result == "failed" {
				t.Fatalf("%s: write failed: %+v", reh.Ending, w)
			}
			if w.Result == "ok" {
				versions[w.Version]++
			}
		}
		if versions["public"] == 0 || versions["public_01_m"] == 0 {
			t.Fatalf("%s: want writes through both versions, got %v", reh.Ending, versions)
		}
		if reh.Probes == 0 {
			t.Fatalf("%s: the probe never ran", reh.Ending)
		}
		grew := false
		for _, g := range reh.Growth {
			if g.Table == "customers" && g.After > g.Before {
				grew = true
			}
		}
		if !grew {
			t.Fatalf("%s: customers got a new column and a backfill, yet did not grow: %+v", reh.Ending, reh.Growth)
		}
	}
	if !strings.Contains(rep.String(), "WOULD SUCCEED") {
		t.Fatalf("report:\n%s", rep)
	}
}

func TestRehearseFailingMigration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, liveSchema+"UPDATE customers SET age = 'abc' WHERE id = 2500;")
	rep := f.run(t, rehearse.Sample{}, goodMigration)
	if rep.Success {
		t.Fatalf("a cast of 'abc' to integer must fail:\n%s", rep)
	}
	if len(rep.Failures) != 1 {
		t.Fatalf("want one failure, got %+v", rep.Failures)
	}
	fl := rep.Failures[0]
	if fl.File != "01_m.yaml" || fl.Phase != "start" || fl.Op != 1 || fl.Kind != "alter_column" || fl.Field != "up" || !strings.Contains(fl.Message, "22P02") {
		t.Fatalf("the failure should name the file, operation 1 (alter_column), field up and the error: %+v", fl)
	}
	if rep.Runs[1].Skipped == "" {
		t.Fatalf("the rollback rehearsal should be skipped after start failed: %+v", rep.Runs[1])
	}
	if !strings.Contains(rep.String(), `01_m.yaml: operation 1 (alter_column): field "up"`) {
		t.Fatalf("report:\n%s", rep)
	}

	// An operation that does not fit the schema fails at start too, with
	// its operation and field.
	rep = f.run(t, rehearse.Sample{}, "operations:\n  - drop_column: { table: customers, column: nope }\n")
	if rep.Success || len(rep.Failures) != 1 || rep.Failures[0].Op != 1 || rep.Failures[0].Field != "column" {
		t.Fatalf("want a failure of operation 1, field column: %+v", rep.Failures)
	}
}

func TestRehearseSample(t *testing.T) {
	t.Parallel()
	f := newFixture(t, liveSchema)
	// Two migrations, the second written for the schema the first makes.
	// The copies go to the server of another database, as to a staging
	// server.
	staging := pgtest.NewDB(t)
	rep := f.runOn(t, staging, rehearse.Sample{Rows: 100}, goodMigration,
		"operations:\n  - alter_column: { table: orders, column: shipped, default: \"false\" }\n")
	if !rep.Success {
		t.Fatalf("want success:\n%s", rep)
	}
	if !strings.Contains(rep.Target, strings.TrimPrefix(staging[strings.LastIndex(staging, "/"):], "/")) {
		t.Fatalf("target %s, want %s", rep.Target, staging)
	}
	for _, tc := range rep.Tables {
		if tc.Copied > 100 || tc.Copied+tc.Dropped > 100 {
			t.Fatalf("%s: copied %d (+%d dropped), want at most 100", tc.Table, tc.Copied, tc.Dropped)
		}
	}
	// orders rows whose customer was not sampled are dropped, so that
	// the foreign key holds on the copy: the first 100 orders reference
	// customers 2 to 101, and customer 101 is not in the sample.
	for _, tc := range rep.Tables {
		if tc.Table == "orders" && tc.Dropped == 0 {
			t.Fatalf("orders: want orphaned sampled rows dropped, got %+v", tc)
		}
	}
	if rep.Scale < 10 {
		t.Fatalf("scale %.1f: 9000 live rows over at most 200 copied", rep.Scale)
	}
	for _, reh := range rep.Runs {
		if len(reh.Migrations) != 2 || !reh.Migrations[1].OK {
			t.Fatalf("%s: both migrations should run: %+v", reh.Ending, reh.Migrations)
		}
		if p := reh.Migrations[0].Phases[0]; p.Scaled < p.Took*10 {
			t.Fatalf("start took %s, scaled %s: want it scaled to the live size", p.Took, p.Scaled)
		}
	}
}

// TestRehearseCancelled: Ctrl-C in the middle of a rehearsal drops the
// copies, and the live database is untouched.
func TestRehearseCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, liveSchema)
	m, err := operations.Parse("slow.yaml", []byte("operations:\n  - sql: { up: \"SELECT pg_sleep(60)\" }\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id := "cancel" + strings.ToLower(fmt.Sprint(time.Now().UnixNano()%1e9))
	prefix := rehearse.Prefix + id + "_"
	go func() {
		// Cancel once the first copy is in the sleeping start.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var n int
			_ = f.conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE starts_with(datname, $1) AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()", prefix).Scan(&n)
			if n > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	began := time.Now()
	_, err = rehearse.RunWithID(ctx, rehearse.Options{SourceURL: f.url}, []rehearse.Migration{{File: "slow.yaml", Migration: m}}, id)
	if err == nil {
		t.Fatal("a cancelled rehearsal must return an error")
	}
	if time.Since(began) > 45*time.Second {
		t.Fatalf("the cancel took %s", time.Since(began))
	}
	if n := left(t, f.conn, prefix); len(n) != 0 {
		t.Fatalf("databases left after a cancel: %v", n)
	}
	if after := snapshot(t, f.url, f.conn); after != f.before {
		t.Fatal("the live database changed")
	}
}

// TestRehearseRefusesMigrationInProgress: with a migration in progress on
// the live database, its triggers and views would not come with the copy.
func TestRehearseRefusesMigrationInProgress(t *testing.T) {
	t.Parallel()
	f := newFixture(t, liveSchema)
	m, err := operations.Parse("01_m.yaml", []byte(goodMigration))
	if err != nil {
		t.Fatal(err)
	}
	e, err := phases.Open(context.Background(), phases.Config{URL: f.url})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if _, err := e.Start(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("inprogress%d", time.Now().UnixNano()%1e9)
	_, err = rehearse.RunWithID(context.Background(), rehearse.Options{SourceURL: f.url}, []rehearse.Migration{{File: "01_m.yaml", Migration: m}}, id)
	if err == nil || !strings.Contains(err.Error(), "a migration is in progress") {
		t.Fatalf("want a refusal, got %v", err)
	}
	if n := left(t, f.conn, rehearse.Prefix+id+"_"); len(n) != 0 {
		t.Fatalf("databases left: %v", n)
	}
}

// TestRehearseMeasuresWaits: a migration that holds an exclusive lock for a
// second shows in the report as that lock and as a probe wait of about a
// second.
func TestRehearseMeasuresWaits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, liveSchema)
	rep := f.run(t, rehearse.Sample{Rows: 50}, "operations:\n  - sql: { up: \"LOCK TABLE customers IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1)\", down: \"SELECT 1\" }\n")
	if !rep.Success {
		t.Fatalf("want success:\n%s", rep)
	}
	for _, reh := range rep.Runs {
		if reh.LongestWait < 700*time.Millisecond || reh.LongestWaitOn != "customers" {
			t.Fatalf("%s: longest wait %s on %q, want about 1s on customers", reh.Ending, reh.LongestWait, reh.LongestWaitOn)
		}
		found := false
		for _, l := range reh.Migrations[0].Locks {
			if l.Relation == "public.customers" && l.Mode == "AccessExclusiveLock" {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: locks %+v lack ACCESS EXCLUSIVE on customers", reh.Ending, reh.Migrations[0].Locks)
		}
	}
}
