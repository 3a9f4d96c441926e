package diff

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
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

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	go func() {
		// While the SQL sleeps, the database exists.
		time.Sleep(700 * time.Millisecond)
		if !exists(db + "_slow") {
			t.Error("the scratch database should exist while the SQL runs")
		}
	}()
	if _, err := loadSQL(ctx, url, db+"_slow", "slow.sql", "CREATE TABLE t (id int); SELECT pg_sleep(30);", "public"); err == nil {
		t.Fatal("a cancelled load must fail")
	}
	if exists(db + "_slow") {
		t.Fatal("scratch database left after a cancel")
	}
}
