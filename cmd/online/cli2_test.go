package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

// TestCLIConnectionErrors: each kind of connection failure is printed once,
// exit 1, with a hint for its cause; nothing on stdout.
func TestCLIConnectionErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, url, once, hint string
	}{
		{"nothing listening", "postgres://postgres@127.0.0.1:1/postgres", "connection refused", "nothing listens there"},
		{"unknown database", "postgres://postgres@127.0.0.1:5432/online_apps_no_such_db", `database "online_apps_no_such_db" does not exist`, "the database does not exist"},
		{"authentication", "postgres://online_apps_no_such_role@127.0.0.1:5432/postgres", `role "online_apps_no_such_role" does not exist`, "authentication failed"},
		{"tls", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=verify-full&sslrootcert=system", "", "TLS failed"},
	}
	for _, c := range cases {
		r := runCLI(t, "status", "--database-url", c.url)
		if r.code != 1 || r.stdout != "" {
			t.Fatalf("%s: exit %d, stdout %q, want 1 and nothing\n%s", c.name, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "HINT: "+c.hint) {
			t.Fatalf("%s: stderr lacks the hint %q:\n%s", c.name, c.hint, r.stderr)
		}
		if c.once != "" && strings.Count(r.stderr, c.once) != 1 {
			t.Fatalf("%s: %q should appear once:\n%s", c.name, c.once, r.stderr)
		}
	}
}

func TestCLIVersionAndCompletion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runCLI(t, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "online ") || !strings.Contains(r.stdout, "go1.") {
			t.Fatalf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := runCLI(t, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "online") || len(r.stdout) < 500 {
			t.Fatalf("completion %s: exit %d, %d bytes\n%s", shell, r.code, len(r.stdout), r.stderr)
		}
	}
}

// TestCLIExamples: every command's --help shows an example.
func TestCLIExamples(t *testing.T) {
	t.Parallel()
	root := newRootCmd(&globals{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	r := runCLI(t, "start", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Examples:\n  online plan 02_rename_email.yaml") {
		t.Fatalf("start --help: exit %d\n%s", r.code, r.stdout)
	}
}

// TestStatusTable renders a backfill in progress: rate, ETA from the
// rows left, and the next command.
func TestStatusTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	st := &phases.Status{Schema: "public", Latest: "public", Next: "online start 02_lower.yaml (or online backfill), to resume 02_lower; or online rollback",
		InProgress: &phases.MigrationStatus{Name: "02_lower", Phase: "backfilling", VersionSchema: "public_02_lower", StartedAt: now.Add(-90 * time.Second),
			Backfills: []state.Backfill{{Table: "users", RowsDone: 1000, RowsTotal: 3000, Rate: 100, UpdatedAt: now}}}}
	var b strings.Builder
	printStatus(&b, st, now)
	out := squeeze(b.String())
	for _, want := range []string{"in progress: 02_lower\n", "phase: backfilling\n", "(1m30s ago)", "BACKFILL ROWS OF ~ DONE RATE ETA STATE CHECKPOINT\nusers 1000 3000 33.3% 100 rows/s ~20s stopped 10:00:00\n", "next: online start 02_lower.yaml"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
}

// squeeze turns each run of spaces into one, so that assertions do not
// depend on column widths.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// TestCLIStatusNext: status names the next command in each state, and
// --json carries it too.
func TestCLIStatusNext(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)")
	file := writeFile(t, t.TempDir(), "01_rename.yaml", "operations:\n  - rename_column: { table: users, from: email, to: email_address }\n")
	if r := runCLI(t, "status", "--database-url", url); r.code != 0 || !strings.Contains(squeeze(r.stdout), "in progress: none") || !strings.Contains(r.stdout, "next: online start FILE") {
		t.Fatalf("status before: exit %d\n%s", r.code, r.stdout)
	}
	if r := runCLI(t, "start", file, "--database-url", url); r.code != 0 {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	r := runCLI(t, "status", "--database-url", url)
	if r.code != 0 || !strings.Contains(squeeze(r.stdout), "phase: active\n") || !strings.Contains(r.stdout, "next: deploy the code of version public_01_rename, then online complete") {
		t.Fatalf("status active: exit %d\n%s", r.code, r.stdout)
	}
	r = runCLI(t, "status", "--json", "--database-url", url)
	if r.code != 0 || !strings.Contains(r.stdout, `"next": "deploy the code`) || !strings.Contains(r.stdout, `"running": false`) {
		t.Fatalf("status --json: %s", r.stdout)
	}
}

// TestCLIRefusesPooler: through pgbouncer, online says to connect directly.
func TestCLIRefusesPooler(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	b := pgtest.StartPgBouncer(t, pgtest.PgBouncerOptions{})
	r := runCLI(t, "status", "--database-url", b.URL(pgtest.DBName(t, url)))
	if r.code != 1 || !strings.Contains(r.stderr, "connect to PostgreSQL directly") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

const slowBackfill = "operations:\n  - alter_column: { table: users, column: email, up: lower(email), down: email }\n"

func slowTable(t *testing.T) (url, file string) { return rowsTable(t, 20000) }

func rowsTable(t *testing.T, rows int) (url, file string) {
	url = pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)",
		fmt.Sprintf("INSERT INTO users (email) SELECT 'U' || g || '@X' FROM generate_series(1, %d) g", rows))
	return url, writeFile(t, t.TempDir(), "02_lower.yaml", slowBackfill)
}

// waitBackfilling waits until a backfill has written a checkpoint.
func waitBackfilling(t *testing.T, url string) {
	t.Helper()
	db := pgtest.Connect(t, url)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		_ = db.QueryRow(context.Background(), "SELECT count(*) FROM online.backfills WHERE rows_done > 0 AND NOT done").Scan(&n)
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no backfill progress within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCLIConnectionLost: the server ends start's session mid-backfill.
// Nobody asked to stop, so it is exit 1, not 130, and the message says
// the progress is saved and how to resume.
func TestCLIConnectionLost(t *testing.T) {
	t.Parallel()
	url, file := slowTable(t)
	done := make(chan cliResult, 1)
	go func() { done <- runCLI(t, "start", file, "--backfill-rate", "2000", "--database-url", url) }()
	waitBackfilling(t, url)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'online'")
	r := <-done
	if r.code != 1 || !strings.Contains(r.stderr, "progress saved: run online start with the same file again") {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, "start", file, "--database-url", url); r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
}

const envCLIChild = "ONLINE_CLI_CHILD_ARGS"

// TestCLIChild is the child process of TestKilledHolderDoesNotBlock: it
// runs the CLI with the arguments it is given, until it is killed.
func TestCLIChild(t *testing.T) {
	args := os.Getenv(envCLIChild)
	if args == "" {
		t.Skip("only runs as a child of TestKilledHolderDoesNotBlock")
	}
	os.Exit(run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
}

func startChild(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLIChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCLIChild+"="+strings.Join(args, "\x1f"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestKilledHolderDoesNotBlock (issue 10): a command run straight after
// the previous online process was SIGKILLed mid-backfill must not be
// turned away by the dead process's lingering session (exit 3), 8 times in
// a row; while the holder lives, the second process still gets exit 3.
func TestKilledHolderDoesNotBlock(t *testing.T) {
	t.Parallel()
	// Long batches, so that the kill lands inside one: the dead client's
	// session runs its statement to the end (or until the server's
	// client_connection_check_interval finds the client gone), holding the
	// lock meanwhile.
	url, file := rowsTable(t, 300000)
	waited := 0
	for i := range 8 {
		child := startChild(t, "start", file, "--backfill-batch-time", "1s", "--database-url", url, "--log-format", "json")
		waitBackfilling(t, url)
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		r := runCLI(t, "rollback", "--database-url", url)
		if r.code != 0 {
			t.Fatalf("round %d: rollback right after the kill: exit %d\n%s", i+1, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, `"event":"lock_wait"`) {
			waited++
		}
	}
	// How often the dead process's session was still there: the case this
	// test is about (without the wait, each of these was an exit 3).
	t.Logf("%d of 8 rollbacks waited for the killed process's session to end", waited)
	child := startChild(t, "start", file, "--backfill-rate", "2000", "--database-url", url, "--log-format", "json")
	waitBackfilling(t, url)
	r := runCLI(t, "rollback", "--database-url", url)
	if r.code != 3 || !strings.Contains(r.stderr, "another online process is working on this schema") {
		t.Fatalf("live holder: exit %d, want 3\n%s", r.code, r.stderr)
	}
	_ = child.Process.Kill()
}
