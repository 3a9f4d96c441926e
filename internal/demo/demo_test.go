package demo

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

func testConfig(t *testing.T, out *bytes.Buffer) Config {
	return Config{
		Engine:   phases.Config{URL: pgtest.ServerURL(), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)},
		Rows:     2000,
		Duration: 500 * time.Millisecond,
		Clients:  2,
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

func TestRun(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, testConfig(t, &out))
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Errors() != 0 {
		t.Errorf("Errors() = %d, want 0", rep.Errors())
	}
	for name, s := range map[string]Stats{"old": rep.Old, "new": rep.New} {
		if s.Queries == 0 || s.Reads == 0 || s.Inserts == 0 || s.Updates == 0 {
			t.Errorf("%s app did not run every kind of query: %+v", name, s)
		}
		if s.Queries != s.Reads+s.Inserts+s.Updates+s.Errors {
			t.Errorf("%s app: %d queries but %d reads + %d inserts + %d updates + %d errors", name, s.Queries, s.Reads, s.Inserts, s.Updates, s.Errors)
		}
		if s.PerSecond() <= 0 {
			t.Errorf("%s app: %v queries/s", name, s.PerSecond())
		}
	}
	if rep.OldVersion != "public" || rep.NewVersion != "public_demo_rename_email" {
		t.Errorf("versions %q and %q, want public and public_demo_rename_email", rep.OldVersion, rep.NewVersion)
	}
	if rep.Start <= 0 || rep.Complete <= 0 {
		t.Errorf("start took %s and complete %s", rep.Start, rep.Complete)
	}
	if !strings.HasPrefix(rep.Database, dbPrefix) {
		t.Errorf("database %q does not start with %q", rep.Database, dbPrefix)
	}
	if databaseExists(t, rep.Database) {
		t.Errorf("database %s is still there", rep.Database)
	}
	if rep.Throwaway {
		t.Errorf("used a throwaway server although the test server is up")
	}
	text := out.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if last := lines[len(lines)-1]; last != "demo passed: 0 errors" {
		t.Errorf("last line %q, want the verdict", last)
	}
	for _, want := range []string{"the old version sees the write made through the new one", "counted", ": ok"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// Interrupted right after start, with the database kept, the demo must
// leave it as it was before the migration: rolled back, not half done.
func TestRunInterruptedAfterStart(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testConfig(t, &out)
	cfg.Keep = true
	cfg.hook = func(m string) {
		if m == "started" {
			cancel()
		}
	}
	rep, err := Run(ctx, cfg)
	t.Logf("report:\n%s", out.String())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if rep == nil || rep.Database == "" {
		t.Fatalf("no database in the report: %+v", rep)
	}
	t.Cleanup(func() {
		conn := pgtest.Connect(t, pgtest.ServerURL())
		pgtest.Exec(t, conn, "DROP DATABASE IF EXISTS "+pg.Ident(rep.Database)+" WITH (FORCE)")
	})
	if !strings.Contains(out.String(), "rolled back") {
		t.Errorf("report does not say the migration was rolled back")
	}
	if !databaseExists(t, rep.Database) {
		t.Fatalf("database %s is gone despite Keep", rep.Database)
	}
	u, err := pg.WithDatabase(pgtest.ServerURL(), rep.Database)
	if err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, u)
	got := pgtest.QueryStrings(t, conn, `SELECT
  (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'public.accounts'::regclass AND attnum > 0 AND NOT attisdropped),
  (SELECT count(*) FROM pg_namespace WHERE nspname = 'public_demo_rename_email'),
  (SELECT count(*) FROM online.migrations)`)
	if want := "id,email,name,balance|0|0"; len(got) != 1 || got[0] != want {
		t.Errorf("after the interrupted demo: columns|version schemas|migrations = %v, want %s", got, want)
	}
}

func TestRunCancelledDropsDatabase(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testConfig(t, &out)
	cfg.hook = func(m string) {
		if m == "started" {
			cancel()
		}
	}
	rep, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if databaseExists(t, rep.Database) {
		t.Errorf("database %s left behind after the cancel", rep.Database)
	}
	if strings.Contains(out.String(), "demo passed") {
		t.Errorf("an interrupted demo says it passed:\n%s", out.String())
	}
}

func TestNoServerNoBinaries(t *testing.T) {
	var out bytes.Buffer
	cfg := testConfig(t, &out)
	cfg.Engine.URL = "postgres://postgres@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/postgres?sslmode=disable"
	cfg.BinDir = t.TempDir() // holds no PostgreSQL
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrNoServer) {
		t.Fatalf("Run = %v, want ErrNoServer", err)
	}
	for _, want := range []string{"--database-url", "install", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Config{Rows: 1, Duration: time.Second, Clients: 1}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
	for _, bad := range []Config{
		{Rows: 0, Duration: time.Second, Clients: 1},
		{Rows: 1, Duration: 0, Clients: 1},
		{Rows: 1, Duration: time.Second, Clients: 0},
		{Rows: 1, Duration: time.Second, Clients: MaxClients + 1},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
}

// The demo's migration goes through the same parser as a user's file.
func TestMigrationParses(t *testing.T) {
	m, err := operations.Parse("demo.yaml", []byte(migrationYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Operations) != 1 {
		t.Fatalf("%d operations, want 1", len(m.Operations))
	}
	rc, ok := m.Operations[0].(*operations.RenameColumn)
	if !ok || rc.Table != tableName || rc.From != oldEmailCol || rc.To != newEmailCol {
		t.Errorf("operation %#v, want rename_column %s.%s -> %s", m.Operations[0], tableName, oldEmailCol, newEmailCol)
	}
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
