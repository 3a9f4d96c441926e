package diff

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/internal/scratchdb"
)

// TestScratchDatabaseDropped: the scratch database is gone after bad SQL
// and after a cancel in the middle of the SQL (Ctrl-C).
func TestScratchDatabaseDropped(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	admin := pgtest.Connect(t, url)
	exists := func(db string) bool {
		return len(pgtest.QueryStrings(t, admin, "SELECT 1 FROM pg_database WHERE datname = $1", db)) > 0
	}
	db := ScratchPrefix + "test_" + strings.TrimPrefix(strings.ToLower(t.Name()), "test")
	_, err := loadSQL(context.Background(), url, db+"_bad", "bad.sql", "CREATE TABLE t (id int PRIMARY KEY);\nCREATE TABLE u (id nosuchtype);", "public")
	var se *SQLError
	if !errors.As(err, &se) || se.File != "bad.sql" {
		t.Fatalf("want an SQLError for bad.sql, got %v", err)
	}
	if !strings.Contains(pg.Explain(err), "nosuchtype") {
		t.Fatalf("the error should point at the statement: %s", pg.Explain(err))
	}
	if exists(db + "_bad") {
		t.Fatal("scratch database left after bad SQL")
	}

	// The cancel comes once the SQL runs in the scratch database (seen
	// there in pg_stat_activity), however long CREATE DATABASE takes on a
	// loaded server: a fixed delay could cancel the creation instead.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan bool, 1)
	go func() {
		defer cancel()
		// Also when a query fails the test (t.Fatal ends this goroutine).
		defer func() {
			select {
			case seen <- false:
			default:
			}
		}()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if ctx.Err() != nil {
				break
			}
			if len(pgtest.QueryStrings(t, admin, "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep%'", db+"_slow")) > 0 {
				seen <- exists(db + "_slow")
				return
			}
		}
	}()
	if _, err := loadSQL(ctx, url, db+"_slow", "slow.sql", "CREATE TABLE t (id int); SELECT pg_sleep(30);", "public"); err == nil {
		t.Fatal("a cancelled load must fail")
	}
	if !<-seen {
		t.Fatal("the scratch database should exist while the SQL runs")
	}
	if exists(db + "_slow") {
		t.Fatal("scratch database left after a cancel")
	}
}

// TestStaleScratchDatabasesDropped: a diff drops the scratch databases that
// a killed diff left (their process, on this host, is gone) before it makes
// its own, and leaves those of a diff still running.
func TestStaleScratchDatabasesDropped(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	admin := pgtest.Connect(t, url)
	exists := func(db string) bool {
		return len(pgtest.QueryStrings(t, admin, "SELECT 1 FROM pg_database WHERE datname = $1", db)) > 0
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no true command: %v", err)
	}
	now := time.Now().Unix()
	dead := fmt.Sprintf("%s%s_%d_%d_%s", ScratchPrefix, scratchdb.HostTag(), cmd.Process.Pid, now, "deaddeaddead")
	alive := fmt.Sprintf("%s%s_%d_%d_%s", ScratchPrefix, scratchdb.HostTag(), os.Getpid(), now, "a1a1a1a1a1a1")
	for _, n := range []string{dead, alive} {
		pgtest.Exec(t, admin, "DROP DATABASE IF EXISTS "+pg.Ident(n), "CREATE DATABASE "+pg.Ident(n))
		t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pg.Ident(n)) })
	}
	if _, err := LoadSQL(context.Background(), url, "want.sql", "CREATE TABLE t (id int PRIMARY KEY)", "public"); err != nil {
		t.Fatal(err)
	}
	if exists(dead) {
		t.Errorf("%s (its diff is gone) is still there", dead)
	}
	if !exists(alive) {
		t.Errorf("%s (its diff runs) was dropped", alive)
	}
}
