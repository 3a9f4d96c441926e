package backfill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
)

// Every test table has the key columns, src, dst and n. The task sets
// dst = upper(src) and n = n + 1, so n tells how often a row was rewritten:
// anything but 1 is a row missed or done twice.
var convert = []Assignment{
	{Column: "dst", Expr: "upper(src)"},
	{Column: "n", Expr: "n + 1"},
}

const wrongRows = `SELECT count(*) FROM t WHERE dst IS DISTINCT FROM upper(src) OR n <> 1`

func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func bigintKey() []Column { return []Column{{Name: "id", Type: "bigint"}} }

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Task{Schema: "public", Table: "t", Key: bigintKey(), Set: convert}
	cases := []struct {
		name   string
		change func(*Task)
		want   string // substring of the error; "" = valid
	}{
		{"valid", func(*Task) {}, ""},
		{"no schema is fine", func(t *Task) { t.Schema = "" }, ""},
		{"empty table", func(t *Task) { t.Table = "" }, "empty table name"},
		{"empty key", func(t *Task) { t.Key = nil }, "empty key"},
		{"key without name", func(t *Task) { t.Key = []Column{{Type: "int"}} }, "has no name"},
		{"key without type", func(t *Task) { t.Key = []Column{{Name: "id"}} }, "has no type"},
		{"key twice", func(t *Task) { t.Key = []Column{{"id", "int"}, {"id", "int"}} }, "listed twice"},
		{"empty set", func(t *Task) { t.Set = nil }, "nothing to set"},
		{"assignment without column", func(t *Task) { t.Set = []Assignment{{Expr: "1"}} }, "has no column name"},
		{"assignment without expr", func(t *Task) { t.Set = []Assignment{{Column: "dst", Expr: " "}} }, "has no expression"},
		{"assignment twice", func(t *Task) { t.Set = []Assignment{{"dst", "1"}, {"dst", "2"}} }, "assigned twice"},
		{"assignment to key", func(t *Task) { t.Set = []Assignment{{"id", "id + 1"}} }, "part of the key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			task := ok
			c.change(&task)
			err := Validate(task)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("want an error with %q, got %v", c.want, err)
			}
		})
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup []string
		task  Task
		opts  Options
		rows  int64  // RowsDone expected
		check string // counts wrong rows; default wrongRows
		// minBatches is the least number of Progress calls expected.
		minBatches int
	}{
		{
			name:  "empty table",
			setup: []string{`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`},
			task:  Task{Table: "t", Key: bigintKey(), Set: convert},
			rows:  0, minBatches: 1,
		},
		{
			name: "a few rows",
			setup: []string{
				`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
				`INSERT INTO t (id, src) VALUES (1, 'a'), (2, NULL), (10, 'c'), (-5, 'd')`,
			},
			task: Task{Schema: "public", Table: "t", Key: bigintKey(), Set: convert},
			rows: 4, minBatches: 1,
		},
		{
			name: "many batches",
			setup: []string{
				`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
				// Gaps in the key: batches count keys, not key values.
				`INSERT INTO t (id, src) SELECT g * 7, 'r' || g FROM generate_series(1, 1000) g`,
			},
			task: Task{Table: "t", Key: bigintKey(), Set: convert},
			opts: Options{InitialBatch: 10, MinBatch: 3, MaxBatch: 17, BatchTime: time.Microsecond},
			rows: 1000, minBatches: 1000 / 17,
		},
		{
			name: "composite key (tenant int, id text)",
			setup: []string{
				`CREATE TABLE t (tenant int, id text, src text, dst text, n int NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id))`,
				// Tenants 1..12 and ids whose text order differs from
				// their numeric one: a walk on text would go wrong.
				`INSERT INTO t (tenant, id, src) SELECT t, i::text, t || '/' || i FROM generate_series(1, 12) t, generate_series(1, 120) i`,
			},
			task: Task{Table: "t", Key: []Column{{"tenant", "integer"}, {"id", "text"}}, Set: convert},
			opts: Options{InitialBatch: 50, MinBatch: 7, MaxBatch: 50, BatchTime: time.Microsecond},
			rows: 12 * 120, minBatches: 12 * 120 / 50,
		},
		{
			name: "text key, C collation, odd values",
			setup: []string{
				`CREATE TABLE t (id text COLLATE "C" PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
				`INSERT INTO t (id, src) VALUES ('a', 'x'), ('B', 'x'), ('é', 'x'), ('Z ', 'x'), (' ', 'x'), ('', 'x'),
					('it''s', 'x'), ('back\slash', 'x'), ('a,b', 'x'), ('(1,2)', 'x'), ('"q"', 'x'), ('NULL', 'x')`,
			},
			task: Task{Table: "t", Key: []Column{{"id", "text"}}, Set: convert},
			opts: Options{InitialBatch: 2, MinBatch: 1, MaxBatch: 2, BatchTime: time.Microsecond},
			rows: 12, minBatches: 6,
		},
		{
			name: "uuid key, quoted names",
			setup: []string{
				`CREATE SCHEMA "My Schema"`,
				`CREATE TABLE "My Schema"."Odd ""T""" ("Key" uuid PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
				`INSERT INTO "My Schema"."Odd ""T""" SELECT md5(g::text)::uuid, 's' || g FROM generate_series(1, 500) g`,
				`CREATE VIEW t AS SELECT * FROM "My Schema"."Odd ""T"""`,
			},
			task: Task{Schema: "My Schema", Table: `Odd "T"`, Key: []Column{{"Key", "uuid"}}, Set: convert},
			opts: Options{InitialBatch: 40, MinBatch: 40, MaxBatch: 40},
			rows: 500, minBatches: 500 / 40,
		},
		{
			name: "where filter",
			setup: []string{
				`CREATE TABLE t (id int PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
				`INSERT INTO t (id, src) SELECT g, CASE WHEN g % 3 = 0 THEN 'skip' ELSE 'do' END FROM generate_series(1, 300) g`,
			},
			task:  Task{Table: "t", Key: []Column{{"id", "integer"}}, Set: convert, Where: `src <> 'skip'`},
			opts:  Options{InitialBatch: 25, MinBatch: 25, MaxBatch: 25},
			rows:  300,
			check: `SELECT count(*) FROM t WHERE CASE WHEN src = 'skip' THEN dst IS NOT NULL OR n <> 0 ELSE dst IS DISTINCT FROM upper(src) OR n <> 1 END`,
			// 300 keys / 25
			minBatches: 12,
		},
		{
			name: "key listed in a unique index, not the primary key",
			setup: []string{
				`CREATE TABLE t (pk serial PRIMARY KEY, a int NOT NULL, b date NOT NULL, src text, dst text, n int NOT NULL DEFAULT 0)`,
				`CREATE UNIQUE INDEX t_b_a ON t (b DESC, a DESC)`,
				`INSERT INTO t (a, b, src) SELECT g % 10, date '2024-01-01' + g / 10, 'v' || g FROM generate_series(1, 200) g`,
			},
			task: Task{Table: "t", Key: []Column{{"b", "date"}, {"a", "integer"}}, Set: convert},
			opts: Options{InitialBatch: 30, MinBatch: 30, MaxBatch: 30},
			rows: 200, minBatches: 200 / 30,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.NewDB(t))
			pgtest.Exec(t, conn, c.setup...)
			var progress []Progress
			c.opts.Progress = func(p Progress) { progress = append(progress, p) }
			cp, err := Run(context.Background(), conn, c.task, c.opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !cp.Done || cp.RowsDone != c.rows {
				t.Fatalf("checkpoint %+v, want done with %d rows", cp, c.rows)
			}
			check := c.check
			if check == "" {
				check = wrongRows
			}
			if n := count(t, conn, check); n != 0 {
				t.Fatalf("%d rows wrong: %v", n, pgtest.QueryStrings(t, conn, `SELECT * FROM t ORDER BY 1 LIMIT 10`))
			}
			if len(progress) < c.minBatches {
				t.Fatalf("%d progress reports, want at least %d", len(progress), c.minBatches)
			}
			last := progress[len(progress)-1]
			if !last.Done || last.RowsDone != c.rows || last.RowsTotal != c.rows {
				t.Fatalf("last progress %+v", last)
			}
			for i, p := range progress {
				if p.Table != pg.Ident(c.task.Schema, c.task.Table) || (i < len(progress)-1 && p.Done) {
					t.Fatalf("progress %d: %+v", i, p)
				}
				if i > 0 && p.RowsDone < progress[i-1].RowsDone {
					t.Fatalf("progress went backwards: %+v after %+v", p, progress[i-1])
				}
			}
			// Done is done: running again with the checkpoint does nothing.
			again, err := Run(context.Background(), conn, c.task, Options{Resume: &cp})
			if err != nil || !again.Done || again.RowsDone != c.rows {
				t.Fatalf("rerun from done checkpoint: %+v, %v", again, err)
			}
			if n := count(t, conn, check); n != 0 {
				t.Fatalf("rerun changed %d rows", n)
			}
		})
	}
}

func TestRunRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup []string
		task  Task
		opts  Options
		want  string
	}{
		{"missing table", nil, Task{Table: "nope", Key: bigintKey(), Set: convert}, Options{}, "does not exist"},
		{"missing key column", []string{`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int)`},
			Task{Table: "t", Key: []Column{{"idx", "bigint"}}, Set: convert}, Options{}, "does not exist"},
		{"nullable key", []string{`CREATE TABLE t (id bigint UNIQUE, src text, dst text, n int)`},
			Task{Table: "t", Key: bigintKey(), Set: convert}, Options{}, "nullable"},
		{"key not in index order", []string{`CREATE TABLE t (a int, b int, src text, dst text, n int, PRIMARY KEY (a, b))`},
			Task{Table: "t", Key: []Column{{"b", "integer"}, {"a", "integer"}}, Set: convert}, Options{}, "no btree index"},
		{"no index at all", []string{`CREATE TABLE t (id int NOT NULL, src text, dst text, n int)`},
			Task{Table: "t", Key: []Column{{"id", "integer"}}, Set: convert}, Options{}, "no btree index"},
		{"checkpoint of another key", []string{`CREATE TABLE t (id int PRIMARY KEY, src text, dst text, n int)`},
			Task{Table: "t", Key: []Column{{"id", "integer"}}, Set: convert}, Options{Resume: &Checkpoint{LastKey: []string{"1", "2"}}}, "2 key values"},
		{"min above max", []string{`CREATE TABLE t (id int PRIMARY KEY, src text, dst text, n int)`},
			Task{Table: "t", Key: []Column{{"id", "integer"}}, Set: convert}, Options{MinBatch: 10, MaxBatch: 5}, "MinBatch"},
		{"bad expression", []string{`CREATE TABLE t (id int PRIMARY KEY, src text, dst text, n int)`, `INSERT INTO t VALUES (1)`},
			Task{Table: "t", Key: []Column{{"id", "integer"}}, Set: []Assignment{{"dst", "nosuchcolumn"}}}, Options{}, "nosuchcolumn"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.NewDB(t))
			pgtest.Exec(t, conn, c.setup...)
			_, err := Run(context.Background(), conn, c.task, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error with %q, got %v", c.want, err)
			}
			// The connection is still usable and outside a transaction.
			if n := count(t, conn, `SELECT 1`); n != 1 || conn.PgConn().TxStatus() != 'I' {
				t.Fatalf("connection left in state %c", conn.PgConn().TxStatus())
			}
		})
	}
}

// ckptTable stores checkpoints the way the engine would: in the database, in
// the batch's own transaction.
const ckptTable = `CREATE TABLE ckpt (id int PRIMARY KEY, last_key text[], rows_done bigint, done bool)`

func storeCheckpoint(ctx context.Context, tx pgx.Tx, cp Checkpoint) error {
	_, err := tx.Exec(ctx, `INSERT INTO ckpt VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET last_key = EXCLUDED.last_key, rows_done = EXCLUDED.rows_done, done = EXCLUDED.done`,
		cp.LastKey, cp.RowsDone, cp.Done)
	return err
}

func loadCheckpoint(t *testing.T, conn *pgx.Conn) Checkpoint {
	t.Helper()
	var cp Checkpoint
	err := conn.QueryRow(context.Background(), `SELECT last_key, rows_done, done FROM ckpt WHERE id = 1`).Scan(&cp.LastKey, &cp.RowsDone, &cp.Done)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return cp
}

func TestResume(t *testing.T) {
	t.Parallel()
	for _, failAt := range []int{1, 2, 7} {
		t.Run(fmt.Sprintf("checkpoint fails at batch %d", failAt), func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.NewDB(t))
			pgtest.Exec(t, conn, ckptTable,
				`CREATE TABLE t (tenant int, id text, src text, dst text, n int NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id))`,
				`INSERT INTO t (tenant, id, src) SELECT t, 'k' || i, 's' || i FROM generate_series(1, 5) t, generate_series(1, 100) i`)
			task := Task{Table: "t", Key: []Column{{"tenant", "integer"}, {"id", "text"}}, Set: convert}
			opts := Options{InitialBatch: 30, MinBatch: 30, MaxBatch: 30}
			boom := errors.New("boom")
			batches := 0
			opts.Checkpoint = func(ctx context.Context, tx pgx.Tx, cp Checkpoint) error {
				if batches++; batches == failAt {
					return boom
				}
				return storeCheckpoint(ctx, tx, cp)
			}
			got, err := Run(context.Background(), conn, task, opts)
			if !errors.Is(err, boom) {
				t.Fatalf("want the checkpoint's error, got %v", err)
			}
			stored := loadCheckpoint(t, conn)
			if fmt.Sprint(got) != fmt.Sprint(stored) {
				t.Fatalf("Run returned %+v, the database holds %+v", got, stored)
			}
			// Exactly the batches before the failing one are done.
			if n := count(t, conn, `SELECT count(*) FROM t WHERE n = 1`); n != int64(30*(failAt-1)) || stored.RowsDone != n {
				t.Fatalf("%d rows done, checkpoint says %d, want %d", n, stored.RowsDone, 30*(failAt-1))
			}

			opts.Checkpoint = storeCheckpoint
			opts.Resume = &stored
			got, err = Run(context.Background(), conn, task, opts)
			if err != nil || !got.Done || got.RowsDone != 500 {
				t.Fatalf("resume: %+v, %v", got, err)
			}
			if n := count(t, conn, wrongRows); n != 0 {
				t.Fatalf("%d rows wrong after resume", n)
			}
			if final := loadCheckpoint(t, conn); !final.Done || final.RowsDone != 500 {
				t.Fatalf("stored final checkpoint %+v", final)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// inside: the third batch's Checkpoint callback cancels, within
		// the batch; otherwise its Progress callback, after the batch.
		inside bool
	}{
		{"between batches", false},
		// The batch under way still commits, checkpoint included.
		{"inside a batch", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.NewDB(t))
			pgtest.Exec(t, conn, ckptTable,
				`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
				`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 1000) g`)
			task := Task{Table: "t", Key: bigintKey(), Set: convert}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			opts := Options{InitialBatch: 100, MinBatch: 100, MaxBatch: 100}
			if c.inside {
				opts.Checkpoint = func(ctx context.Context, tx pgx.Tx, cp Checkpoint) error {
					if calls++; calls == 3 {
						cancel()
					}
					return storeCheckpoint(ctx, tx, cp)
				}
			} else {
				opts.Checkpoint = storeCheckpoint
				opts.Progress = func(Progress) {
					if calls++; calls == 3 {
						cancel()
					}
				}
			}
			got, err := Run(ctx, conn, task, opts)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("want context.Canceled, got %v", err)
			}
			stored := loadCheckpoint(t, conn)
			if fmt.Sprint(got) != fmt.Sprint(stored) || got.RowsDone != 300 || got.Done {
				t.Fatalf("Run returned %+v, the database holds %+v; want 300 rows done", got, stored)
			}
			if n := count(t, conn, `SELECT count(*) FROM t WHERE n = 1 AND id <= $1::bigint`, got.LastKey[0]); n != 300 {
				t.Fatalf("%d rows done up to the checkpoint, want 300", n)
			}
			if n := count(t, conn, `SELECT count(*) FROM t WHERE n <> 0 AND id > $1::bigint`, got.LastKey[0]); n != 0 {
				t.Fatalf("%d rows done after the checkpoint", n)
			}
			// Run refuses a cancelled context before doing anything.
			if _, err := Run(ctx, conn, task, Options{Resume: &got}); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled ctx: %v", err)
			}

			opts.Resume, opts.Progress, opts.Checkpoint = &got, nil, storeCheckpoint
			got, err = Run(context.Background(), conn, task, opts)
			if err != nil || !got.Done || got.RowsDone != 1000 {
				t.Fatalf("resume: %+v, %v", got, err)
			}
			if n := count(t, conn, wrongRows); n != 0 {
				t.Fatalf("%d rows wrong after resume", n)
			}
		})
	}
}

// A batch stuck on a row lock (no lock_timeout) is cancelled CancelGrace after
// ctx, and the connection survives.
func TestCancelStuckBatch(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	holder := pgtest.Connect(t, url)
	pgtest.Exec(t, holder,
		`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
		`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 400) g`,
		`BEGIN`, `SELECT * FROM t WHERE id = 150 FOR UPDATE`)
	conn := pgtest.Connect(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the backfill waits for the row lock.
	mon := pgtest.Connect(t, url)
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		defer cancel()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			var n int
			err := mon.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
			if err != nil || n > 0 {
				return
			}
		}
	}()
	defer func() { <-waited }()
	start := time.Now()
	got, err := Run(ctx, conn, Task{Table: "t", Key: bigintKey(), Set: convert},
		Options{InitialBatch: 100, MinBatch: 100, MaxBatch: 100, CancelGrace: 200 * time.Millisecond})
	if !errors.Is(err, context.Canceled) || got.RowsDone != 100 {
		t.Fatalf("want context.Canceled after 100 rows, got %+v, %v", got, err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("took %s to give up", took)
	}
	if n := count(t, conn, `SELECT count(*) FROM t WHERE n = 1`); n != 100 || conn.PgConn().TxStatus() != 'I' {
		t.Fatalf("%d rows done (want 100), connection in state %c", n, conn.PgConn().TxStatus())
	}
	pgtest.Exec(t, holder, `ROLLBACK`)
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	const rows = 20000
	pgtest.Exec(t, conn,
		`CREATE TABLE t (id bigserial PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0, touched int NOT NULL DEFAULT 0)`,
		fmt.Sprintf(`INSERT INTO t (src) SELECT 's' || g FROM generate_series(1, %d) g`, rows),
		// The sync trigger the engine would install: writers keep dst
		// right themselves, the backfill does the rows nobody writes.
		`CREATE FUNCTION sync() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN NEW.dst := upper(NEW.src); RETURN NEW; END $$`,
		`CREATE TRIGGER sync BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION sync()`)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writes atomic.Int64
	errs := make(chan error, 4)
	for w := 0; w < 3; w++ {
		wconn := pgtest.Connect(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var err error
				switch rand.IntN(3) {
				case 0:
					_, err = wconn.Exec(ctx, `INSERT INTO t (src) SELECT 'new' || g FROM generate_series(1, 20) g`)
				case 1:
					_, err = wconn.Exec(ctx, `UPDATE t SET src = src || '+', touched = touched + 1 WHERE id = $1`, 1+rand.Int64N(rows))
				default:
					_, err = wconn.Exec(ctx, `UPDATE t SET touched = touched + 1 WHERE id BETWEEN $1 AND $1 + 50`, 1+rand.Int64N(rows))
				}
				if retryable(err) {
					// A deadlock with the backfill's batch is the
					// application's to retry, as it would anywhere.
					continue
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
				writes.Add(1)
			}
		}()
	}
	// After each batch, wait (a little) for some writes, so that they
	// really interleave with the walk.
	waitForWrites := func(Progress) {
		for seen, deadline := writes.Load(), time.Now().Add(time.Second); writes.Load() < seen+3 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	got, err := Run(context.Background(), conn, Task{Table: "t", Key: bigintKey(), Set: convert},
		Options{InitialBatch: 200, MinBatch: 100, MaxBatch: 500, Progress: waitForWrites})
	stop()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("writer: %v", e)
	}
	if err != nil || !got.Done {
		t.Fatalf("Run: %+v, %v", got, err)
	}
	if writes.Load() == 0 {
		t.Fatal("the writers wrote nothing")
	}
	// Every original row was rewritten exactly once; every row, old or
	// new, has dst right.
	if n := count(t, conn, `SELECT count(*) FROM t WHERE id <= $1 AND n <> 1`, rows); n != 0 {
		t.Fatalf("%d original rows not rewritten exactly once", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM t WHERE dst IS DISTINCT FROM upper(src)`); n != 0 {
		t.Fatalf("%d rows with a wrong dst", n)
	}
	t.Logf("%d writes during the backfill", writes.Load())
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	pgtest.Exec(t, conn,
		`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
		`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 50000) g`)
	const rate, window = 2000.0, 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var batchMax int
	got, err := Run(ctx, conn, Task{Table: "t", Key: bigintKey(), Set: convert}, Options{Rate: rate,
		Progress: func(p Progress) { batchMax = max(batchMax, p.BatchSize) }})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the deadline to stop it, got %+v, %v", got, err)
	}
	// Unlimited, 50000 rows take well under a second. At 2000 rows/s it
	// may do two seconds' worth, plus one batch of at most a second's.
	if got.RowsDone == 0 || got.RowsDone > int64(rate*window.Seconds()+rate) {
		t.Fatalf("%d rows in %s at %g rows/s", got.RowsDone, window, rate)
	}
	if batchMax > int(rate) {
		t.Fatalf("batch size %d above one second's worth (%g)", batchMax, rate)
	}
	if n := count(t, conn, `SELECT count(*) FROM t WHERE n = 1`); n != got.RowsDone {
		t.Fatalf("%d rows rewritten, checkpoint says %d", n, got.RowsDone)
	}
}

// TestPaceLast: a walk split into ranges, each a Run of one batch, keeps
// Rate and calls Pause after each range's last batch when PaceLast is set;
// without it a Run of one batch never pauses, and the ranges go unpaced.
func TestPaceLast(t *testing.T) {
	t.Parallel()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	pgtest.Exec(t, conn,
		`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
		`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 4000) g`)
	const rate, ranges, per = 4000.0, 4, 1000
	walk := func(paceLast bool) (time.Duration, int) {
		pgtest.Exec(t, conn, "UPDATE t SET dst = NULL, n = 0")
		pauses := 0
		began := time.Now()
		for k := 0; k < ranges; k++ {
			o := Options{Rate: rate, InitialBatch: per, MinBatch: per, MaxBatch: per, PaceLast: paceLast,
				Pause: func(context.Context) error { pauses++; return nil },
				Until: []string{fmt.Sprint((k + 1) * per)}}
			if k > 0 {
				o.Resume = &Checkpoint{LastKey: []string{fmt.Sprint(k * per)}}
			}
			if cp, err := Run(context.Background(), conn, Task{Table: "t", Key: bigintKey(), Set: convert}, o); err != nil || !cp.Done {
				t.Fatalf("range %d: %+v, %v", k, cp, err)
			}
		}
		if n := count(t, conn, wrongRows); n != 0 {
			t.Fatalf("%d rows wrong after the ranges", n)
		}
		return time.Since(began), pauses
	}
	took, pauses := walk(true)
	least := time.Duration(ranges * per / rate * float64(time.Second))
	if took < least*9/10 || pauses != ranges {
		t.Fatalf("with PaceLast: %d rows at %g rows/s in %s (at least %s), %d pauses (want %d)", ranges*per, rate, took, least, pauses, ranges)
	}
	if _, pauses := walk(false); pauses != 0 {
		t.Fatalf("without PaceLast: %d pauses after ranges of one batch, want 0", pauses)
	}
}

// lockTimeoutConn connects with lock_timeout in the startup packet, as the
// engine does.
func lockTimeoutConn(t *testing.T, url string, d time.Duration) *pgx.Conn {
	t.Helper()
	cfg, err := pg.ParseConfig(url, pg.Options{LockTimeout: d})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func debugLogger(w *lockBuffer) zerolog.Logger { return zerolog.New(w).Level(zerolog.DebugLevel) }

// lockBuffer collects the debug log, for counting retries and pauses.
type lockBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLockTimeout(t *testing.T) {
	t.Parallel()
	setup := []string{
		`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
		`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 400) g`,
	}
	task := Task{Table: "t", Key: bigintKey(), Set: convert}

	t.Run("retried until released", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDB(t)
		holder := pgtest.Connect(t, url)
		pgtest.Exec(t, holder, setup...)
		pgtest.Exec(t, holder, `BEGIN`, `SELECT * FROM t WHERE id = 150 FOR UPDATE`)
		released := make(chan struct{})
		go func() {
			defer close(released)
			time.Sleep(800 * time.Millisecond)
			_, _ = holder.Exec(context.Background(), `ROLLBACK`)
		}()
		var log lockBuffer
		conn := lockTimeoutConn(t, url, 50*time.Millisecond)
		got, err := Run(context.Background(), conn, task, Options{InitialBatch: 100, MinBatch: 10, MaxBatch: 100,
			Logger: debugLogger(&log)})
		<-released
		if err != nil || !got.Done || got.RowsDone != 400 {
			t.Fatalf("Run: %+v, %v", got, err)
		}
		if n := count(t, conn, wrongRows); n != 0 {
			t.Fatalf("%d rows wrong", n)
		}
		if retries := strings.Count(log.String(), "backfill batch retry"); retries == 0 {
			t.Fatalf("no retry logged:\n%s", log.String())
		}
		if strings.Contains(log.String(), `"level":"info"`) {
			t.Fatalf("logged above debug:\n%s", log.String())
		}
	})

	// heldRow makes the table with row 150 locked by another session, and
	// returns a connection whose batches give up on it after 30ms.
	heldRow := func(t *testing.T, more ...string) (conn, holder *pgx.Conn) {
		url := pgtest.NewDB(t)
		holder = pgtest.Connect(t, url)
		pgtest.Exec(t, holder, append(more, setup...)...)
		pgtest.Exec(t, holder, `BEGIN`, `SELECT * FROM t WHERE id = 150 FOR UPDATE`)
		return lockTimeoutConn(t, url, 30*time.Millisecond), holder
	}

	t.Run("gives up with a clear error", func(t *testing.T) {
		t.Parallel()
		conn, holder := heldRow(t, ckptTable)
		got, err := Run(context.Background(), conn, task, Options{InitialBatch: 100, MinBatch: 10, MaxBatch: 100,
			LockRetries: 3, Checkpoint: storeCheckpoint})
		var lte *pg.LockTimeoutError
		if !errors.As(err, &lte) || !pg.IsLockTimeout(err) || lte.Attempts != 3 || !strings.Contains(err.Error(), `"t"`) {
			t.Fatalf("want a lock timeout error after 3 attempts naming the table, got %v", err)
		}
		// The work before the locked row is committed and checkpointed.
		if stored := loadCheckpoint(t, conn); fmt.Sprint(stored) != fmt.Sprint(got) || got.RowsDone < 100 || got.RowsDone >= 150 {
			t.Fatalf("returned %+v, stored %+v", got, stored)
		}
		pgtest.Exec(t, holder, `ROLLBACK`)
	})

	// LockRetryDeadline, not the attempts, ends the retries here: the
	// engine passes --lock-retry-deadline into it, so the flag bounds how
	// long a backfill waits on a row someone holds.
	t.Run("gives up at LockRetryDeadline", func(t *testing.T) {
		t.Parallel()
		conn, holder := heldRow(t)
		t.Cleanup(func() { _, _ = holder.Exec(context.Background(), `ROLLBACK`) })
		const deadline = 400 * time.Millisecond
		start := time.Now()
		got, err := Run(context.Background(), conn, task, Options{InitialBatch: 100, MinBatch: 10, MaxBatch: 100,
			LockRetries: 1000, LockRetryDeadline: deadline})
		took := time.Since(start)
		var lte *pg.LockTimeoutError
		if !errors.As(err, &lte) || !pg.IsLockTimeout(err) {
			t.Fatalf("want a *pg.LockTimeoutError, got %v", err)
		}
		if lte.Elapsed < deadline || lte.Attempts < 2 || lte.Attempts >= 1000 {
			t.Fatalf("gave up after %d attempts in %s; want several attempts and at least %s", lte.Attempts, lte.Elapsed, deadline)
		}
		// The batches before the locked row ran, so most of the time is
		// the retries'; well under the one-minute default.
		if took > 10*deadline {
			t.Fatalf("Run took %s with LockRetryDeadline %s", took, deadline)
		}
		if got.RowsDone < 100 || got.RowsDone >= 150 {
			t.Fatalf("checkpoint %+v: want the rows before the locked one done", got)
		}
		if n := count(t, conn, `SELECT count(*) FROM t WHERE id >= 150 AND dst IS NOT NULL`); n != 0 {
			t.Fatalf("%d rows from the locked one on written", n)
		}
	})
}

func TestProgressEstimate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		setup     []string
		reltuples float64 // as the setup leaves it
	}{
		{"never vacuumed: counted", nil, -1},
		{"vacuumed: reltuples", []string{`VACUUM t`}, 3000},
		{"stale: scaled to the size", []string{`VACUUM t`, `INSERT INTO t (id, src) SELECT g, 's' FROM generate_series(3001, 6000) g`}, 3000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.NewDB(t))
			pgtest.Exec(t, conn,
				`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)`,
				`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 3000) g`)
			pgtest.Exec(t, conn, c.setup...)
			if got := pgtest.QueryStrings(t, conn, `SELECT reltuples FROM pg_class WHERE oid = 't'::regclass`); got[0] != fmt.Sprint(c.reltuples) {
				t.Fatalf("reltuples %s, want %g", got[0], c.reltuples)
			}
			want := count(t, conn, `SELECT count(*) FROM t`)
			var first *Progress
			_, err := Run(context.Background(), conn, Task{Table: "t", Key: bigintKey(), Set: convert},
				Options{InitialBatch: 500, MinBatch: 500, MaxBatch: 500, Progress: func(p Progress) {
					if first == nil {
						first = &p
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			// An estimate, within 20%.
			if first == nil || first.RowsTotal < want*8/10 || first.RowsTotal > want*12/10 {
				t.Fatalf("first progress %+v, want a total near %d", first, want)
			}
			if first.Rate <= 0 || first.ETA <= 0 || first.BatchSize != 500 {
				t.Fatalf("first progress %+v: want a rate, an ETA and the batch size", first)
			}
		})
	}
}

// Run pauses while a DDL statement waits for the table's lock, and after a
// batch much slower than its target.
func TestPauses(t *testing.T) {
	t.Parallel()
	setup := []string{
		`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
		`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 200) g`,
	}
	t.Run("for a queued table lock", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDB(t)
		holder, ddl := pgtest.Connect(t, url), pgtest.Connect(t, url)
		pgtest.Exec(t, holder, setup...)
		conn := lockTimeoutConn(t, url, 50*time.Millisecond)
		var log lockBuffer
		ddlDone, released := make(chan error, 1), make(chan struct{})
		batches := 0
		got, err := Run(context.Background(), conn, Task{Table: "t", Key: bigintKey(), Set: convert}, Options{
			InitialBatch: 10, MinBatch: 10, MaxBatch: 10, Logger: debugLogger(&log),
			Progress: func(Progress) {
				if batches++; batches != 3 {
					return
				}
				// Someone holds the table; an ALTER queues behind them.
				pgtest.Exec(t, holder, `BEGIN`, `LOCK TABLE t IN ACCESS SHARE MODE`)
				go func() {
					_, err := ddl.Exec(context.Background(), `ALTER TABLE t ADD COLUMN extra int`)
					ddlDone <- err
				}()
				for count(t, holder, `SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND NOT granted AND relation = 't'::regclass`) == 0 {
					time.Sleep(10 * time.Millisecond)
				}
				go func() {
					defer close(released)
					time.Sleep(300 * time.Millisecond)
					_, _ = holder.Exec(context.Background(), `COMMIT`)
				}()
			}})
		if err != nil || !got.Done || got.RowsDone != 200 {
			t.Fatalf("Run: %+v, %v", got, err)
		}
		<-released
		if err := <-ddlDone; err != nil {
			t.Fatalf("the ALTER failed: %v", err)
		}
		if !strings.Contains(log.String(), "pausing for lock waiters") {
			t.Fatalf("no pause logged:\n%s", log.String())
		}
		if n := count(t, conn, wrongRows); n != 0 {
			t.Fatalf("%d rows wrong", n)
		}
	})
	t.Run("for application writes waiting on a batch's row locks", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDB(t)
		conn, app, watch := pgtest.Connect(t, url), pgtest.Connect(t, url), pgtest.Connect(t, url)
		pgtest.Exec(t, conn, setup...)
		const base = 40 * time.Millisecond
		var targets []time.Duration
		wrote := make(chan error, 1)
		var appPID int
		if err := app.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&appPID); err != nil {
			t.Fatal(err)
		}
		batches := 0
		got, err := Run(context.Background(), conn, Task{Table: "t", Key: bigintKey(), Set: convert}, Options{
			BatchTime: base, InitialBatch: 10, MinBatch: 10, MaxBatch: 10,
			Checkpoint: func(ctx context.Context, tx pgx.Tx, cp Checkpoint) error {
				if batches++; batches != 2 {
					return nil
				}
				// The application updates a row this batch holds, and
				// waits for the batch to commit.
				go func() {
					_, err := app.Exec(context.Background(), `UPDATE t SET src = src WHERE id = $1`, cp.LastKey[0])
					wrote <- err
				}()
				// pg_locks shows the whole cluster (other tests too): wait
				// for this application session's own lock wait.
				for count(t, watch, `SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted`, appPID) == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				return nil
			},
			Progress: func(p Progress) { targets = append(targets, p.BatchTime) },
		})
		if err != nil || !got.Done || got.RowsDone != 200 {
			t.Fatalf("Run: %+v, %v", got, err)
		}
		if err := <-wrote; err != nil {
			t.Fatalf("the application's update failed: %v", err)
		}
		// Batch 1 ran at the target, batch 2 had a waiter and halved it,
		// and the batches after it, with none, grew it back by a quarter
		// each until it reached the target again.
		want := []time.Duration{base, base / 2, base / 2 * 5 / 4}
		if len(targets) < 6 || targets[0] != want[0] || targets[1] != want[1] || targets[2] != want[2] || targets[len(targets)-1] != base {
			t.Fatalf("batch time after each batch: %v; want it to start %v and end at %v", targets, want, base)
		}
		if n := count(t, conn, wrongRows); n != 0 {
			t.Fatalf("%d rows wrong", n)
		}
	})
	t.Run("after a slow batch", func(t *testing.T) {
		t.Parallel()
		conn := pgtest.Connect(t, pgtest.NewDB(t))
		pgtest.Exec(t, conn, setup...)
		var log lockBuffer
		slow := []Assignment{
			{Column: "dst", Expr: `upper(src) || (SELECT '' FROM pg_sleep(CASE WHEN id = 55 THEN 0.2 ELSE 0 END))`},
			{Column: "n", Expr: "n + 1"},
		}
		got, err := Run(context.Background(), conn, Task{Table: "t", Key: bigintKey(), Set: slow}, Options{
			BatchTime: 20 * time.Millisecond, InitialBatch: 10, MinBatch: 10, MaxBatch: 10, Logger: debugLogger(&log)})
		if err != nil || !got.Done || got.RowsDone != 200 {
			t.Fatalf("Run: %+v, %v", got, err)
		}
		if !strings.Contains(log.String(), "much slower than its target") {
			t.Fatalf("no pause logged:\n%s", log.String())
		}
		if n := count(t, conn, wrongRows); n != 0 {
			t.Fatalf("%d rows wrong", n)
		}
	})
}

// Settings reach every batch transaction (here a trigger reads one, as the
// engine's sync triggers do) and end with it.
func TestSettings(t *testing.T) {
	t.Parallel()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	pgtest.Exec(t, conn,
		`CREATE TABLE t (id int PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0, seen text)`,
		`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 100) g`,
		`CREATE FUNCTION seen() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN NEW.seen := current_setting('online.backfill', true) || '/' || current_setting('work_mem'); RETURN NEW; END $$`,
		`CREATE TRIGGER seen BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION seen()`)
	const session = `SELECT coalesce(current_setting('online.backfill', true), ''), current_setting('enable_seqscan'), current_setting('work_mem')`
	before := pgtest.QueryStrings(t, conn, session)
	_, err := Run(context.Background(), conn, Task{Table: "t", Key: []Column{{"id", "integer"}}, Set: convert},
		Options{MinBatch: 10, MaxBatch: 10, Settings: map[string]string{"online.backfill": "on", "work_mem": "7MB"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, wrongRows+` OR seen IS DISTINCT FROM 'on/7MB'`); n != 0 {
		t.Fatalf("%d rows without the settings: %v", n, pgtest.QueryStrings(t, conn, `SELECT DISTINCT seen FROM t`))
	}
	if after := pgtest.QueryStrings(t, conn, session); after[0] != before[0] {
		t.Fatalf("settings outlived the batches: %s, before %s", after[0], before[0])
	}
}

func TestNextTarget(t *testing.T) {
	t.Parallel()
	const base = 100 * time.Millisecond
	cases := []struct {
		cur     time.Duration
		waiters int
		want    time.Duration
	}{
		{base, 0, base},                 // nobody waited: stays
		{base, -1, base},                // unknown: stays
		{base, 1, base / 2},             // a waiter halves it
		{base / 2, 3, base / 4},         // again
		{base / 8, 1, base / 8},         // not below an eighth
		{base / 10, 1, base / 8},        // (a target somehow below is raised)
		{base / 2, 0, base / 2 * 5 / 4}, // grows back by a quarter
		{base * 9 / 10, 0, base},        // not above the base
		{base / 2, -1, base / 2},        // unknown keeps a lowered one too
	}
	for _, c := range cases {
		if got := nextTarget(c.cur, base, c.waiters); got != c.want {
			t.Errorf("nextTarget(%v, %v, %d) = %v, want %v", c.cur, base, c.waiters, got, c.want)
		}
	}
}

// TestBatchLockWaitIsShort: a batch that meets a row an application holds
// (for seconds) has locked every row it updated before it. On a connection
// with no lock_timeout of its own, the batch must still give up soon and go
// on smaller, so that the application's writer of an earlier row is not
// held for as long as the holder.
func TestBatchLockWaitIsShort(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	holder, writer := pgtest.Connect(t, url), pgtest.Connect(t, url)
	pgtest.Exec(t, holder,
		`CREATE TABLE t (id bigint PRIMARY KEY, src text, dst text, n int NOT NULL DEFAULT 0)`,
		`INSERT INTO t (id, src) SELECT g, 's' || g FROM generate_series(1, 1000) g`)
	pgtest.Exec(t, holder, `BEGIN`, `SELECT * FROM t WHERE id = 500 FOR UPDATE`)
	const hold = 3 * time.Second
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(hold)
		_, _ = holder.Exec(context.Background(), `ROLLBACK`)
	}()
	conn := pgtest.Connect(t, url) // no lock_timeout of its own
	done := make(chan error, 1)
	go func() {
		// One batch would cover the whole table, the held row included.
		_, err := Run(context.Background(), conn, Task{Table: "t", Key: bigintKey(), Set: convert},
			Options{InitialBatch: 1000, MinBatch: 10, MaxBatch: 1000})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	if _, err := writer.Exec(context.Background(), `UPDATE t SET n = n + 1 WHERE id = 10`); err != nil {
		t.Fatal(err)
	}
	waited := time.Since(began)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	<-released
	if waited > hold/3 {
		t.Fatalf("the application's write of row 10 waited %s behind a batch waiting for row 500 (held %s)", waited.Round(time.Millisecond), hold)
	}
	if n := count(t, conn, `SELECT count(*) FROM t WHERE dst IS DISTINCT FROM upper(src)`); n != 0 {
		t.Fatalf("%d rows wrong", n)
	}
	t.Logf("the writer waited %s", waited.Round(time.Millisecond))
}
