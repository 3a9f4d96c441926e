package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
)

// tinyConfig is the smallest run that still goes through every phase:
// 100,000 accounts, two clients per application, a second per phase.
func tinyConfig(t *testing.T, workload string, out *bytes.Buffer) Config {
	return Config{
		URL:      pgtest.ServerURL(),
		Scale:    1,
		Clients:  2,
		Duration: time.Second,
		Workload: workload,
		TempDir:  t.TempDir(),
		Log:      zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Out:      out,
	}
}

// databaseExists asks the test server whether a database is still there.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	conn := pgtest.Connect(t, pgtest.ServerURL())
	var ok bool
	if err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// checkReport asserts what every passing run must show: no failed
// transaction, every check passed, every phase run, the data gone. Timings
// are not asserted: the machine may be busy with anything.
func checkReport(t *testing.T, rep *Report, err error, out string) {
	t.Helper()
	if rep != nil {
		var text bytes.Buffer
		_ = rep.WriteText(&text)
		t.Logf("running account:\n%s\nreport:%s", out, text.String())
	}
	if err != nil {
		t.Fatalf("Live: %v", err)
	}
	if !rep.Passed || rep.Failed != 0 {
		t.Errorf("passed %t with %d failed transactions (%v)", rep.Passed, rep.Failed, rep.Errors)
	}
	if len(rep.Checks) < 10 {
		t.Errorf("only %d checks ran", len(rep.Checks))
	}
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("check %s failed: %s", c.Name, c.Detail)
		}
	}
	for _, want := range []struct{ phase, app string }{
		{"before migration", "old"}, {"start", "old"}, {"start: backfill", "old"},
		{"both versions", "old"}, {"both versions", "new"}, {"after complete", "new"},
	} {
		p, ok := rep.phase(want.phase, want.app)
		if !ok {
			t.Errorf("no phase %q of the %s app", want.phase, want.app)
			continue
		}
		if want.phase != "start: backfill" && p.Transactions == 0 {
			t.Errorf("phase %q of the %s app ran no transaction", want.phase, want.app)
		}
		if p.Failed != 0 {
			t.Errorf("phase %q of the %s app: %d failed", want.phase, want.app, p.Failed)
		}
	}
	if rep.OldVersion != "public" || rep.NewVersion != "public_pgbench_v2" {
		t.Errorf("versions %q and %q", rep.OldVersion, rep.NewVersion)
	}
	if !strings.HasPrefix(rep.Database, dbPrefix) || databaseExists(t, rep.Database) {
		t.Errorf("database %q: not a scratch name, or still there", rep.Database)
	}
	if c := rep.Comparison; c != nil {
		if len(c.Phases) == 0 || c.AlterElapsed <= 0 {
			t.Errorf("comparison: %d phases, alter took %s", len(c.Phases), c.AlterElapsed.D())
		}
		for _, x := range c.Checks {
			if !x.OK {
				t.Errorf("comparison check %s failed: %s", x.Name, x.Detail)
			}
		}
		if databaseExists(t, c.Database) {
			t.Errorf("comparison database %s is still there", c.Database)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("marshal the report: %v", err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal the report: %v\n%s", err, b)
	}
	if len(back.Phases) != len(rep.Phases) || back.Phases[0].Name != rep.Phases[0].Name || back.Phases[0].Transactions != rep.Phases[0].Transactions {
		t.Errorf("the JSON does not carry the phases: %s", b)
	}
}

func TestLive(t *testing.T) {
	for _, workload := range []string{WorkloadPgbench, WorkloadGo} {
		t.Run(workload, func(t *testing.T) {
			t.Parallel()
			if workload == WorkloadPgbench {
				if _, err := findPgbench(context.Background(), ""); err != nil {
					t.Skipf("pgbench is not installed: %v", err)
				}
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cfg := tinyConfig(t, workload, &out)
			// One comparison is enough to exercise it.
			cfg.NoComparison = workload == WorkloadGo
			rep, err := Live(ctx, cfg)
			checkReport(t, rep, err, out.String())
			if rep != nil && rep.Workload != workload {
				t.Errorf("ran workload %q, want %q", rep.Workload, workload)
			}
		})
	}
}

// Interrupted in the middle of the backfill, the run must stop its
// workloads and drop its database, and say it was interrupted.
func TestLiveInterrupted(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := tinyConfig(t, WorkloadGo, &out)
	cfg.Duration = 300 * time.Millisecond
	cfg.hook = func(m string) {
		if m == "backfilling" {
			cancel()
		}
	}
	rep, err := Live(ctx, cfg)
	t.Logf("running account:\n%s", out.String())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Live = %v, want context.Canceled", err)
	}
	if rep == nil || rep.Database == "" {
		t.Fatalf("no database in the report: %+v", rep)
	}
	if databaseExists(t, rep.Database) {
		t.Errorf("database %s is still there", rep.Database)
	}
}

func TestLiveMissingPgbench(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig(t, WorkloadPgbench, &bytes.Buffer{})
	cfg.Pgbench = "/nonexistent/pgbench"
	_, err := Live(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--workload pgbench") {
		t.Errorf("Live = %v, want an error about the missing pgbench", err)
	}
}

// Each workload must run through the version it is given: through a schema
// of views whose name needs quoting (and, for pgbench, escaping in
// PGOPTIONS), and not at all through a schema that does not exist.
func TestSearchPath(t *testing.T) {
	drivers := []driver{goDriver{}}
	if d, err := findPgbench(context.Background(), ""); err == nil {
		d.tmpDir = t.TempDir()
		drivers = append(drivers, d)
	} else {
		t.Logf("pgbench is not installed (%v): testing the Go workload only", err)
	}
	dbURL := pgtest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := (goDriver{}).initialize(ctx, dbURL, 1); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, dbURL)
	const version = `v 2\"x`
	stmts := []string{"CREATE SCHEMA " + pg.Ident(version)}
	for _, name := range []string{accounts, tellers, branches, history} {
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM %s", pg.Ident(version, name), pg.Ident(schemaName, name)))
	}
	pgtest.Exec(t, conn, stmts...)
	var dbName string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	for _, d := range drivers {
		t.Run(d.name(), func(t *testing.T) {
			spec := loadSpec{app: "new", dbURL: dbURL, dbName: dbName, version: version, clients: 2, scale: 1}
			histQ := "SELECT count(*) FROM " + pg.Ident(schemaName, history)
			var n0 int64
			if err := conn.QueryRow(ctx, histQ).Scan(&n0); err != nil {
				t.Fatal(err)
			}
			l, err := d.start(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			// Until the clients have committed something, however slowly
			// a loaded machine starts them (pgbench counts the branches
			// first): a fixed second was sometimes not enough.
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				var n int64
				if err := conn.QueryRow(ctx, histQ).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n > n0 {
					break
				}
			}
			time.Sleep(200 * time.Millisecond)
			s, err := l.stop(ctx)
			if err != nil {
				t.Fatalf("through %q: %v", version, err)
			}
			if s.Committed == 0 || failures(s) != 0 {
				t.Errorf("through %q: %d committed, %d failed (%v)", version, s.Committed, failures(s), s.Errors)
			}

			spec.version = "no such version"
			l, err = d.start(ctx, spec)
			if err == nil {
				time.Sleep(500 * time.Millisecond)
				s, err = l.stop(ctx)
				if err == nil && failures(s) == 0 {
					t.Errorf("through a missing schema: %d committed and no failure", s.Committed)
				}
			}
			t.Logf("through a missing schema: %v", err)
		})
	}
}
