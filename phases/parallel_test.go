package phases_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

// visitLog records every row the backfill writes (its transactions set
// online.backfill), in the same transaction: a batch rolled back, or killed
// before its commit, leaves no visit. Each key that existed before start
// must end with exactly one visit.
const visitLog = `CREATE TABLE visits (k text NOT NULL);
CREATE FUNCTION log_visit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('online.backfill', true) = 'on' THEN
    INSERT INTO visits VALUES (NEW.k::text);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER log_visit AFTER UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION log_visit();`

// keyTables are accounts tables with a k column naming each row's key, an
// orig column keeping its email as inserted, and keys of every shape.
var keyTables = []struct{ name, setup string }{
	{"dense", `CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL, balance int NOT NULL DEFAULT 0, orig text, k text GENERATED ALWAYS AS (id::text) STORED);
		INSERT INTO accounts (email, orig) SELECT 'User' || g || '@Example.COM', 'User' || g || '@Example.COM' FROM generate_series(1, 30000) g`},
	// Clusters of ids with huge gaps: a split by id value would give one
	// worker almost every row.
	{"sparse", `CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, balance int NOT NULL DEFAULT 0, orig text, k text GENERATED ALWAYS AS (id::text) STORED);
		INSERT INTO accounts (id, email, orig) SELECT CASE WHEN g <= 25000 THEN g ELSE g::bigint * 1000000000 END, 'U' || g || '@X.COM', 'U' || g || '@X.COM' FROM generate_series(1, 30000) g`},
	{"composite", `CREATE TABLE accounts (tenant int NOT NULL, name text NOT NULL, email text NOT NULL, balance int NOT NULL DEFAULT 0, orig text, k text GENERATED ALWAYS AS (tenant::text || '/' || name) STORED, PRIMARY KEY (tenant, name));
		INSERT INTO accounts (tenant, name, email, orig) SELECT g % 7, 'n' || g, 'T' || g || '@X.COM', 'T' || g || '@X.COM' FROM generate_series(1, 30000) g`},
	{"text", `CREATE TABLE accounts (code text PRIMARY KEY, email text NOT NULL, balance int NOT NULL DEFAULT 0, orig text, k text GENERATED ALWAYS AS (code) STORED);
		INSERT INTO accounts (code, email, orig) SELECT md5(g::text), 'M' || g || '@X.COM', 'M' || g || '@X.COM' FROM generate_series(1, 30000) g`},
	{"partitioned", `CREATE TABLE accounts (id bigint NOT NULL, email text NOT NULL, balance int NOT NULL DEFAULT 0, orig text, k text GENERATED ALWAYS AS (id::text) STORED, PRIMARY KEY (id)) PARTITION BY RANGE (id);
		CREATE TABLE accounts_a PARTITION OF accounts FOR VALUES FROM (0) TO (10000);
		CREATE TABLE accounts_b PARTITION OF accounts FOR VALUES FROM (10000) TO (100000000);
		INSERT INTO accounts (id, email, orig) SELECT g * 3, 'P' || g || '@X.COM', 'P' || g || '@X.COM' FROM generate_series(1, 30000) g`},
}

// TestParallelBackfillKeys backfills with three workers over dense, sparse,
// composite, text keys and a partitioned table: every row converted, each
// visited exactly once, each table (or leaf) split into ranges that each
// walked their own rows.
func TestParallelBackfillKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range keyTables {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.setup, visitLog)
			const rows = 30000
			eng := e.engine(func(c *phases.Config) { c.BackfillWorkers = 3; c.BackfillBatchTime = 20 * time.Millisecond })
			if _, err := eng.Start(ctx(), parse(t, "lower", lowerEmail)); err != nil {
				t.Fatalf("start: %s", pg.Explain(err))
			}
			e.checkParts(rows, 3)
			e.complete()
			e.expectRows(e.db, []string{fmt.Sprint(rows), "0"}, "SELECT count(*) FROM accounts UNION ALL SELECT count(*) FROM accounts WHERE email <> lower(orig)")
			e.expectRows(e.db, []string{"0", fmt.Sprint(rows)}, `SELECT count(*) FROM (SELECT k FROM visits GROUP BY k HAVING count(*) <> 1) s
				UNION ALL SELECT count(*) FROM accounts a WHERE EXISTS (SELECT 1 FROM visits v WHERE v.k = a.k)`)
		})
	}
}

// checkParts asserts the checkpoints: each task (table or leaf) with at
// least two ranges of at most workers, all done, the ranges' rows_done
// adding up to rows, and each range's rows_done equal to its visits.
func (e *env) checkParts(rows, workers int) {
	e.t.Helper()
	var tasks, maxParts, minParts int
	var done int64
	if err := e.db.QueryRow(ctx(), `SELECT count(DISTINCT task), max(n), min(n), (SELECT sum(rows_done) FROM online.backfills) FROM
		(SELECT task, count(*) n FROM online.backfills WHERE done GROUP BY task) s`).Scan(&tasks, &maxParts, &minParts, &done); err != nil {
		e.t.Fatal(err)
	}
	if minParts < 2 || maxParts > workers || done != int64(rows) {
		e.t.Fatalf("%d tasks with %d..%d done ranges and %d rows done; want 2..%d ranges each and %d rows", tasks, minParts, maxParts, done, workers, rows)
	}
	var notDone int
	_ = e.db.QueryRow(ctx(), "SELECT count(*) FROM online.backfills WHERE NOT done").Scan(&notDone)
	if notDone > 0 {
		e.t.Fatalf("%d ranges not done after start", notDone)
	}
}

// TestParallelBackfillMoreRangesThanWorkers: a table large enough is split
// into more ranges than workers, and a worker that ends a range takes the
// next. Every range is walked once, to its end, and never by more sessions
// at once than the workers asked for.
func TestParallelBackfillMoreRangesThanWorkers(t *testing.T) {
	t.Parallel()
	const rows, workers = 120000, 2
	want := phases.RangeCount(workers, rows)
	if want <= workers {
		t.Fatalf("RangeCount(%d, %d) = %d: the test needs more ranges than workers", workers, rows, want)
	}
	e := newEnv(t, `CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL, balance int NOT NULL DEFAULT 0, orig text, k text GENERATED ALWAYS AS (id::text) STORED);
		INSERT INTO accounts (email, orig) SELECT 'User' || g || '@Example.COM', 'User' || g || '@Example.COM' FROM generate_series(1, 120000) g;
		ANALYZE accounts`,
		// Each visit records the session that made it and when.
		`CREATE TABLE visits (k text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
		CREATE FUNCTION log_visit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		  IF current_setting('online.backfill', true) = 'on' THEN
		    INSERT INTO visits VALUES (NEW.k::text, pg_backend_pid());
		  END IF;
		  RETURN NEW;
		END $$;
		CREATE TRIGGER log_visit AFTER UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION log_visit();`)
	eng := e.engine(func(c *phases.Config) { c.BackfillWorkers = workers; c.BackfillBatchTime = 20 * time.Millisecond })
	if _, err := eng.Start(ctx(), parse(t, "lower", lowerEmail)); err != nil {
		t.Fatalf("start: %s", pg.Explain(err))
	}
	e.expectRows(e.db, []string{fmt.Sprintf("%d|%d|%d", want, want, rows)},
		"SELECT count(*), count(*) FILTER (WHERE done), sum(rows_done)::bigint FROM online.backfills")
	// Each range's checkpoint counts exactly the keys visited in it, and
	// every key was visited once.
	e.expectRows(e.db, []string{"0"}, `SELECT count(*) FROM online.backfills b WHERE b.rows_done <> (SELECT count(*) FROM visits v JOIN accounts a ON a.k = v.k
		WHERE (b.range_lo IS NULL OR a.id > b.range_lo[1]::bigint) AND (b.range_hi IS NULL OR a.id <= b.range_hi[1]::bigint))`)
	e.expectRows(e.db, []string{"0"}, `SELECT count(*) FROM (SELECT k FROM visits GROUP BY k HAVING count(*) <> 1) s`)
	e.expectRows(e.db, []string{fmt.Sprint(rows)}, `SELECT count(DISTINCT k) FROM visits`)
	// The walking sessions: no more than the workers.
	var sessions int
	if err := e.db.QueryRow(ctx(), "SELECT count(DISTINCT pid) FROM visits").Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions < 1 || sessions > workers {
		t.Fatalf("%d sessions walked the ranges, want 1..%d", sessions, workers)
	}
	e.complete()
	e.expectRows(e.db, []string{fmt.Sprint(rows), "0"}, "SELECT count(*) FROM accounts UNION ALL SELECT count(*) FROM accounts WHERE email <> lower(orig)")
}

// TestRateHoldsAcrossRanges: --backfill-rate bounds the whole backfill
// when its workers walk more ranges than there are workers: the last batch
// of each range is paced as any other (a bound from below, which a loaded
// machine only makes easier to meet).
func TestRateHoldsAcrossRanges(t *testing.T) {
	t.Parallel()
	const rows, workers, rate = 100000, 2, 40000.0
	if phases.RangeCount(workers, rows) <= workers {
		t.Fatalf("RangeCount(%d, %d) = %d: the test needs more ranges than workers", workers, rows, phases.RangeCount(workers, rows))
	}
	e := newEnv(t, accountsTable, accountsRows(rows), "ANALYZE accounts")
	eng := e.engine(func(c *phases.Config) { c.BackfillWorkers = workers; c.BackfillRate = rate })
	res, err := eng.Start(ctx(), parse(t, "lower", lowerEmail))
	if err != nil {
		t.Fatalf("start: %s", pg.Explain(err))
	}
	e.expectRows(e.db, []string{fmt.Sprint(phases.RangeCount(workers, rows))}, "SELECT count(*) FROM online.backfills")
	least := time.Duration(rows / rate * float64(time.Second))
	if res.Backfill < least*9/10 {
		t.Fatalf("the backfill of %d rows at %.0f rows/s took %s, under the %s the rate allows", rows, rate, res.Backfill, least)
	}
	t.Logf("%d rows at %.0f rows/s in %d ranges: %s (at least %s)", rows, rate, phases.RangeCount(workers, rows), res.Backfill.Round(time.Millisecond), least)
}

// TestParallelKilledBackfillResumes kills a start with three workers midway
// (SIGKILL), then resumes: every range carries on from its own checkpoint
// (each row visited exactly once, no range restarted), and each range's
// rows_done is the number of keys in it.
func TestParallelKilledBackfillResumes(t *testing.T) {
	if os.Getenv("ONLINE_TEST_CHILD_URL") != "" {
		return
	}
	t.Parallel()
	const rows = 60000
	e := newEnv(t, keyTables[0].setup, "DELETE FROM accounts WHERE id % 10 = 3",
		fmt.Sprintf("INSERT INTO accounts (email, orig) SELECT 'User' || g || '@Example.COM', 'User' || g || '@Example.COM' FROM generate_series(1, %d) g", rows-27000), visitLog)
	e.killChildStartAt(rows/4, "ONLINE_TEST_CHILD_WORKERS=3")
	type part struct {
		done    int64
		visits  int64
		started bool
	}
	readParts := func() map[int]part {
		out := map[int]part{}
		for _, r := range e.rows(e.db, `SELECT b.part, b.rows_done, (SELECT count(*) FROM visits v JOIN accounts a ON a.k = v.k
			WHERE (b.range_lo IS NULL OR a.id > b.range_lo[1]::bigint) AND (b.range_hi IS NULL OR a.id <= b.range_hi[1]::bigint))
			FROM online.backfills b ORDER BY b.part`) {
			var p, d, v int64
			if _, err := fmt.Sscanf(r, "%d|%d|%d", &p, &d, &v); err != nil {
				t.Fatalf("%q: %v", r, err)
			}
			out[int(p)] = part{done: d, visits: v, started: d > 0}
		}
		return out
	}
	killed := readParts()
	if len(killed) != 3 {
		t.Fatalf("%d ranges recorded, want 3", len(killed))
	}
	var killedRows int64
	for k, p := range killed {
		// The checkpoint commits with its batch: what it says is done is
		// exactly what was visited.
		if p.done != p.visits {
			t.Fatalf("range %d after the kill: checkpoint says %d rows, %d were visited", k, p.done, p.visits)
		}
		killedRows += p.done
	}
	if killedRows >= rows {
		t.Fatalf("the backfill finished (%d rows) before the kill", killedRows)
	}
	if _, err := e.engine().Complete(ctx()); !errors.Is(err, phases.ErrBackfillUnfinished) {
		t.Fatalf("complete after the kill: %v, want ErrBackfillUnfinished", err)
	}
	res, err := e.engine(func(c *phases.Config) { c.BackfillWorkers = 3 }).Start(ctx(), parse(t, "lower", lowerEmail))
	if err != nil || !res.Resumed {
		t.Fatalf("start after the kill: %v (resumed %v)", err, res != nil && res.Resumed)
	}
	var keys [3]int64
	for k, p := range readParts() {
		if p.done != p.visits {
			t.Fatalf("range %d after the resume: checkpoint says %d rows, %d were visited", k, p.done, p.visits)
		}
		keys[k] = p.done
	}
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM (SELECT k FROM visits GROUP BY k HAVING count(*) <> 1) s")
	e.expectRows(e.db, []string{strconv.Itoa(rows)}, "SELECT count(DISTINCT k) FROM visits")
	e.complete()
	e.expectRows(e.db, []string{strconv.Itoa(rows), "0"}, "SELECT count(*) FROM accounts UNION ALL SELECT count(*) FROM accounts WHERE email <> lower(orig)")
	t.Logf("killed at %d of %d rows (ranges %v); each range resumed from its checkpoint: %v", killedRows, rows, killed, keys)
}

// TestStatusProgress reads status from another engine while a backfill
// runs, after it is stopped, and while it resumes: rows done, a rate and a
// total while running; stopped and no rate once no process runs it; the
// total still known from the first checkpoint of the resumed run on.
func TestStatusProgress(t *testing.T) {
	t.Parallel()
	const rows = 40000
	e := newEnv(t, accountsTable, accountsRows(rows))
	watcher := e.engine()
	backfillStatus := func() (*phases.Status, *state.Backfill) {
		t.Helper()
		st, err := watcher.Status(ctx())
		if err != nil {
			t.Fatal(err)
		}
		if st.InProgress == nil || len(st.InProgress.Backfills) == 0 {
			return st, nil
		}
		return st, &st.InProgress.Backfills[0]
	}
	run := func(c context.Context, resume bool) chan error {
		done := make(chan error, 1)
		go func() {
			eng := e.engine(func(c *phases.Config) { c.BackfillRate = 8000; c.BackfillWorkers = 1 })
			var err error
			if resume {
				_, err = eng.Resume(c)
			} else {
				_, err = eng.Start(c, parse(t, "lower", lowerEmail))
			}
			done <- err
		}()
		return done
	}
	waitFor := func(what string, cond func(*phases.Status, *state.Backfill) bool) (*phases.Status, *state.Backfill) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, b := backfillStatus()
			if b != nil && cond(st, b) {
				return st, b
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never showed %s: %+v", what, b)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	c, cancel := context.WithCancel(ctx())
	done := run(c, false)
	// Two checkpoints in, so that the rate has a window.
	st, b := waitFor("a running backfill", func(_ *phases.Status, b *state.Backfill) bool { return b.RowsDone > 2000 })
	if !st.Running || b.State != phases.BackfillRunning || b.Rate <= 0 || b.RowsTotal < b.RowsDone || b.RowsTotal < rows/2 || b.RowsTotal > 2*rows {
		t.Fatalf("while running: running %v, %+v; want running, a rate, a total near %d", st.Running, *b, rows)
	}
	cancel()
	var intr *phases.InterruptedError
	if err := <-done; !errors.As(err, &intr) {
		t.Fatalf("cancelled start: %v", err)
	}
	st, b = backfillStatus()
	if st.Running || b.State != phases.BackfillStopped || b.Rate != 0 || b.RowsDone == 0 || b.RowsDone >= rows {
		t.Fatalf("after the stop: running %v, %+v; want stopped, no rate", st.Running, *b)
	}
	stoppedAt := b.RowsDone

	done = run(ctx(), true)
	st, b = waitFor("the resumed backfill", func(_ *phases.Status, b *state.Backfill) bool { return b.RowsDone > stoppedAt })
	if b.RowsTotal < b.RowsDone || b.RowsTotal < rows/2 {
		t.Fatalf("first checkpoints of the resume: %+v; want the total kept", *b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, b = backfillStatus()
	if st.InProgress.Phase != "active" || b.State != phases.BackfillDone || b.RowsDone != rows {
		t.Fatalf("after the resume: phase %s, %+v", st.InProgress.Phase, *b)
	}
}
