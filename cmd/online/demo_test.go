package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgserver"
)

// demoAppLine matches an app's row of the results table and captures its
// queries and errors.
var demoAppLine = regexp.MustCompile(`(?m)^\s+(old|new)\s+\S+\s+(email|email_address)\s+\S+\s+(\d+)\s+(\d+)\s`)

var demoDatabaseLine = regexp.MustCompile(`(?m)^database\s+(online_demo_[0-9a-f_]+)\s`)

// runDemo runs `online demo` in-process with args after "demo" and checks
// what every successful run must show: exit 0, both apps busy and without
// errors, the verdict last. It returns stdout.
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	began := time.Now()
	code := run(ctx, append([]string{"demo"}, args...), &stdout, &stderr)
	t.Logf("online demo %s: exit %d in %s\nstdout:\n%s", strings.Join(args, " "), code, time.Since(began).Round(time.Millisecond), stdout.String())
	if code != exitOK {
		t.Fatalf("exit code %d, want 0\nstderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	apps := demoAppLine.FindAllStringSubmatch(out, -1)
	if len(apps) != 2 {
		t.Fatalf("found %d app rows in the results, want 2", len(apps))
	}
	for _, m := range apps {
		if q, _ := strconv.Atoi(m[3]); q == 0 {
			t.Errorf("%s app ran no queries", m[1])
		}
		if m[4] != "0" {
			t.Errorf("%s app had %s errors, want 0", m[1], m[4])
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != "demo passed: 0 errors" {
		t.Errorf("last line is %q, want %q", last, "demo passed: 0 errors")
	}
	return out
}

// demoDatabases lists the scratch databases on the test server.
func demoDatabases(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pg.Connect(ctx, pg.ResolveURL(""), pg.Options{ApplicationName: "online-test"})
	if err != nil {
		t.Fatalf("connect to the test server (set DATABASE_URL): %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'online\_demo\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	dbs := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		dbs[name] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return dbs
}

func TestDemo(t *testing.T) {
	before := demoDatabases(t)
	out := runDemo(t, "--rows", "5000", "--duration", "1s")
	if strings.Contains(out, "throwaway") {
		t.Errorf("started a throwaway server although the test server is up")
	}
	m := demoDatabaseLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatal("the report does not name its database")
	}
	// Only this run's own database is checked: other test binaries (package
	// internal/demo) create and drop online_demo_* databases concurrently.
	if after := demoDatabases(t); after[m[1]] {
		t.Errorf("database %s is still there", m[1])
	}
	if before[m[1]] {
		t.Errorf("database %s existed before the run", m[1])
	}
}

func TestDemoThrowawayServer(t *testing.T) {
	if _, err := pgserver.FindBinaries(""); err != nil {
		t.Skipf("no PostgreSQL server binaries here, so no throwaway server: %v", err)
	}
	// A TMPDIR of the test's own shows that the server's directory is
	// removed. When we are root the server runs as another user, who must
	// be able to enter it.
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TMPDIR", tmp)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	url := "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"

	out := runDemo(t, "--database-url", url, "--rows", "2000", "--duration", "1s", "--clients", "2")
	if !strings.Contains(out, "throwaway") {
		t.Errorf("the report does not say a throwaway server was used")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "online-pg-*")); len(left) > 0 {
		t.Errorf("throwaway server left behind: %v", left)
	}
	if pgserver.Reachable(context.Background(), url) {
		t.Errorf("something answers at %s after the demo", url)
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--clients", "0"},
		{"demo", "--rows", "0"},
		{"demo", "--duration", "0s"},
		{"demo", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("online %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), code, exitUsage, stderr.String())
		}
	}
}

// With no server and nowhere to find PostgreSQL's programs, the error must
// say what to do.
func TestDemoNoServer(t *testing.T) {
	if _, err := pgserver.FindBinaries(""); !errors.Is(err, pgserver.ErrNotFound) {
		t.Skip("PostgreSQL's server programs are installed here: the demo would start a throwaway server")
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--database-url", "postgres://postgres@127.0.0.1:1/postgres"}, &stdout, &stderr)
	if code == exitOK || !strings.Contains(stderr.String(), "install") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
