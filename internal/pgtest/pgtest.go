// Package pgtest gives each test its own PostgreSQL database on the server
// named by DATABASE_URL (or the PG* variables, or the local default), and drops
// it when the test ends, so tests never depend on what an earlier run left.
package pgtest

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// staleOnce makes the first NewDB of a binary drop what killed runs left.
var staleOnce sync.Once

// ServerURL is the connection string of the server the tests use.
func ServerURL() string { return pg.ResolveURL("") }

// NewDB creates an empty database and returns its connection string. The
// database is dropped (with any connections still open to it) at cleanup,
// whether the test passed or failed; an interrupt drops it too, and one a
// killed binary left is dropped by the next binary's first NewDB.
//
// It waits first until the server has room for the test's connections (see
// ConnsPerTest).
func NewDB(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience()+30*time.Second)
	defer cancel()
	admin, err := connect(ctx, ServerURL())
	if err != nil {
		t.Fatalf("pgtest: connect to the test server (set DATABASE_URL): %v", err)
	}
	staleOnce.Do(func() {
		// The first database of the binary cleans up after earlier runs.
		if dropped, err := dropStale(ctx, admin); err != nil {
			t.Logf("pgtest: drop test databases earlier runs left: %v", err)
		} else if len(dropped) > 0 {
			t.Logf("pgtest: dropped %d test databases earlier runs left: %s", len(dropped), strings.Join(dropped, ", "))
		}
	})
	started, err := waitForRoom(ctx, t, admin)
	if err != nil {
		admin.Close(ctx)
		t.Fatalf("pgtest: %v", err)
	}
	// Closed last: the room it counted in stays taken until the
	// database exists.
	defer started()
	defer admin.Close(ctx)
	watchInterrupt()
	name := newDBName(time.Now())
	addLive(name)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pg.Ident(name)); err != nil {
		removeLive(name)
		t.Fatalf("pgtest: create database: %v", err)
	}
	// The test's name, as the database's comment: what holds the server's
	// connections can then be traced to a test (holders, or by hand with
	// shobj_description(oid, 'pg_database')).
	var comment string
	if err := admin.QueryRow(ctx, "SELECT format('COMMENT ON DATABASE %I IS %L', $1::text, $2::text)", name, t.Name()).Scan(&comment); err == nil {
		_, _ = admin.Exec(ctx, comment)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience()+30*time.Second)
		defer cancel()
		admin, err := connect(ctx, ServerURL())
		if err != nil {
			t.Errorf("pgtest: connect to drop %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.Ident(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		removeLive(name)
	})
	u, err := pg.WithDatabase(ServerURL(), name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// Connect opens a connection to connURL, closed at cleanup. It waits while
// the server has no connection free.
func Connect(t testing.TB, connURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience()+30*time.Second)
	defer cancel()
	conn, err := connect(ctx, connURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs each statement on conn and fails the test on the first error.
func Exec(t testing.TB, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("pgtest: %s: %v", firstLine(s), err)
		}
	}
}

// DumpSchema returns `pg_dump --schema-only` of one schema of the database,
// for comparing the catalog before and after an operation.
func DumpSchema(t testing.TB, connURL, schema string) string {
	t.Helper()
	args := []string{"--schema-only", "--no-owner", "--no-privileges", "--schema", schema}
	if connURL != "" {
		args = append(args, "--dbname", connURL)
	}
	out, err := exec.Command("pg_dump", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: pg_dump: %v\n%s", err, out)
	}
	// The dump names the server and client versions in comments; keep the
	// statements only.
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-- Dumped") || strings.HasPrefix(l, "\\restrict") || strings.HasPrefix(l, "\\unrestrict") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// QueryStrings runs a query and returns every row's columns as text, joined
// by "|", for compact data assertions.
func QueryStrings(t testing.TB, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", firstLine(sql), err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "NULL"
			} else {
				parts[i] = strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " "))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("pgtest: %s: %v", firstLine(sql), err)
	}
	return out
}
