package phases_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

// itemsTable: every column but hits and total_cents is a function of id, so
// each row can be checked in SQL.
const itemsTable = `CREATE TABLE items (id bigserial PRIMARY KEY, qty int NOT NULL, unit_cents int NOT NULL, total_cents int, hits int NOT NULL DEFAULT 0, n int NOT NULL, note text)`

func itemsRows(n int) string {
	return fmt.Sprintf(`INSERT INTO items (qty, unit_cents, n, note) SELECT g %% 10 + 1, g %% 1000, g %% 100, 'n' || g FROM generate_series(1, %d) g`, n)
}

// itemsUntouched counts rows whose own columns differ from their function
// of id (rows the writers inserted have ids past the setup's).
const itemsUntouched = `SELECT count(*) FROM items WHERE id <= $1 AND (qty <> id % 10 + 1 OR unit_cents <> id % 1000 OR n <> id % 100 OR note <> 'n' || id)`

const fillTotals = `
operations:
  - add_column: { table: items, column: { name: label, type: text, nullable: true } }
  - update_rows:
      table: items
      set: { total_cents: "qty * unit_cents", label: "'item ' || id" }
      down: { total_cents: "NULL" }
`

// hitWriters update hits through the given connections' version until
// stopped, and insert rows with total_cents -1; they count what committed.
type hitWriters struct {
	stop    atomic.Bool
	wg      sync.WaitGroup
	hits    atomic.Int64
	inserts atomic.Int64
	errs    chan error
}

func startHitWriters(e *env, conns []*pgx.Conn, maxID int) *hitWriters {
	w := &hitWriters{errs: make(chan error, len(conns))}
	for i, conn := range conns {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for !w.stop.Load() {
				id := r.IntN(maxID) + 1
				if _, err := conn.Exec(ctx(), "UPDATE items SET hits = hits + 1 WHERE id = $1", id); err != nil {
					w.errs <- fmt.Errorf("writer %d: update: %w", i, err)
					return
				}
				w.hits.Add(1)
				if r.IntN(20) == 0 {
					if _, err := conn.Exec(ctx(), "INSERT INTO items (qty, unit_cents, total_cents, n, note) VALUES (1, 1, -1, 0, 'inserted')"); err != nil {
						w.errs <- fmt.Errorf("writer %d: insert: %w", i, err)
						return
					}
					w.inserts.Add(1)
				}
			}
		}()
	}
	return w
}

func (w *hitWriters) halt(t testing.TB) {
	t.Helper()
	w.stop.Store(true)
	w.wg.Wait()
	select {
	case err := <-w.errs:
		t.Fatal(pg.Explain(err))
	default:
	}
}

func (e *env) lastKey(task int) int64 {
	e.t.Helper()
	var k string
	if err := e.db.QueryRow(ctx(), "SELECT last_key[1] FROM online.backfills WHERE task = $1", task).Scan(&k); err != nil {
		e.t.Fatalf("read the checkpoint of task %d: %v", task, err)
	}
	n, err := strconv.ParseInt(k, 10, 64)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestUpdateRowsWritersAndDown runs a data migration over 100k rows while
// writers update and insert through the old version, then through both,
// and rolls it back through down while they go on. Every row is checked
// after each, and no write may be lost.
func TestUpdateRowsWritersAndDown(t *testing.T) {
	t.Parallel()
	const rows = 100000
	e := newEnv(t, itemsTable, itemsRows(rows), "ANALYZE items")
	w := startHitWriters(e, []*pgx.Conn{e.version("public"), e.version("public")}, rows)
	res, err := e.engine(func(c *phases.Config) { c.BackfillBatchTime = 30 * time.Millisecond }).Start(ctx(), parse(t, "fill", fillTotals))
	if err != nil {
		w.halt(t)
		t.Fatalf("start: %s", pg.Explain(err))
	}
	// Now through the new version too: the same rows.
	w2 := startHitWriters(e, []*pgx.Conn{e.version(res.VersionSchema), e.version(res.VersionSchema)}, rows)
	time.Sleep(300 * time.Millisecond)
	w.halt(t)
	w2.halt(t)

	last := e.lastKey(0)
	if last < rows {
		t.Fatalf("the walk ended at key %d, before the %d rows of the setup", last, rows)
	}
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM items WHERE id <= $1 AND (total_cents IS DISTINCT FROM qty * unit_cents OR label IS DISTINCT FROM 'item ' || id)", last)
	// Rows inserted past the walk's end are not the migration's: kept as written.
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM items WHERE id > $1 AND total_cents IS DISTINCT FROM -1", last)
	// Both versions read the same values.
	vs := e.version(res.VersionSchema)
	e.expectRows(vs, []string{fmt.Sprint(rows)}, "SELECT count(*) FROM items WHERE id <= $1 AND total_cents = qty * unit_cents AND label = 'item ' || id", rows)
	e.expectRows(e.db, []string{fmt.Sprint(rows)}, "SELECT count(*) FROM items WHERE id <= $1 AND total_cents = qty * unit_cents", rows)
	e.expectRows(e.db, []string{"0"}, itemsUntouched, rows)
	e.expectRows(e.db, []string{fmt.Sprint(w.hits.Load() + w2.hits.Load())}, "SELECT sum(hits) FROM items")
	e.expectRows(e.db, []string{fmt.Sprint(w.inserts.Load() + w2.inserts.Load())}, "SELECT count(*) FROM items WHERE note = 'inserted'")
	e.expectRows(e.db, []string{"true"}, "SELECT done FROM online.backfills WHERE task = 0")

	// Rollback through down, with the old version writing meanwhile.
	w3 := startHitWriters(e, []*pgx.Conn{e.version("public"), e.version("public")}, rows)
	eng := e.engine(func(c *phases.Config) { c.BackfillBatchTime = 30 * time.Millisecond })
	err = eng.UndoDataMigrations(ctx())
	if err == nil {
		_, err = eng.Rollback(ctx())
	}
	w3.halt(t)
	if err != nil {
		t.Fatalf("rollback: %s", pg.Explain(err))
	}
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM items WHERE id <= $1 AND total_cents IS NOT NULL", last)
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM items WHERE id > $1 AND total_cents IS DISTINCT FROM -1", last)
	e.expectRows(e.db, []string{"0"}, itemsUntouched, rows)
	e.expectRows(e.db, []string{fmt.Sprint(w.hits.Load() + w2.hits.Load() + w3.hits.Load())}, "SELECT sum(hits) FROM items")
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'label'")
	if e.schemaExists(res.VersionSchema) {
		t.Fatal("the version schema survived the rollback")
	}
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM online.migrations")
}

const upperNotes = `
operations:
  - update_rows: { table: items, set: { note: "upper(note)" }, where: "id % 2 = 0" }
`

// TestUpdateRowsIrreversible: a data migration without down that changed
// rows makes rollback refuse, changing nothing, unless forced; start's own
// failure path keeps the migration rather than half undoing it.
func TestUpdateRowsIrreversible(t *testing.T) {
	t.Parallel()
	t.Run("rollback", func(t *testing.T) {
		t.Parallel()
		const rows = 2000
		e := newEnv(t, itemsTable, itemsRows(rows))
		res := e.start("upper", upperNotes)
		e.expectRows(e.db, []string{fmt.Sprint(rows / 2)}, "SELECT count(*) FROM items WHERE note = upper('n' || id) AND id % 2 = 0")
		e.expectRows(e.db, []string{fmt.Sprint(rows / 2)}, "SELECT count(*) FROM items WHERE note = 'n' || id AND id % 2 = 1")
		before := e.tableDigest("items")
		err := e.engine().UndoDataMigrations(ctx())
		var irr *phases.IrreversibleError
		if !errors.Is(err, phases.ErrIrreversible) || !errors.As(err, &irr) {
			t.Fatalf("undo: %v, want ErrIrreversible", err)
		}
		if len(irr.Ops) != 1 || irr.Ops[0] != 1 || irr.Tables[0] != "items" || irr.RowsDone != rows {
			t.Fatalf("error %+v: want operation 1 on items, %d rows", irr, rows)
		}
		if e.tableDigest("items") != before || !e.schemaExists(res.VersionSchema) {
			t.Fatal("the refusal changed something")
		}
		e.expectRows(e.db, []string{"active"}, "SELECT phase FROM online.migrations")

		// Forced: the rest is rolled back, the values set are kept.
		eng := e.engine(func(c *phases.Config) { c.ForceRollback = true })
		if err := eng.UndoDataMigrations(ctx()); err != nil {
			t.Fatalf("forced undo: %v", err)
		}
		if _, err := eng.Rollback(ctx()); err != nil {
			t.Fatal(err)
		}
		if e.tableDigest("items") != before || e.schemaExists(res.VersionSchema) {
			t.Fatal("forced rollback: want the data kept and the version gone")
		}
	})
	t.Run("new column", func(t *testing.T) {
		t.Parallel()
		// Filling a column the migration adds needs no down: rollback
		// drops it.
		e := newEnv(t, itemsTable, itemsRows(500))
		before := e.tableDigest("items")
		e.start("label", "operations:\n  - add_column: { table: items, column: { name: label, type: text, nullable: true } }\n  - update_rows: { table: items, set: { label: \"'item ' || id\" } }\n")
		e.expectRows(e.db, []string{"500"}, "SELECT count(*) FROM items WHERE label = 'item ' || id")
		eng := e.engine()
		if err := eng.UndoDataMigrations(ctx()); err != nil {
			t.Fatalf("undo: %v", err)
		}
		if _, err := eng.Rollback(ctx()); err != nil {
			t.Fatal(err)
		}
		if e.tableDigest("items") != before {
			t.Fatal("rollback did not leave the table as it was")
		}
	})
	t.Run("start fails midway", func(t *testing.T) {
		t.Parallel()
		const rows = 20000
		e := newEnv(t, itemsTable, itemsRows(rows))
		before := e.tableDigest("items")
		// Division by zero at id 15000, after batches have committed.
		const failing = `
operations:
  - update_rows: { table: items, set: { qty: "qty + 1 + 0 * (1 / (id - 15000))" } }
`
		_, err := e.engine(func(c *phases.Config) { c.BackfillBatchTime = 5 * time.Millisecond }).Start(ctx(), parse(t, "fail", failing))
		if err == nil || !strings.Contains(err.Error(), "division by zero") || !strings.Contains(err.Error(), "start was not undone") || !strings.Contains(err.Error(), "rollback --force") {
			t.Fatalf("start: %v, want the division error and start not undone", err)
		}
		if e.tableDigest("items") == before {
			t.Fatal("no batch committed before the failure; the test proves nothing")
		}
		e.expectRows(e.db, []string{"1"}, "SELECT count(*) FROM online.migrations")

		// With down, start's failure computes the rows back and is undone.
		e2 := newEnv(t, itemsTable, itemsRows(rows))
		before = e2.tableDigest("items")
		const failingDown = `
operations:
  - update_rows: { table: items, set: { n: "n + 1 + 0 * (1 / (id - 15000))" }, down: { n: "n - 1" } }
`
		_, err = e2.engine(func(c *phases.Config) { c.BackfillBatchTime = 5 * time.Millisecond }).Start(ctx(), parse(t, "fail", failingDown))
		if err == nil || !strings.Contains(err.Error(), "division by zero") || !strings.Contains(err.Error(), "start was undone, except: set the rows of items back with the down of operation 1: they are as before start only as far as that down is the exact inverse of its set") {
			t.Fatalf("start: %v, want the division error, undone but for the rows its down set back", err)
		}
		if e2.tableDigest("items") != before {
			t.Fatal("start's rollback did not compute the rows back")
		}
		e2.expectRows(e2.db, []string{"0"}, "SELECT count(*) FROM online.migrations")
	})
}

const bumpN = `
operations:
  - update_rows: { table: items, set: { n: "n + 1" }, down: { n: "n - 1" } }
`

// TestUpdateRowsKilled kills start in the middle of a data migration whose
// set is not idempotent (n + 1), resumes it, then kills its rollback in the
// middle of down (n - 1) and runs it again: every row must have been
// changed exactly once each way.
func TestUpdateRowsKilled(t *testing.T) {
	if os.Getenv(envUpdateRowsChild) != "" {
		return
	}
	t.Parallel()
	const rows = 50000
	e := newEnv(t, itemsTable, itemsRows(rows))
	done := func(task int) int64 {
		var n int64
		_ = e.db.QueryRow(ctx(), "SELECT coalesce(sum(rows_done), 0) FROM online.backfills WHERE task = $1", task).Scan(&n)
		return n
	}
	killMidway := func(op string, task int) int64 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUpdateRowsChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envUpdateRowsChild+"="+e.url, envUpdateRowsOp+"="+op)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for done(task) < rows/5 {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("%s: the child made no progress", op)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		at := done(task)
		if at >= rows {
			t.Fatalf("%s: finished (%d rows) before the kill", op, at)
		}
		return at
	}

	at := killMidway("start", 0)
	res := e.start("bump", bumpN)
	if !res.Resumed {
		t.Fatal("start after the kill did not resume")
	}
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM items WHERE n <> id % 100 + 1")
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM items WHERE qty <> id % 10 + 1 OR unit_cents <> id % 1000 OR note <> 'n' || id")

	at2 := killMidway("rollback", -1)
	e.expectRows(e.db, []string{"rolling_back"}, "SELECT phase FROM online.migrations")
	eng := e.engine()
	if err := eng.UndoDataMigrations(ctx()); err != nil {
		t.Fatalf("undo after the kill: %s", pg.Explain(err))
	}
	if _, err := eng.Rollback(ctx()); err != nil {
		t.Fatalf("rollback after the kill: %s", pg.Explain(err))
	}
	e.expectRows(e.db, []string{"0"}, itemsUntouched, rows)
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM online.migrations")
	// Once done, calling it again is a no-op: nothing is in progress.
	if err := eng.UndoDataMigrations(ctx()); !errors.Is(err, phases.ErrNoMigration) {
		t.Fatalf("undo once rolled back: %v", err)
	}
	t.Logf("start killed at %d, rollback at %d of %d rows", at, at2, rows)
}

const (
	envUpdateRowsChild = "ONLINE_UPDATEROWS_CHILD_URL"
	envUpdateRowsOp    = "ONLINE_UPDATEROWS_CHILD_OP"
)

// TestUpdateRowsChild is the child process of TestUpdateRowsKilled.
func TestUpdateRowsChild(t *testing.T) {
	url := os.Getenv(envUpdateRowsChild)
	if url == "" {
		t.Skip("only runs as the child of TestUpdateRowsKilled")
	}
	eng, err := phases.Open(context.Background(), phases.Config{URL: url, BackfillRate: 15000, BackfillBatchTime: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	switch os.Getenv(envUpdateRowsOp) {
	case "start":
		_, err = eng.Start(ctx(), parse(t, "bump", bumpN))
	case "rollback":
		if err = eng.UndoDataMigrations(ctx()); err == nil {
			_, err = eng.Rollback(ctx())
		}
	}
	t.Fatalf("the child should have been killed; it returned %v", err)
}

// readmeExample is the example of the README's "Data migrations" section,
// character for character.
const readmeExample = `name: 07_totals
operations:
  - add_column: { table: orders, column: { name: total_cents, type: bigint, nullable: true } }
  - update_rows:                # fills the new column: rollback drops it, so no down is needed
      table: orders
      set: { total_cents: "qty * unit_cents" }
  - update_rows:                # changes existing data: down computes it back at rollback
      table: orders
      set: { status: "'archived'" }
      where: "status = 'closed' AND created_at < now() - interval '2 years'"
      down: { status: "'closed'" }
      down_where: "status = 'archived'"
`

// TestUpdateRowsReadmeExample runs the README's example: start, then
// rollback through down, checking every row after each.
func TestUpdateRowsReadmeExample(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE orders (id bigserial PRIMARY KEY, qty int NOT NULL, unit_cents int NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL)`,
		`INSERT INTO orders (qty, unit_cents, status, created_at) SELECT g % 7 + 1, g % 500, (ARRAY['open', 'closed', 'paid'])[g % 3 + 1], now() - (g % 1500) * interval '1 day' FROM generate_series(1, 30000) g`)
	before := e.tableDigest("orders")
	res := e.start("07_totals", readmeExample)
	vs := e.version(res.VersionSchema)
	e.expectRows(vs, []string{"0"}, "SELECT count(*) FROM orders WHERE total_cents IS DISTINCT FROM qty * unit_cents")
	const archived = "SELECT count(*) FROM orders WHERE status = 'archived'"
	const oldClosed = "SELECT count(*) FROM orders WHERE (ARRAY['open', 'closed', 'paid'])[id % 3 + 1] = 'closed' AND created_at < now() - interval '2 years'"
	want := e.rows(e.db, oldClosed)
	if want[0] == "0" {
		t.Fatal("no row to archive; the test proves nothing")
	}
	e.expectRows(e.db, want, archived) // the old version sees them too
	e.expectRows(vs, want, archived)
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM orders WHERE status <> (ARRAY['open', 'closed', 'paid'])[id % 3 + 1] AND status <> 'archived'")
	eng := e.engine()
	if err := eng.UndoDataMigrations(ctx()); err != nil {
		t.Fatalf("undo: %s", pg.Explain(err))
	}
	if _, err := eng.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if e.tableDigest("orders") != before {
		t.Fatal("rollback did not leave orders as before start")
	}
}

// TestUpdateRowsUndoYields: the undo of an update_rows at rollback walks the
// table as the forward pass did, and so yields to the application as it did
// (Config.BackfillYield): its governor watches the application's writes.
// It used to build its own options, without governor or replica check.
func TestUpdateRowsUndoYields(t *testing.T) {
	t.Parallel()
	// Over the governor's 16 MB.
	e := newEnv(t, itemsTable, itemsRows(300000))
	var logs syncBuffer
	yielding := func(c *phases.Config) {
		c.BackfillYield = 0.8
		c.Log = zerolog.New(&logs).Level(zerolog.DebugLevel)
	}
	if _, err := e.engine(yielding).Start(ctx(), parse(t, "bump", bumpN)); err != nil {
		t.Fatalf("start: %s", pg.Explain(err))
	}
	if !strings.Contains(logs.String(), "backfill governor watches") {
		t.Fatalf("the forward pass had no governor (the test proves nothing):\n%s", logs.String())
	}
	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	if _, err := e.engine(yielding).Rollback(ctx()); err != nil {
		t.Fatalf("rollback: %s", pg.Explain(err))
	}
	if !strings.Contains(logs.String(), "undo data migration") {
		t.Fatalf("no undo ran:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "backfill governor watches") {
		t.Fatalf("the undo did not yield to the application:\n%s", logs.String())
	}
	e.expectRows(e.db, []string{"0"}, itemsUntouched, 300000)
}
