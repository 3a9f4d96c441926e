package phases_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
)

// TestServerCrashMidBackfill cuts the server's power (an immediate
// shutdown: no checkpoint, no WAL flush) while two workers backfill, with
// the WAL writer slowed to 10 s so that the batches' commits, which do not
// wait for their WAL (synchronous_commit is off in a batch), are still in
// memory. Whatever the crash takes, each range's checkpoint must match its
// rows after recovery: every row at or below the checkpoint converted,
// none above it. A resume then finishes, and every row is right in both
// versions.
func TestServerCrashMidBackfill(t *testing.T) {
	t.Parallel()
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := scratchServer(t, c)

	const rows = 200000
	setup := pgtest.Connect(t, srv.URL)
	pgtest.Exec(t, setup, accountsTable, accountsRows(rows),
		"ALTER SYSTEM SET wal_writer_delay = '10s'", "SELECT pg_reload_conf()")
	setup.Close(c)

	var seen atomic.Int64 // the most rows the engine was told were done
	var crashOnce sync.Once
	crashed := make(chan error, 1)
	eng, err := phases.Open(c, phases.Config{URL: srv.URL, BackfillWorkers: 2, BackfillBatchTime: 50 * time.Millisecond,
		Log: zerolog.Nop(),
		OnProgress: func(p backfill.Progress) {
			seen.Store(max(seen.Load(), p.RowsDone))
			if p.RowsDone >= rows/3 {
				crashOnce.Do(func() { go func() { crashed <- srv.Crash(c) }() })
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Start(c, parse(t, "lower", lowerEmail))
	eng.Close(context.Background())
	select {
	case cerr := <-crashed:
		if cerr != nil {
			t.Fatalf("crash the server: %v", cerr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the server was never crashed; start returned %v", err)
	}
	if err == nil {
		t.Fatal("start finished although the server crashed under it")
	}
	if err := srv.Restart(c); err != nil {
		t.Fatal(err)
	}

	db := pgtest.Connect(t, srv.URL)
	// Each range: its checkpoint, the rows converted at or below it, and
	// the rows converted above it (in its range).
	var survived int64
	q := `SELECT b.part, b.rows_done,
		(SELECT count(*) FROM accounts a WHERE (b.range_lo IS NULL OR a.id > b.range_lo[1]::bigint)
			AND (b.last_key IS NULL OR a.id <= b.last_key[1]::bigint) AND a._online_email IS NOT NULL),
		(SELECT count(*) FROM accounts a WHERE (b.last_key IS NULL OR a.id > b.last_key[1]::bigint)
			AND (b.range_hi IS NULL OR a.id <= b.range_hi[1]::bigint) AND a._online_email IS NOT NULL)
		FROM online.backfills b ORDER BY b.part`
	rs, err := db.Query(c, q)
	if err != nil {
		t.Fatal(err)
	}
	var parts int
	for rs.Next() {
		var part int
		var done, below, above int64
		if err := rs.Scan(&part, &done, &below, &above); err != nil {
			t.Fatal(err)
		}
		parts++
		survived += done
		if below != done || above != 0 {
			t.Errorf("range %d after the crash: checkpoint says %d rows, %d converted up to it, %d beyond it", part, done, below, above)
		}
	}
	if err := rs.Err(); err != nil {
		t.Fatal(pg.Explain(err))
	}
	if parts < 2 {
		t.Fatalf("%d ranges recorded, want 2 or more", parts)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("the engine saw %d rows done before the crash; %d survived it in %d ranges", seen.Load(), survived, parts)

	eng2, err := phases.Open(c, phases.Config{URL: srv.URL, BackfillWorkers: 2, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close(context.Background())
	res, err := eng2.Start(c, parse(t, "lower", lowerEmail))
	if err != nil || !res.Resumed {
		t.Fatalf("start after the crash: %v (resumed %v)", err, res != nil && res.Resumed)
	}
	var badOld, badNew int
	if err := db.QueryRow(c, `SELECT count(*) FROM accounts WHERE email <> 'User' || id || '@Example.COM' OR balance <> id % 1000`).Scan(&badOld); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, db, "SET search_path TO public_lower")
	if err := db.QueryRow(c, fmt.Sprintf(`SELECT count(*) + (SELECT %d - count(*) FROM accounts) FROM accounts
		WHERE email IS DISTINCT FROM lower('User' || id || '@Example.COM') OR balance IS DISTINCT FROM id %% 1000`, rows)).Scan(&badNew); err != nil {
		t.Fatal(err)
	}
	if badOld != 0 || badNew != 0 {
		t.Fatalf("after the resume: %d rows wrong in the old version, %d in the new", badOld, badNew)
	}
}
